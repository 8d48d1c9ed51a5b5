#!/usr/bin/env bash
# Smoke test of the desktop bundle built by installer/build_bundle.sh, run from inside the
# bundle with a fresh profile and a clean environment (none of the build's Python on PATH):
#   1. seed-studio --version
#   2. the bundle's self-check (SEED_STUDIO_BUNDLE_CHECK=1): every engine class imports, each
#      lazily imported library imports, libfluidsynth and the SoundFont come from the bundle,
#      Qt's xcb plug-in loads with its libraries
#   3. seed-studio models list: the same engines and models as the source tree, nothing downloaded
#   4. a project from ../shared material (real music, a multitrack mixture, a drum break): new, import, info
#   5. seed-studio separate with the offline model (--model dsp): the engine host is a spawned
#      child process of the frozen app; the 4 stems land in the project
#   6. seed-studio screenshot of that project (offscreen Qt)
#   7. seed-studio render of the MIDI song: FluidSynth with the bundled SoundFont, not silent
# Usage: bash installer/smoke_bundle.sh  (PYTHON: the build's Python, only to list the source
# tree's models for step 3; SEED_STUDIO_BUNDLE: the bundle folder, default dist/seed-studio;
# SEED_STUDIO_SMOKE_KEEP=FILE.png keeps the screenshot)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
BUNDLE="$(cd "${SEED_STUDIO_BUNDLE:-dist/seed-studio}" && pwd)"
[ -d ../shared ] || { echo "error: ../shared (the test material) is missing"; exit 1; }
SHARED="$(cd ../shared && pwd)"
EXE="$BUNDLE/seed-studio"
[ -x "$EXE" ] || { echo "error: no bundle at $BUNDLE (run installer/build_bundle.sh)"; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/home" "$WORK/models"
t_all=$(date +%s)

# the bundle alone: fresh home, empty models folder, a PATH without the build's Python
run() {
  env -i HOME="$WORK/home" PATH=/usr/bin:/bin LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen \
    SEED_STUDIO_MODELS_DIR="$WORK/models" HF_HUB_OFFLINE=1 ${EXTRA_ENV:-} "$EXE" "$@"
}
step() { echo; echo "== smoke: $*"; t_step=$(date +%s); }
took() { echo "   ($(( $(date +%s) - t_step )) s)"; }
fail() { echo "SMOKE FAILED: $*"; exit 1; }

step "seed-studio --version"
out=$(run --version); echo "$out"
[[ "$out" == "seed-studio "* ]] || fail "--version printed '$out'"
took

step "bundle self-check (SEED_STUDIO_BUNDLE_CHECK=1)"
EXTRA_ENV="SEED_STUDIO_BUNDLE_CHECK=1" run > "$WORK/check.txt" 2>"$WORK/check.err" || {
  cat "$WORK/check.txt"; tail -n 20 "$WORK/check.err"; fail "the bundle self-check failed"; }
grep -E "^(FAIL|bundle check)|engine |libfluidsynth|SoundFont|xcb" "$WORK/check.txt"
echo "   $(grep -c '^ok ' "$WORK/check.txt") checks passed"
took

step "seed-studio models list (same engines and models as the source tree)"
run models list > "$WORK/models.txt"
head -n 3 "$WORK/models.txt"; echo "   ..."; tail -n 1 "$WORK/models.txt"
"$PY" -c "
from engines import registry
print('\n'.join(sorted(m.id + ' ' + m.engine for m in registry.list_models())))" > "$WORK/models.expected"
awk 'NR > 1 && NF >= 2 && $1 != "models" {print $1 " " $2}' "$WORK/models.txt" | sort > "$WORK/models.bundle"
diff "$WORK/models.expected" "$WORK/models.bundle" > /dev/null || {
  diff "$WORK/models.expected" "$WORK/models.bundle" || true; fail "the bundle lists other models than the source tree"; }
echo "   $(wc -l < "$WORK/models.bundle") models of $(cut -d' ' -f2 "$WORK/models.bundle" | sort -u | wc -l) engines, as in the source tree"
[ -z "$(ls -A "$WORK/models")" ] || fail "something was downloaded into the models folder"
took

step "a project from ../shared: real music, a rendered multitrack mixture and a drum break"
P="$WORK/Smoke Song.seedproj"
run new "$P" --bpm 80
run import "$P" "$SHARED/audio/uncertain_future_30s.flac" "$SHARED/multitrack/blupi001/mixture.flac" \
  "$SHARED/audio/lmms_break01.ogg"
run info "$P"
took

step "seed-studio separate --model dsp (engine host: a spawned child of the frozen app)"
before=$(run info "$P" | grep -c -E "^ +[0-9]+\. ") || true
run separate "$P" --track 1 --model dsp --start 0 --end 20 2>"$WORK/sep.err" | tee "$WORK/sep.txt" || {
  tail -n 30 "$WORK/sep.err"; fail "separate"; }
grep -q "stem(s)" "$WORK/sep.txt" || fail "separate printed no stems"
after=$(run info "$P" | grep -c -E "^ +[0-9]+\. ") || true
[ "$after" -eq $(( before + 4 )) ] || fail "separate: $before tracks before, $after after (4 stems expected)"
echo "   $before tracks before, $after after: the 4 stems are in the project"
took

step "seed-studio screenshot (of the project with its stems)"
run screenshot "$P" "$WORK/shot.png" --size 1280x800 2>"$WORK/shot.err" || { cat "$WORK/shot.err"; fail "screenshot"; }
[ "$(head -c 8 "$WORK/shot.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "screenshot is not a PNG"
shot_kb=$(( $(stat -c %s "$WORK/shot.png") / 1024 ))
[ "$shot_kb" -gt 20 ] || fail "screenshot is only $shot_kb KB"
echo "   PNG, $shot_kb KB"
[ -z "${SEED_STUDIO_SMOKE_KEEP:-}" ] || cp "$WORK/shot.png" "$SEED_STUDIO_SMOKE_KEEP"
took

step "seed-studio render of a GM MIDI song, blupi_music001.mid (bundled FluidSynth and FluidR3 GM SoundFont)"
M="$WORK/Midi.seedproj"
run new "$M" > /dev/null
run import "$M" "$SHARED/midi/blupi_music001.mid" > /dev/null
run render "$M" "$WORK/midi.wav" --start 0 --end 10 2>"$WORK/render.err" | tee "$WORK/render.txt" || {
  tail -n 20 "$WORK/render.err"; fail "render"; }
lufs=$(sed -n 's/.*loudness \(-\?[0-9.]*\) LUFS.*/\1/p' "$WORK/render.txt" | awk 'NR == 1')
[ -n "$lufs" ] && awk -v l="$lufs" 'BEGIN { exit !(l > -60) }' || fail "the MIDI render is silent (loudness '$lufs')"
took

echo
echo "== smoke: all passed in $(( $(date +%s) - t_all )) s"
