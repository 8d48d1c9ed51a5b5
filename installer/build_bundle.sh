#!/usr/bin/env bash
# Build the desktop bundle: a PyInstaller one-folder app in dist/seed-studio/ (the
# `seed-studio` executable: the app alone, the CLI with a subcommand), then print its build
# time, size and cold start time to the first painted window.
#
# Run `bash installer/install.sh` first with the same Python: the bundle is made from that
# environment (the app, CPU torch, FluidSynth, the GM SoundFont, Qt's xcb libraries).
#   bash installer/build_bundle.sh                 (PYTHON=V/bin/python to choose the environment)
# Environment (optional):
#   SEED_STUDIO_BUNDLE_VARIANT=cpu|cuda   the torch build the environment must hold (default cpu;
#                                         see README "Desktop bundle" for the CUDA variant)
#   SEED_STUDIO_BUNDLE_ARCHIVE=1          also pack dist/seed-studio-VERSION-OS-ARCH-VARIANT.tar.gz
#   SEED_STUDIO_BUNDLE_SOUNDFONT, SEED_STUDIO_BUNDLE_FLUIDSYNTH   what to ship (installer/seed-studio.spec)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
export SEED_STUDIO_BUNDLE_VARIANT="${SEED_STUDIO_BUNDLE_VARIANT:-cpu}"
t_start=$(date +%s)

echo "== bundle: PyInstaller (pinned: installer/bundle-requirements.txt)"
"$PY" -m pip install --quiet -r installer/bundle-requirements.txt

echo "== bundle: checks before the build"
"$PY" - <<'PYCHECK'
import os, sys
from pathlib import Path
import studio, torch
root = Path.cwd().resolve()
if not Path(studio.__file__).resolve().is_relative_to(root):
    sys.exit(f"error: this Python's Seed Studio is {Path(studio.__file__).parent}, not this checkout ({root}); "
             "run 'bash installer/install.sh' here with the same PYTHON")
variant = os.environ["SEED_STUDIO_BUNDLE_VARIANT"]
cuda = torch.version.cuda
if variant == "cpu" and cuda:
    sys.exit(f"error: torch {torch.__version__} is a CUDA build (CUDA {cuda}) but the CPU bundle was asked for; "
             "in a fresh environment install the CPU build first: pip install torch==2.13.0 "
             "with the --index-url of PyTorch's CPU wheels that pytorch.org names (or SEED_STUDIO_BUNDLE_VARIANT=cuda)")
if variant == "cuda" and not cuda:
    sys.exit(f"error: torch {torch.__version__} is a CPU build but SEED_STUDIO_BUNDLE_VARIANT=cuda")
if variant not in ("cpu", "cuda"):
    sys.exit(f"error: SEED_STUDIO_BUNDLE_VARIANT={variant!r}: cpu or cuda")
print(f"Seed Studio {studio.__version__} from {root}; torch {torch.__version__} ({variant})")
PYCHECK

echo "== bundle: PyInstaller build (log: build/bundle-build.log)"
mkdir -p build
t_build=$(date +%s)
if ! "$PY" -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller \
    installer/seed-studio.spec > build/bundle-build.log 2>&1; then
  tail -n 60 build/bundle-build.log
  echo "error: the bundle build failed (full log: build/bundle-build.log)"
  exit 1
fi
grep "seed-studio.spec:" build/bundle-build.log || true
build_s=$(( $(date +%s) - t_build ))
B=dist/seed-studio
[ -x "$B/seed-studio" ] || { echo "error: $B/seed-studio was not built"; exit 1; }

