#!/usr/bin/env bash
# Runs the real s3share window under Xvfb against the embedded store with sample files and
# writes screenshots to assets/screenshots/: browse (with a preview), share dialog, drop → link
# (the toast after "Upload and copy link"), a failed listing (kept, marked stale), transfers.
#
#   scripts/screenshots.sh            # builds target/debug/s3share if needed
#   S3SHARE=target/release/s3share scripts/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-gui-deps.sh >/dev/null
S3SHARE=${S3SHARE:-target/debug/s3share}
[ -x "$S3SHARE" ] || cargo build --quiet
S3SHARE=$(realpath "$S3SHARE")
OUT=$PWD/assets/screenshots
mkdir -p "$OUT"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/s3share-shots.XXXXXX")
XVFB_PID=; APP_PID=
cleanup() {
    [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null || true
    [ -n "$XVFB_PID" ] && kill "$XVFB_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# A private home: no AWS configuration, so s3share uses its embedded store.
export HOME=$WORK/home S3SHARE_HOME=$WORK/s3share AWS_EC2_METADATA_DISABLED=true
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_PROFILE AWS_ENDPOINT_URL
mkdir -p "$HOME" "$WORK/files/Photos 2024" "$WORK/files/Reports"
convert -size 640x400 gradient:'#1d976c-#2f80ed' -depth 8 "$WORK/files/Photos 2024/lake.png"
for n in 1 2 3; do head -c $((n * 300000)) /dev/urandom > "$WORK/files/Photos 2024/IMG_00$n.jpg"; done
printf '# Quarterly report\n\nRevenue grew 12%% over the quarter.\n\n- EMEA: +9%%\n- Americas: +14%%\n' > "$WORK/files/Reports/Q3 summary.md"
head -c 2500000 /dev/urandom > "$WORK/files/Reports/Q3 figures.xlsx"
printf 'Welcome to s3share.\nDrop files on the window to upload them.\n' > "$WORK/files/README.txt"
head -c 400000000 /dev/zero > "$WORK/big-video.mp4"
"$S3SHARE" put "$WORK/files/Photos 2024" "$WORK/files/Reports" "$WORK/files/README.txt" s3://s3share/ >/dev/null 2>&1

Xvfb :97 -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 & XVFB_PID=$!
export DISPLAY=:97
sleep 1
"$S3SHARE" >"$WORK/app.log" 2>&1 & APP_PID=$!
WID=
for _ in $(seq 50); do WID=$(xdotool search --name '^s3share' 2>/dev/null | head -1) && [ -n "$WID" ] && break; sleep 0.2; done
[ -n "$WID" ] || { cat "$WORK/app.log"; echo "the window did not appear" >&2; exit 1; }
xdotool windowsize "$WID" 1280 800 windowmove "$WID" 0 0
# Without a window manager the focus may only be set once the window is mapped: retry.
for _ in $(seq 20); do xdotool windowfocus "$WID" 2>/dev/null && break; sleep 0.2; done
sleep 2
key() { xdotool key --window "$WID" "$@"; sleep 0.6; }
shot() { import -window root "$OUT/$1.png"; echo "wrote assets/screenshots/$1.png"; }

# Browse: open "Photos 2024", select the image, preview it.
key Down; key Return; sleep 1
key Down; key Down; key Down; key Down; key Return; sleep 1.5
shot browse

# Share: the dialog with its honest expiry, then copy (link, QR).
key ctrl+l; key Return; sleep 1
shot share
key Escape

# Drop → link: "Upload and copy link" (Ctrl+Shift+U; a typed path stands in for the drop, as
# Xvfb has no drag and drop), then the toast says the link is copied and until when it works.
key ctrl+shift+u; sleep 1
xdotool type --window "$WID" "$WORK/files/README.txt"; key Return; sleep 1.5
shot drop-link
sleep 4

# A failed listing: the bucket goes away under the server and the folder is refreshed. The last
# listing stays, marked stale, with what to do; it never says the folder is empty.
BUCKET=$S3SHARE_HOME/data/objects/s3share
mv "$BUCKET" "$WORK/away"
key F5; sleep 1
shot failed-listing
mv "$WORK/away" "$BUCKET"
key F5; sleep 1

# Transfers: upload a large file through the path field (no portal under Xvfb).
key ctrl+u; sleep 1
xdotool type --window "$WID" "$WORK/big-video.mp4"; key Return; sleep 1.5
shot transfers
