#!/usr/bin/env bash
# Transfers with a server elsewhere, without a network: through a proxy that caps what each
# connection carries (benches/capproxy.py: BENCH_CAP_MIB MiB/s, as S3 and CDNs cap a
# connection) and delays everything BENCH_DELAY_MS each way. The server is the embedded store
# (`s3share store`) on loopback. Prints each round, and the median per row with the peak RSS.
#  - Downloads in ranges side by side (`get --ranges N`), straight from the store and through
#    the proxy: why a server on this machine gets one stream and one elsewhere gets eight.
#  - Downloads and uploads through the proxy reached at an address of this machine that is
#    not loopback (s3share takes the server for one elsewhere: eight ranges down; 8 MiB parts
#    up, eight at a time), beside aws-cli and rclone with their defaults when they are
#    installed (benches/upload.sh installs them).
#  - The same upload through the proxy reached as 127.0.0.1 (s3share takes the server for one
#    on this machine: 16 MiB parts, two at a time).
#
#   benches/elsewhere.sh                  # 256 MiB, 3 rounds, 40 MiB/s a connection, 25 ms
#   BENCH_SIZE_MIB=1024 BENCH_ROUNDS=5 BENCH_CAP_MIB=80 BENCH_DELAY_MS=50 BENCH_RANGES="1 4 8" benches/elsewhere.sh
#   S3SHARE=/path/to/s3share benches/elsewhere.sh
set -euo pipefail

. "$(dirname "$0")/common.sh"
to_repository
SIZE_MIB=${BENCH_SIZE_MIB:-256}
ROUNDS=${BENCH_ROUNDS:-3}
CAP_MIB=${BENCH_CAP_MIB:-40}
DELAY_MS=${BENCH_DELAY_MS:-25}
RANGES=${BENCH_RANGES:-1 2 4 8}

command -v python3 >/dev/null || { log "python3 is missing"; exit 1; }
build_s3share

