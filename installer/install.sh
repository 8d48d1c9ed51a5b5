#!/usr/bin/env bash
# Install Seed Studio and what it needs on this machine:
#   1. system libraries: FluidSynth and a General MIDI SoundFont (for MIDI tracks), and the
#      X11/xcb libraries Qt's window system plugin needs (a bare desktop lacks libxcb-cursor0,
#      libxcb-icccm4, libxcb-keysyms1...), through the system package manager when one is available;
#   2. PyTorch (CPU build by default; set SEED_STUDIO_TORCH to pick another, e.g. a CUDA build);
#   3. Seed Studio itself with its test tools (pip, editable), and essentia (the tempo
#      estimators of the analysis; optional: without it the analysis still runs).
# Usage: bash installer/install.sh        (PYTHON=python3.12 to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
TORCH_SPEC="${SEED_STUDIO_TORCH:-torch==2.13.0}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

# The libraries Qt 6's xcb platform plugin loads (a desktop without them gets "Could not load
# the Qt platform plugin xcb"): one list per package manager.
APT_QT="libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0
  libxcb-xkb1 libxcb-randr0 libxcb-shape0 libxkbcommon-x11-0 libegl1 libfontconfig1 libdbus-1-3"
DNF_QT="xcb-util-cursor xcb-util-wm xcb-util-keysyms xcb-util-image xcb-util-renderutil libxkbcommon-x11
  mesa-libEGL fontconfig dbus-libs"
PACMAN_QT="xcb-util-cursor xcb-util-wm xcb-util-keysyms xcb-util-image xcb-util-renderutil libxkbcommon-x11
  libglvnd fontconfig dbus"

echo "== system libraries (FluidSynth, GM SoundFont, Qt's X11/xcb libraries)"
if command -v apt-get >/dev/null; then
  as_root apt-get update -qq || echo "warning: apt-get update failed; trying with the current lists"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libfluidsynth3 fluid-soundfont-gm \
    || echo "warning: could not install FluidSynth/SoundFont; MIDI tracks will render silent with a clear error"
  # shellcheck disable=SC2086
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $APT_QT \
    || echo "warning: could not install Qt's xcb libraries ($APT_QT); the window may not open on X11"
elif command -v dnf >/dev/null; then
  as_root dnf install -y fluidsynth-libs fluid-soundfont-gm || echo "warning: FluidSynth not installed"
  # shellcheck disable=SC2086
  as_root dnf install -y $DNF_QT || echo "warning: Qt's xcb libraries not installed ($DNF_QT)"
elif command -v pacman >/dev/null; then
  as_root pacman -S --noconfirm fluidsynth soundfont-fluid || echo "warning: FluidSynth not installed"
  # shellcheck disable=SC2086
  as_root pacman -S --noconfirm --needed $PACMAN_QT || echo "warning: Qt's xcb libraries not installed"
elif command -v brew >/dev/null; then
  brew install fluid-synth || echo "warning: FluidSynth not installed"
  echo "note: put a General MIDI SoundFont (.sf2) in the folder shown by 'seed-studio info' or set SEED_STUDIO_SOUNDFONT"
else
  echo "note: install FluidSynth and a General MIDI SoundFont yourself for MIDI tracks"
fi

echo "== PyTorch ($TORCH_SPEC)"
if ! "$PY" -c "import torch, sys; v=tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(v < (2, 6))" 2>/dev/null; then
  # SEED_STUDIO_TORCH may carry pip options: "torch==2.13.0 --index-url URL" with the URL of the
  # CUDA wheels that pytorch.org's install selector names (README "Desktop bundle")
  # shellcheck disable=SC2086
  "$PY" -m pip install --quiet $TORCH_SPEC
fi

echo "== Seed Studio"
"$PY" -m pip install --quiet -e ".[dev]"
# Packages whose declared dependencies would pull TensorFlow or another torch build:
# installed without them; what they really need is in pyproject.toml.
if [ -f installer/no-deps.txt ]; then
  grep -v '^\s*#' installer/no-deps.txt | grep -v '^\s*$' | xargs -r "$PY" -m pip install --quiet --no-deps
fi
echo "== essentia (tempo estimators; optional, AGPL-3.0)"
"$PY" -m pip install --quiet "essentia>=2.1b6.dev1389" \
  || echo "note: no essentia wheel for this platform; the tempo analysis uses its librosa estimators instead"
echo "== compiling librosa's numba kernels once (a single process, so parallel runs only read the cache)"
"$PY" -m engines.analysis.warmup
"$PY" -c "import studio, engines; print('Seed Studio installed:', studio.__version__)"
if [ "$(uname)" = Linux ] && [ -n "${DISPLAY:-}" ]; then
  # the window system plugin loads, or says which library is missing
  QT_DEBUG_PLUGINS=0 "$PY" -c "from PyQt6.QtWidgets import QApplication; QApplication(['t']); print('Qt: the xcb window system works')" \
    || echo "warning: Qt could not open a window on this display; run with QT_DEBUG_PLUGINS=1 to see the missing library"
fi
