#!/usr/bin/env bash
# Transfers with a server elsewhere, without a network: through a proxy that caps what each
# connection carries (benches/capproxy.py: BENCH_CAP_MIB MiB/s, as S3 and CDNs cap a
# connection) and delays everything BENCH_DELAY_MS each way. The server is the embedded store
# (`s3share store`) on loopback. Prints each round and the median per row.
#  - Downloads in ranges side by side (`get --ranges N`), straight from the store and through
#    the proxy: why a server on this machine gets one stream and one elsewhere gets four.
#  - Uploads through the proxy, reached once as 127.0.0.1 (s3share takes the server for one on
#    this machine: 16 MiB parts, two at a time) and once at an address of this machine that is
#    not loopback (a server elsewhere: 8 MiB parts, four at a time).
#
#   benches/elsewhere.sh                  # 256 MiB, 3 rounds, 40 MiB/s a connection, 25 ms
#   BENCH_SIZE_MIB=1024 BENCH_ROUNDS=5 BENCH_CAP_MIB=80 BENCH_DELAY_MS=50 BENCH_RANGES="1 4 8" benches/elsewhere.sh
#   S3SHARE=/path/to/s3share benches/elsewhere.sh
set -euo pipefail

case "${S3SHARE:-}" in ""|/*) ;; */*) S3SHARE=$PWD/$S3SHARE ;; esac
cd "$(dirname "$0")/.."
S3SHARE=${S3SHARE:-target/release/s3share}
SIZE_MIB=${BENCH_SIZE_MIB:-256}
ROUNDS=${BENCH_ROUNDS:-3}
CAP_MIB=${BENCH_CAP_MIB:-40}
DELAY_MS=${BENCH_DELAY_MS:-25}
RANGES=${BENCH_RANGES:-1 2 4}
log() { echo "== $*" >&2; }

command -v python3 >/dev/null || { log "python3 is missing"; exit 1; }
. benches/common.sh
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
# The store's port and keys, to reach it through the proxy as any S3 server.
read -r PORT KEY SECRET < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print(s["port"], s["access_key"], s["secret_key"])' "$WORK/config/s3share/local-store.json")
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PROXY=$(free_port)
python3 benches/capproxy.py "$PROXY" "$PORT" "$CAP_MIB" down 127.0.0.1 "$DELAY_MS" >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
# An address of this machine that is not loopback (the one its traffic would leave from).
FAR=$(python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.connect(("192.0.2.1", 9)); a = s.getsockname()[0]
    print("" if a.startswith("127.") else a)
except OSError:
    print("")')
UP_PROXY=$(free_port)
python3 benches/capproxy.py "$UP_PROXY" "$PORT" "$CAP_MIB" up "127.0.0.1${FAR:+,$FAR}" "$DELAY_MS" >"$WORK/up-proxy.log" 2>&1 &
UP_PROXY_PID=$!
S=("${STORE_ENV[@]}" AWS_ACCESS_KEY_ID="$KEY" AWS_SECRET_ACCESS_KEY="$SECRET" AWS_REGION=us-east-1 "$S3SHARE")

log "storing a ${SIZE_MIB} MiB file"
head -c "${SIZE_MIB}M" /dev/urandom >"$WORK/big.bin"
"${S[@]}" --endpoint-url "http://127.0.0.1:$PORT" put --overwrite "$WORK/big.bin" s3://s3share/bench/big.bin >/dev/null 2>&1
sleep 0.5

ROWS=()
for r in $(seq 1 "$ROUNDS"); do
    for where in "on this machine" "capped at $CAP_MIB MiB/s, $DELAY_MS ms"; do
        port=$PORT; [ "$where" = "on this machine" ] || port=$PROXY
        for n in $RANGES; do
            rm -f "$DOWN/big.bin"
            t0=$(date +%s.%N)
            "${S[@]}" --endpoint-url "http://127.0.0.1:$port" get --ranges "$n" s3://s3share/bench/big.bin "$DOWN/big.bin" >/dev/null 2>"$WORK/err" \
                || { log "--ranges $n $where failed:"; tail -3 "$WORK/err" >&2; continue; }
            t1=$(date +%s.%N)
            cmp -s "$WORK/big.bin" "$DOWN/big.bin" || { log "--ranges $n $where: THE FILE DIFFERS"; exit 1; }
            row="get from a store $where|--ranges $n|$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')"
            ROWS+=("$row")
            log "   round $r: $row"
        done
    done
    # The same proxy capping what the client sends, reached as this machine and as elsewhere.
    for as in 127.0.0.1 $FAR; do
        label="put via $as (capped at $CAP_MIB MiB/s, $DELAY_MS ms)|$([ "$as" = 127.0.0.1 ] && echo "2 x 16 MiB" || echo "4 x 8 MiB")"
        t0=$(date +%s.%N)
        "${S[@]}" --endpoint-url "http://$as:$UP_PROXY" put --overwrite "$WORK/big.bin" s3://s3share/bench/up.bin >/dev/null 2>"$WORK/err" \
            || { log "put via $as failed:"; tail -3 "$WORK/err" >&2; continue; }
        t1=$(date +%s.%N)
        row="$label|$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')"
        ROWS+=("$row")
        log "   round $r: $row"
    done
done
[ -n "$FAR" ] || log "this machine has no address but loopback: no upload as to a server elsewhere"

echo
echo "${SIZE_MIB} MiB to and from the embedded store, $(nproc) cores; median of $ROUNDS rounds"
printf '%-56s %-12s %9s %9s\n' transfer "how" seconds MiB/s
printf '%s\n' "${ROWS[@]}" | awk -F'|' -v mib="$SIZE_MIB" '
    { k = $1 "|" $2; if (!(k in n)) order[++m] = k; t[k, ++n[k]] = $3 }
    END {
        for (i = 1; i <= m; i++) {
            k = order[i]; c = n[k]
            for (a = 1; a <= c; a++) v[a] = t[k, a]
            for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (v[b] < v[a]) { x = v[a]; v[a] = v[b]; v[b] = x }
            med = v[int((c + 1) / 2)]; split(k, p, "|")
            printf "%-56s %-12s %9.2f %9.1f\n", p[1], p[2], med, mib / med
        }
    }'
