#!/usr/bin/env bash
# Start-up time of the real window to its first frame, under Xvfb (software OpenGL), on the
# embedded store: the app prints the time from process start to its first frame and closes.
#
#   benches/startup.sh            # uses target/release/s3share (built if missing), 10 runs
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-gui-deps.sh >/dev/null
S3SHARE=${S3SHARE:-target/release/s3share}
[ -x "$S3SHARE" ] || cargo build --release --quiet
RUNS=${RUNS:-10}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/s3share-startup.XXXXXX")
Xvfb :96 -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 & XVFB_PID=$!
trap 'kill $XVFB_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
sleep 1
export DISPLAY=:96 HOME=$WORK/home S3SHARE_HOME=$WORK/s3share AWS_EC2_METADATA_DISABLED=true S3SHARE_STARTUP_PROBE=1
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_PROFILE AWS_ENDPOINT_URL
mkdir -p "$HOME"
times=()
for _ in $(seq "$RUNS"); do
    t=$("$S3SHARE" 2>/dev/null | awk '/first frame after/ {print $4}')
    [ -n "$t" ] && times+=("$t")
done
[ ${#times[@]} -gt 0 ] || { echo "the window never showed a frame" >&2; exit 1; }
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR] = $1} END {printf "start-up to first frame: median %.1f ms, min %.1f ms, max %.1f ms (%d runs)\n", a[int((NR + 1) / 2)], a[1], a[NR], NR}'
