#!/usr/bin/env bash
# Screenshots of the real app window under Xvfb, one per main screen: the review views, the
# 3D view alone (drawn by wgpu on Mesa's lavapipe when mesa-vulkan-drivers is installed), the
# training tab while a run trains, the metrics of the predictions it wrote, and the
# activation map of the LLM block over the views. Usage: tools/screenshots.sh [OUT_DIR]
#
# Needs Xvfb, xwd, xdotool and ImageMagick's convert; installs them with apt-get when missing.
# Uses a throw-away data folder, so the demo task is generated fresh and nothing of yours is
# touched. Clicks go to fixed positions of the default 1280 × 820 window.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="$(realpath -m "${1:-target/screenshots}")"
mkdir -p "$OUT"
real_convert() { for c in /usr/bin/convert "$(command -v convert)"; do
    [ -x "$c" ] && "$c" -version 2>/dev/null | grep -q ImageMagick && { echo "$c"; return; }; done; }
if ! command -v Xvfb >/dev/null || ! command -v xwd >/dev/null || ! command -v xdotool >/dev/null \
    || [ -z "$(real_convert)" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q xvfb x11-apps xdotool imagemagick \
        libgl1-mesa-dri mesa-vulkan-drivers
fi
# MVL_APP=path/to/medvisionllama-studio uses that build instead of building a release one.
if [ -n "${MVL_APP:-}" ]; then
    APP="$(realpath "$MVL_APP")"
else
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medvisionllama-studio/target}"
    cargo build --release -p app --bin medvisionllama-studio
    APP="$CARGO_TARGET_DIR/release/medvisionllama-studio"
fi

WORK="$(mktemp -d)"
export XDG_DATA_HOME="$WORK/data" XDG_CONFIG_HOME="$WORK/config" HOME="$WORK"
export DISPLAY=:77 LIBGL_ALWAYS_SOFTWARE=1
Xvfb "$DISPLAY" -screen 0 1280x820x24 -nolisten tcp >/dev/null 2>&1 &
XVFB=$!
APP_PID=""
cleanup() { [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null; kill "$XVFB" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
sleep 2

CONVERT="$(real_convert)"
shot() { xwd -root -silent | "$CONVERT" xwd:- "$OUT/$1.png"; echo "$OUT/$1.png"; }
click() { xdotool mousemove "$1" "$2" click 1; sleep 1; }
key() { xdotool key "$1"; sleep 1; }
TASK="$XDG_DATA_HOME/medvisionllama-studio/demo-task"
wait_for() { # wait_for SECONDS COMMAND...: until COMMAND succeeds
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do [ $SECONDS -lt $deadline ] || return 1; sleep 2; done
}
predictions() { [ "$(ls "$TASK/.medvisionllama/predictions" 2>/dev/null | wc -l)" -ge "$1" ]; }

"$APP" >"$OUT/app.log" 2>&1 &
APP_PID=$!
wait_for 120 test -f "$TASK/dataset.json"
sleep 5
xdotool windowfocus "$(xdotool search --name "MedVisionLlama Studio" | head -1)"
xdotool mousemove 640 400
shot 01-review-three-planes
key 4                                          # the 3D view alone
sleep 5
shot 02-3d-view
key Escape

key F6
click "${START_X:-1022}" "${START_Y:-356}"     # Training → Start training (demo-cpu, 10 epochs)
sleep 40
shot 03-training-running
wait_for 1200 predictions 14
sleep 5
shot 04-training-finished-dice

key F4
click "${COMPUTE_X:-940}" "${COMPUTE_Y:-228}"  # Metrics → Compute all
sleep 10
shot 05-metrics

key F5
click "${CAPTURE_X:-894}" "${CAPTURE_Y:-312}"  # Activations → Capture
sleep 20
shot 06-activations
echo "screenshots in $OUT"
