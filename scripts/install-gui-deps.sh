#!/usr/bin/env bash
# Install the runtime packages needed to run the s3share eframe/egui window
# (glow backend, X11) headless under Xvfb, take screenshots (ImageMagick
# `import`) and drive input (xdotool). Debian/Ubuntu only; run as root.
# Idempotent: does nothing (not even `apt-get update`) when all are present.
set -euo pipefail

PACKAGES=(
  # virtual X server
  xvfb
  # X11 / xkb client libraries loaded by winit at runtime
  libx11-6 libx11-xcb1 libxcursor1 libxi6 libxrandr2
  libxkbcommon-x11-0 libxkbcommon0 libxcb1
  # OpenGL/EGL (Mesa llvmpipe software rendering) for glow
  libgl1 libglx-mesa0 libgl1-mesa-dri libegl1 libegl-mesa0 libgbm1
  # screenshots (import/convert) and input automation
  imagemagick xdotool
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-gui-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-gui-deps: need root or sudo" >&2; exit 1; }
  SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-gui-deps: installing: ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
  --no-install-recommends "${missing[@]}"