WORK=$(mktemp -d "${TMPDIR:-/tmp}/s3share-elsewhere-bench.XXXXXX")
DOWN=$WORK/down
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then DOWN=$(mktemp -d /dev/shm/s3share-elsewhere-bench.XXXXXX); fi
STORE_PID= PROXY_PID= UP_PROXY_PID=
cleanup() {
    # The store stops cleanly on Ctrl+C; the proxy, started in the background of a script,
    # ignores SIGINT. Neither is waited for without a bound.
    [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
    [ -n "$UP_PROXY_PID" ] && kill "$UP_PROXY_PID" 2>/dev/null
    [ -n "$STORE_PID" ] && kill -INT "$STORE_PID" 2>/dev/null
    for _ in $(seq 50); do
        { kill -0 $PROXY_PID || kill -0 $UP_PROXY_PID || kill -0 $STORE_PID; } 2>/dev/null || break
        sleep 0.1
    done
    kill -9 $PROXY_PID $UP_PROXY_PID $STORE_PID 2>/dev/null || true
    rm -rf "$WORK" "$DOWN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_store
store_keys
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
FAR=$(far_address)
PROXY=$(free_port)
python3 benches/capproxy.py "$PROXY" "$PORT" "$CAP_MIB" down "127.0.0.1${FAR:+,$FAR}" "$DELAY_MS" >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
UP_PROXY=$(free_port)
python3 benches/capproxy.py "$UP_PROXY" "$PORT" "$CAP_MIB" up "127.0.0.1${FAR:+,$FAR}" "$DELAY_MS" >"$WORK/up-proxy.log" 2>&1 &
UP_PROXY_PID=$!
S=("${STORE_ENV[@]}" AWS_ACCESS_KEY_ID="$KEY" AWS_SECRET_ACCESS_KEY="$SECRET" AWS_REGION=us-east-1 "$S3SHARE")
# The peers with their defaults, on the same keys and nothing of the caller's AWS settings.
PEERS=()
if command -v aws >/dev/null; then
    PEERS+=(aws-cli)
    AWSC=(env -u AWS_CA_BUNDLE -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_CONFIG_FILE=/dev/null
        AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_ACCESS_KEY_ID="$KEY" AWS_SECRET_ACCESS_KEY="$SECRET"
        AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 "$(pyenv which aws 2>/dev/null || command -v aws)")
else log "aws-cli is not installed: no aws-cli rows"; fi
if command -v rclone >/dev/null; then
    PEERS+=(rclone)
    : >"$WORK/rclone.conf"
    RCLONE=(env -u AWS_CA_BUNDLE RCLONE_CONFIG="$WORK/rclone.conf" RCLONE_CONFIG_FAR_TYPE=s3
        RCLONE_CONFIG_FAR_PROVIDER=Other RCLONE_CONFIG_FAR_ENV_AUTH=false RCLONE_CONFIG_FAR_FORCE_PATH_STYLE=true
        RCLONE_CONFIG_FAR_ACCESS_KEY_ID="$KEY" RCLONE_CONFIG_FAR_SECRET_ACCESS_KEY="$SECRET"
        RCLONE_CONFIG_FAR_REGION=us-east-1 rclone)
else log "rclone is not installed: no rclone rows"; fi
# Peak RSS with GNU time where there is one.
TIME=()
[ -x /usr/bin/time ] && /usr/bin/time -f %M true 2>/dev/null && TIME=(/usr/bin/time -o "$WORK/rss" -f %M)

ROWS=()
# timed ROUND WHAT HOW CMD...: runs CMD, adds "WHAT|HOW|seconds|peak RSS KiB" to ROWS.
timed() {
    local r=$1 what=$2 how=$3; shift 3
    : >"$WORK/rss"
    local t0 t1
    t0=$(date +%s.%N)
    "${TIME[@]}" "$@" >/dev/null 2>"$WORK/err" || { log "$what, $how failed:"; tail -3 "$WORK/err" >&2; return 1; }
    t1=$(date +%s.%N)
    local row
    row="$what|$how|$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')|$(tail -1 "$WORK/rss")"
    ROWS+=("$row")
    log "   round $r: $row"
}
# got WHAT: the download is byte for byte the file (else the run stops).
got() { cmp -s "$WORK/big.bin" "$DOWN/big.bin" || { log "$1: THE FILE DIFFERS"; exit 1; }; rm -f "$DOWN/big.bin"; }

log "storing a ${SIZE_MIB} MiB file"
head -c "${SIZE_MIB}M" /dev/urandom >"$WORK/big.bin"
"${S[@]}" --endpoint-url "http://127.0.0.1:$PORT" put --overwrite "$WORK/big.bin" s3://s3share/bench/big.bin >/dev/null 2>&1
sleep 0.5

for r in $(seq 1 "$ROUNDS"); do
    for where in "on this machine" "capped at $CAP_MIB MiB/s, $DELAY_MS ms"; do
        port=$PORT; [ "$where" = "on this machine" ] || port=$PROXY
        for n in $RANGES; do
            timed "$r" "get from a store $where" "--ranges $n" \
                "${S[@]}" --endpoint-url "http://127.0.0.1:$port" get --ranges "$n" s3://s3share/bench/big.bin "$DOWN/big.bin" \
                && got "--ranges $n $where"
        done
    done
    if [ -n "$FAR" ]; then
        far="$FAR (capped at $CAP_MIB MiB/s, $DELAY_MS ms)"
        for tool in s3share "${PEERS[@]}"; do
            case $tool in
                s3share) timed "$r" "get via $far" "s3share" \
                    "${S[@]}" --endpoint-url "http://$FAR:$PROXY" get s3://s3share/bench/big.bin "$DOWN/big.bin" ;;
                aws-cli) timed "$r" "get via $far" "aws-cli" \
                    "${AWSC[@]}" --endpoint-url "http://$FAR:$PROXY" s3 cp --only-show-errors s3://s3share/bench/big.bin "$DOWN/big.bin" ;;
                rclone) timed "$r" "get via $far" "rclone" \
                    "${RCLONE[@]}" --s3-endpoint "http://$FAR:$PROXY" copyto far:s3share/bench/big.bin "$DOWN/big.bin" ;;
            esac && got "$tool"
        done
    fi
    # The proxy capping what the client sends, reached as this machine and as elsewhere.
    timed "$r" "put via 127.0.0.1 (capped at $CAP_MIB MiB/s, $DELAY_MS ms)" "s3share" \
        "${S[@]}" --endpoint-url "http://127.0.0.1:$UP_PROXY" put --overwrite "$WORK/big.bin" s3://s3share/bench/up.bin || true
    if [ -n "$FAR" ]; then
        for tool in s3share "${PEERS[@]}"; do
            case $tool in
                s3share) timed "$r" "put via $far" "s3share" \
                    "${S[@]}" --endpoint-url "http://$FAR:$UP_PROXY" put --overwrite "$WORK/big.bin" s3://s3share/bench/up.bin ;;
                aws-cli) timed "$r" "put via $far" "aws-cli" \
                    "${AWSC[@]}" --endpoint-url "http://$FAR:$UP_PROXY" s3 cp --only-show-errors "$WORK/big.bin" s3://s3share/bench/up-aws.bin ;;
                rclone) timed "$r" "put via $far" "rclone" \
                    "${RCLONE[@]}" --s3-endpoint "http://$FAR:$UP_PROXY" copyto --ignore-times "$WORK/big.bin" far:s3share/bench/up-rclone.bin ;;
            esac || true
        done
    fi
done
[ -n "$FAR" ] || log "this machine has no address but loopback: no upload as to a server elsewhere"

echo
echo "${SIZE_MIB} MiB to and from the embedded store, $(nproc) cores; median of $ROUNDS rounds (RSS: its peak over the rounds)"
printf '%-56s %-12s %9s %9s %9s\n' transfer "how" seconds MiB/s "RSS MiB"
printf '%s\n' "${ROWS[@]}" | awk -F'|' -v mib="$SIZE_MIB" '
    { k = $1 "|" $2; if (!(k in n)) order[++m] = k; t[k, ++n[k]] = $3; if ($4 + 0 > rss[k]) rss[k] = $4 + 0 }
    END {
        for (i = 1; i <= m; i++) {
            k = order[i]; c = n[k]
            for (a = 1; a <= c; a++) v[a] = t[k, a]
            for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (v[b] < v[a]) { x = v[a]; v[a] = v[b]; v[b] = x }
            med = v[int((c + 1) / 2)]; split(k, p, "|")
            printf "%-56s %-12s %9.2f %9.1f %9s\n", p[1], p[2], med, mib / med, rss[k] ? sprintf("%.0f", rss[k] / 1024) : "-"
        }
    }'
