#!/usr/bin/env bash
# Uploads over a slow link, without a network: one `put` to a server elsewhere through
# benches/capproxy.py capping each connection at BENCH_RATE_MIB MiB/s, with the proxy's receive
# buffer held to 128 KiB and its queue to two reads, as a real peer takes little ahead of the
# link. The server is the embedded store (`s3share store`) on loopback, reached at an address
# of this machine that is not loopback. Prints how long the upload took (or how it failed) and
# the link's own time for those bytes, for each binary given.
#
# A slow link spaces the moments the kernel frees room in a connection's send buffer further
# apart than the idle timeout (30 s): an upload must not fail then as a silent server.
#
#   benches/slowlink.sh                              # 4 MiB at 0.04 MiB/s a connection
#   BENCH_SIZE_MIB=64 BENCH_RATE_MIB=0.08 benches/slowlink.sh
#   benches/slowlink.sh /path/to/old/s3share target/release/s3share
set -euo pipefail

. "$(dirname "$0")/common.sh"
to_repository "$@"
SIZE_MIB=${BENCH_SIZE_MIB:-4}
RATE_MIB=${BENCH_RATE_MIB:-0.04}

command -v python3 >/dev/null || { log "python3 is missing"; exit 1; }
[ ${#ARGS[@]} -gt 0 ] || { build_s3share; ARGS=("$S3SHARE"); }
S3SHARE=${ARGS[0]}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/s3share-slowlink-bench.XXXXXX")
STORE_PID= PROXY_PID=
cleanup() {
    [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
    [ -n "$STORE_PID" ] && kill -INT "$STORE_PID" 2>/dev/null
    for _ in $(seq 50); do
        { kill -0 $PROXY_PID || kill -0 $STORE_PID; } 2>/dev/null || break
        sleep 0.1
    done
    kill -9 $PROXY_PID $STORE_PID 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_store
store_keys
FAR=$(far_address)
[ -n "$FAR" ] || { log "this machine has no address but loopback: nothing to measure"; exit 1; }
UP=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CAPPROXY_RCVBUF=$((128 * 1024)) CAPPROXY_QUEUE=2 \
    python3 benches/capproxy.py "$UP" "$PORT" "$RATE_MIB" up "$FAR" 25 >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$WORK/f.bin"
LINK=$(awk -v s="$SIZE_MIB" -v r="$RATE_MIB" 'BEGIN {printf "%.1f", s / r}')
log "$SIZE_MIB MiB at $RATE_MIB MiB/s a connection: one connection alone would take $LINK s"
for bin in "${ARGS[@]}"; do
    t0=$(date +%s.%N)
    if "${STORE_ENV[@]}" AWS_ACCESS_KEY_ID="$KEY" AWS_SECRET_ACCESS_KEY="$SECRET" AWS_REGION=us-east-1 \
        "$bin" --endpoint-url "http://$FAR:$UP" put --overwrite "$WORK/f.bin" s3://s3share/slow.bin \
        >/dev/null 2>"$WORK/err"; then
        how=uploaded
    else
        how="FAILED: $(grep -m1 '^error' "$WORK/err" || tail -1 "$WORK/err")"
    fi
    t1=$(date +%s.%N)
    printf '%s\t%s s\t%s\n' "$bin" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')" "$how"
done