# cold start: a fresh process with a fresh profile (no settings, no recent projects), to the
# first paint of the main window (ui/launcher.py, SEED_STUDIO_STARTUP_PROBE); offscreen and on X11
start_s() {  # $1 = Qt platform; prints seconds from exec to the first painted window
  local home t0 paint
  home=$(mktemp -d)
  t0=$(date +%s.%N)
  paint=$(env HOME="$home" XDG_CONFIG_HOME="$home/.config" XDG_DATA_HOME="$home/.local/share" \
      XDG_CACHE_HOME="$home/.cache" QT_QPA_PLATFORM="$1" SEED_STUDIO_STARTUP_PROBE=1 \
      timeout 180 "$B/seed-studio" 2>"$home/stderr" | awk 'sub(/^first paint: /, "") && !n++') || true
  if [ -z "$paint" ]; then echo "failed"; tail -n 5 "$home/stderr" >&2; rm -rf "$home"; return 0; fi
  rm -rf "$home"
  awk -v a="$t0" -v b="$paint" 'BEGIN { printf "%.2f", b - a }'
}
echo "== bundle: cold start to the first painted window"
offscreen=()
for i in 1 2 3; do offscreen+=("$(start_s offscreen)"); done
echo "offscreen: first ${offscreen[0]} s, then ${offscreen[1]} s, ${offscreen[2]} s"
# X11: a virtual X server (Xvfb) shows that the bundle's xcb plug-in and libraries open a
# window; installed here when missing (best effort: without it only offscreen is measured)
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
if ! command -v Xvfb >/dev/null && command -v apt-get >/dev/null; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb >/dev/null 2>&1 \
    || echo "note: could not install Xvfb; the X11 start is not measured"
fi
xcb="not measured (no Xvfb)"
if command -v Xvfb >/dev/null; then
  # Xvfb picks a free display and writes its number once it accepts connections (up to
  # 10 s here); a server that never comes up is a note, not a failure
  dfile=$(mktemp)
  Xvfb -displayfd 3 -screen 0 1920x1080x24 -nolisten tcp 3>"$dfile" >/dev/null 2>&1 &
  xvfb_pid=$!
  for _ in $(seq 50); do [ -s "$dfile" ] && break; sleep 0.2; done
  n=$(tr -dc 0-9 < "$dfile"); rm -f "$dfile"
  if [ -n "$n" ]; then
    xcb1=$(DISPLAY=":$n" start_s xcb); xcb2=$(DISPLAY=":$n" start_s xcb)
    [ "$xcb1" != failed ] || { kill "$xvfb_pid" 2>/dev/null || true; echo "error: the bundled app did not open its window on X11 (xcb)"; exit 1; }
    xcb="first $xcb1 s, then $xcb2 s"
    echo "xcb (Xvfb): $xcb"
  else
    xcb="not measured (Xvfb did not start)"
    echo "note: Xvfb did not start; the X11 start is not measured"
  fi
  kill "$xvfb_pid" 2>/dev/null || true
  wait "$xvfb_pid" 2>/dev/null || true
fi
[ "${offscreen[0]}" != failed ] || { echo "error: the bundled app did not paint its window"; exit 1; }

size_mb=$(du -sm "$B" | cut -f1)
files=$(find "$B" -type f | wc -l)
echo "== bundle: largest parts"
# (no `head` in a pipeline: under pipefail the writer it cuts off would end the script with SIGPIPE)
du -sm "$B"/_internal/* 2>/dev/null | sort -rn | awk 'NR <= 8 {printf "  %6d MB  %s\n", $1, $2}'
archive=""
if [ "${SEED_STUDIO_BUNDLE_ARCHIVE:-0}" = 1 ]; then
  version=$("$PY" -c "import studio; print(studio.__version__)")
  archive="dist/seed-studio-$version-$(uname -s | tr A-Z a-z)-$(uname -m)-$SEED_STUDIO_BUNDLE_VARIANT.tar.gz"
  tar -C dist -czf "$archive" seed-studio
fi
total_s=$(( $(date +%s) - t_start ))
cat <<SUMMARY
== bundle: summary
bundle:      $B ($SEED_STUDIO_BUNDLE_VARIANT torch)
size:        $size_mb MB in $files files${archive:+; archive $archive ($(du -sm "$archive" | cut -f1) MB)}
build time:  ${build_s} s PyInstaller, ${total_s} s in all (with the tool install and the start measurements)
cold start:  offscreen ${offscreen[0]} s (fresh process and profile; then ${offscreen[1]} s, ${offscreen[2]} s); xcb: $xcb
SUMMARY
