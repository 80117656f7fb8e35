#!/usr/bin/env bash
# Relay redirect rate and latency with wrk, beside nginx answering a fixed `return 307` on the
# same machine in the same run (nginx is the reference: the cheapest 307 a server can give).
#
#   benches/relay.sh                          # 8 s per tool, 50 connections, 2 threads
#   BENCH_SECONDS=4 benches/relay.sh
#   S3SHARE=/path/to/s3share benches/relay.sh
#
# The relay signs for the embedded store, reached as a custom endpoint (`--endpoint-url` with
# the store's own keys): a relay on the embedded connection itself streams bytes instead of
# redirecting, and that is not what is measured here. Signing needs no network (the store is
# only named in the Location; wrk does not follow it). Each relay request checks the token's
# HMAC, decodes and scope-checks the path, checks Host and signs a fresh SigV4 URL. Installs wrk
# and nginx (apt).
set -euo pipefail

. "$(dirname "$0")/common.sh"
to_repository
SECONDS_EACH=${BENCH_SECONDS:-8}
CONNECTIONS=${BENCH_CONNECTIONS:-50}

missing=()
for tool in wrk nginx curl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
build_s3share

WORK=$(mktemp -d "${TMPDIR:-/tmp}/s3share-relay-bench.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export S3SHARE_HOME=$WORK/home HOME=$WORK AWS_EC2_METADATA_DISABLED=true
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL RUST_LOG

# ---------- the relay ----------
echo "shared through the relay" > "$WORK/report.txt"
"$S3SHARE" put "$WORK/report.txt" s3://s3share/bench/ >/dev/null 2>&1
"$S3SHARE" store 2>"$WORK/store.log" &
PIDS+=($!)
STATE=$(find "$S3SHARE_HOME" -name local-store.json | head -n 1)
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$STATE" "$1"; }
ENDPOINT=http://127.0.0.1:$(field port)
export AWS_ACCESS_KEY_ID=$(field access_key) AWS_SECRET_ACCESS_KEY=$(field secret_key) AWS_REGION=us-east-1
for _ in $(seq 100); do curl -s -o /dev/null "$ENDPOINT/" && break; sleep 0.1; done
RELAY_PORT=$(free_port)
# Access log off here (RUST_LOG=warn); the second relay below keeps `serve`'s default access
# log, written to a file (a terminal would measure the terminal).
RUST_LOG=warn "$S3SHARE" serve --endpoint-url "$ENDPOINT" --listen "127.0.0.1:$RELAY_PORT" 2>"$WORK/serve.log" &
RELAY_PID=$!
PIDS+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$RELAY_PORT/" && break; sleep 0.1; done
LINK=$("$S3SHARE" link --endpoint-url "$ENDPOINT" --relay --expires 30d s3://s3share/bench/report.txt 2>/dev/null)
[ "$(curl -s -L "$LINK")" = "shared through the relay" ] || { log "the relay link does not download"; cat "$WORK/serve.log" >&2; exit 1; }
LOGGED_PORT=$(free_port)
"$S3SHARE" serve --endpoint-url "$ENDPOINT" --listen "127.0.0.1:$LOGGED_PORT" 2>"$WORK/access.log" &
LOGGED_PID=$!
PIDS+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$LOGGED_PORT/" && break; sleep 0.1; done
LOGGED_LINK=${LINK/127.0.0.1:$RELAY_PORT/127.0.0.1:$LOGGED_PORT}

# ---------- nginx: a fixed 307 ----------
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx;
    fastcgi_temp_path $WORK/nginx; uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { return 307 http://127.0.0.1:9/bucket/key?X-Amz-Signature=0; }
    }
}
CONF
nginx -c "$WORK/nginx.conf" -p "$WORK"
sleep 0.3

# ---------- measure ----------
# CPU seconds (user + system, in clock ticks) used so far by these processes: CPU per request
# stays comparable when other work shares the cores, where the rate and p99 do not.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
run_wrk() { # name url pid...
    local name=$1 url=$2 out t0 t1
    shift 2
    t0=$(ticks "$@")
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency "$url")
    t1=$(ticks "$@")
    local rate p99 errors non2xx requests cpu
    rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    errors=$(awk '/Socket errors/ {print $0}' <<<"$out")
    non2xx=$(awk '/Non-2xx or 3xx/ {print $NF}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    cpu=$(awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN { printf "%.1f", t / hz / n * 1e6 }')
    printf '| %-28s | %10s | %8s | %9s | %s |\n' "$name" "$rate" "$p99" "$cpu" "${errors:-none}${non2xx:+, non-2xx/3xx: $non2xx}"
}
echo "cores: $(nproc); $CONNECTIONS connections, 2 wrk threads, ${SECONDS_EACH}s each; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| server                       | req/s      | p99      | µs CPU/req | failures |"
echo "|---|---|---|---|---|"
run_wrk "nginx (return 307)" "http://127.0.0.1:$NGINX_PORT/x" $(pgrep -P "$(cat "$WORK/nginx.pid")")
run_wrk "s3share relay (sign + 307)" "$LINK" "$RELAY_PID"
run_wrk "relay, access log to a file" "$LOGGED_LINK" "$LOGGED_PID"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); access log lines: $(grep -c 'status=307' "$WORK/access.log")"
# wrk counts 3xx as success; check the relay really redirected and kept serving.
code=$(curl -s -o /dev/null -w '%{http_code}' "$LINK")
echo "relay still answers: HTTP $code"
[ "$code" = 307 ]
