#!/usr/bin/env bash
# The embedded store's own speed: a 1 GiB file put and got through `s3share store` on
# loopback, by s3share and by one curl with a presigned URL (signed by `s3share link` before
# the clock starts), in interleaved rounds. Prints each round and the median, with the client's
# CPU and the store's (both share the machine's cores).
#
#   benches/store.sh                                  # 1 GiB, 3 rounds
#   BENCH_SIZE_MIB=256 BENCH_ROUNDS=5 benches/store.sh
#   S3SHARE=/path/to/s3share benches/store.sh
set -euo pipefail

. "$(dirname "$0")/common.sh"
to_repository
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
ROUNDS=${BENCH_ROUNDS:-3}

[ -x /usr/bin/time ] || { log "GNU time is missing (Debian: apt-get install time)"; exit 1; }
command -v curl >/dev/null || { log "curl is missing"; exit 1; }
build_s3share

WORK=$(mktemp -d "${TMPDIR:-/tmp}/s3share-store-bench.XXXXXX")
# Downloads land in tmpfs when there is one: what the store and the client cost, not the disk.
DOWN=$WORK/down
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then DOWN=$(mktemp -d /dev/shm/s3share-store-bench.XXXXXX); fi
STORE_PID=
cleanup() {
    [ -n "$STORE_PID" ] && kill -INT "$STORE_PID" 2>/dev/null && wait "$STORE_PID" 2>/dev/null
    rm -rf "$WORK" "$DOWN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A home of its own: no AWS account, so every command uses the embedded store.
start_store
S=("${STORE_ENV[@]}" "$S3SHARE")
log "$(head -1 "$WORK/store.log")"

log "creating a ${SIZE_MIB} MiB file"
head -c "${SIZE_MIB}M" /dev/urandom >"$WORK/big.bin"
BYTES=$((SIZE_MIB * 1048576))
TICK=$(getconf CLK_TCK)
store_cpu() { awk '{print $14 + $15}' "/proc/$STORE_PID/stat"; }

ROWS=()
# timed TOOL WORKLOAD CMD...: one run, its wall time, the client's CPU and the store's.
timed() {
    local tool=$1 workload=$2; shift 2
    local before after
    before=$(store_cpu)
    /usr/bin/time -o "$WORK/time" -f "%e %U %S" "$@" >/dev/null 2>"$WORK/err" || {
        log "$tool $workload failed:"; tail -5 "$WORK/err" >&2; ROWS+=("$tool|$workload|failed|-|-|-"); return 0
    }
    after=$(store_cpu)
    read -r secs user sys <"$WORK/time"
    local row
    row="$tool|$workload|$secs|$(awk -v b="$BYTES" -v s="$secs" 'BEGIN {printf "%.1f", (s > 0 ? b / 1048576 / s : 0)}')|$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}')|$(awk -v a="$before" -v b="$after" -v t="$TICK" 'BEGIN {printf "%.2f", (b - a) / t}')"
    ROWS+=("$row")
    log "   $row"
}

for r in $(seq 1 "$ROUNDS"); do
    put_url=$("${S[@]}" link --put "s3://s3share/bench/curl-$r.bin" 2>/dev/null | tail -1)
    name="put ${SIZE_MIB} MiB"
    # Alternate which goes first.
    for tool in $( [ $((r % 2)) = 1 ] && echo "s3share curl" || echo "curl s3share"); do
        case $tool in
            s3share) timed s3share "$name" "${S[@]}" put "$WORK/big.bin" "s3://s3share/bench/s3share-$r.bin" ;;
            curl) timed curl "$name" curl -sSf -o /dev/null -T "$WORK/big.bin" "$put_url" ;;
        esac
    done
    get_url=$("${S[@]}" link "s3://s3share/bench/curl-$r.bin" 2>/dev/null | tail -1)
    name="get ${SIZE_MIB} MiB"
    for tool in $( [ $((r % 2)) = 1 ] && echo "s3share curl" || echo "curl s3share"); do
        rm -f "$DOWN"/*
        case $tool in
            s3share) timed s3share "$name" "${S[@]}" get "s3://s3share/bench/s3share-$r.bin" "$DOWN/s.bin" ;;
            curl) timed curl "$name" curl -sSf -o "$DOWN/c.bin" "$get_url" ;;
        esac
    done
    rm -f "$DOWN"/*
    "${S[@]}" rm "s3://s3share/bench/s3share-$r.bin" "s3://s3share/bench/curl-$r.bin" >/dev/null 2>&1 || true
done

echo
echo "The embedded store ($S3SHARE) on loopback: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "curl: one request with a URL signed before the clock starts; downloads to $( [ "$DOWN" = "$WORK/down" ] && echo disk || echo tmpfs)"
echo
fmt='%-9s %-14s %9s %9s %13s %12s %11s\n'
# shellcheck disable=SC2059
printf "$fmt" tool workload seconds MiB/s "client CPU s" "store CPU s" "rounds' s"
# The median round of each tool and workload, with the fastest and the slowest round.
printf '%s\n' "${ROWS[@]}" | awk -F'|' -v fmt="$fmt" -f benches/median.awk
echo "(median of $ROUNDS rounds, and the fastest and slowest round)"
