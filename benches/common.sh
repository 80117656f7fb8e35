# Sourced first by the bench scripts that run s3share on their own (store.sh, relay.sh,
# elsewhere.sh, slowlink.sh, tls.sh), which then call to_repository: `log`, the binaries to
# measure (built when the default one is missing), an embedded store of their own below $WORK,
# its keys, and an address of this machine that is not loopback.

BENCHES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { echo "== $*" >&2; }

# The binaries given as the script's arguments in ARGS, and S3SHARE (default
# target/release/s3share), made absolute; then goes to the repository's root, where the
# scripts run.
to_repository() {
    ARGS=()
    local b
    for b in "$@"; do case "$b" in /*) ARGS+=("$b") ;; *) ARGS+=("$PWD/$b") ;; esac; done
    case "${S3SHARE:-}" in ""|/*) ;; */*) S3SHARE=$PWD/$S3SHARE ;; esac
    cd "$BENCHES_DIR/.."
    S3SHARE=${S3SHARE:-target/release/s3share}
}

# Builds target/release/s3share when S3SHARE names it and it is not there.
build_s3share() {
    if [ ! -x "$S3SHARE" ] && [ "$S3SHARE" = target/release/s3share ]; then
        log "building s3share (cargo build --release)"
        cargo build --release >&2
    fi
}

# Starts `s3share store` in a home of its own (no AWS account, so the store is the embedded
# one) and waits until it serves. Sets STORE_PID, and STORE_ENV: the `env` prefix that runs a
# command in that home (`"${STORE_ENV[@]}" "$S3SHARE" put ...` uses the store). Its log is
# $WORK/store.log; its port and keys are in $WORK/config/s3share/local-store.json.
start_store() {
    STORE_ENV=(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN
        -u AWS_PROFILE -u AWS_ENDPOINT_URL HOME="$WORK/home" XDG_DATA_HOME="$WORK/data"
        XDG_CONFIG_HOME="$WORK/config" XDG_STATE_HOME="$WORK/state" AWS_CONFIG_FILE=/dev/null
        AWS_SHARED_CREDENTIALS_FILE=/dev/null)
    mkdir -p "$WORK/home"
    "${STORE_ENV[@]}" "$S3SHARE" store 2>"$WORK/store.log" &
    STORE_PID=$!
    local deadline=$((SECONDS + 30))
    until grep -q "embedded store on" "$WORK/store.log" 2>/dev/null; do
        if ! kill -0 "$STORE_PID" 2>/dev/null || [ $SECONDS -gt $deadline ]; then
            log "the store did not start:"; cat "$WORK/store.log" >&2; exit 1
        fi
        sleep 0.2
    done
}

# The store's port and keys, to reach it through a proxy as any S3 server: sets PORT, KEY and
# SECRET (after start_store).
store_keys() {
    read -r PORT KEY SECRET < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print(s["port"], s["access_key"], s["secret_key"])' "$WORK/config/s3share/local-store.json")
}

# An address of this machine that is not loopback (the one its traffic would leave from), or
# nothing: a server reached there is taken for one elsewhere.
far_address() {
    python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.connect(("192.0.2.1", 9)); a = s.getsockname()[0]
    print("" if a.startswith("127.") else a)
except OSError:
    print("")'
}
