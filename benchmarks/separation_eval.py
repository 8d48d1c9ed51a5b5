"""Separation quality (SDR) of a model on folders of reference stems plus their mixture.

Layouts understood (one folder per track; give a track folder or a folder of them):

* ``mixture.<ext>`` + one file per stem (``drums``, ``bass``, ``other``, ``vocals``...),
  as in the Slakh-style ``blupi001`` test multitrack and MUSDB18-HQ (``<split>/<track>/``),
  any of wav/flac/aiff.

Metrics, per track and stem:

* **cSDR**: BSSEval v4 SDR as in SiSEC 2018 (museval ``bss_eval`` with 1 s windows and
  hops, time-invariant 512-tap distortion filters), the median over the frames (frames
  with silent references are NaN and skipped) - Stöter et al., "The 2018 Signal
  Separation Evaluation Campaign", LVA/ICA 2018.
* **uSDR**: the whole-track ("utterance") SDR of the Music Demixing Challenge 2021:
  ``10 log10(sum(s^2) + eps) / (sum((s - s_hat)^2) + eps)`` - Mitsufuji et al., "Music
  Demixing Challenge 2021", Frontiers in Signal Processing 2022.

Model stems missing from the reference (e.g. vocals on an instrumental multitrack) are
added to the reference's "other" estimate (``--no-fold`` to drop them instead). Tables
give per-track values and the median over tracks.

Usage::

    python benchmarks/separation_eval.py ../shared/multitrack/blupi001 --model dsp
    python benchmarks/separation_eval.py /data/musdb18hq/test --model htdemucs --json out.json
    python benchmarks/separation_eval.py TRACKS --model htdemucs_ft --models-dir /models

``--model`` is a model id (htdemucs, htdemucs_ft, htdemucs_6s: installed with
``seed-studio models download``), ``dsp`` (the offline fallback), or ``random`` (the
full-size htdemucs architecture with random weights: a pipeline check, not a quality
figure).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AUDIO_EXT = (".wav", ".flac", ".aif", ".aiff")
EPS = 1e-7


def _museval_metrics() -> Any:
    """``museval.metrics`` (BSSEval v4). The package's ``__init__`` imports musdb, which
    needs the ffmpeg binary only to decode MUSDB's .mp4 stems; when that import fails
    the metrics module (numpy/scipy only) is loaded from its file directly."""
    try:
        import museval.metrics as metrics

        return metrics
    except Exception:
        spec = importlib.util.find_spec("museval")
        if spec is None or spec.origin is None:
            raise SystemExit("museval is not installed: pip install museval") from None
        path = Path(spec.origin).parent / "metrics.py"
        mspec = importlib.util.spec_from_file_location("museval_metrics_standalone", path)
        module = importlib.util.module_from_spec(mspec)
        mspec.loader.exec_module(module)  # type: ignore[union-attr]
        return module


def usdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Whole-track SDR in dB (MDX 2021 definition) of ``(channels, frames)`` arrays."""
    ref = reference.astype(np.float64)
    err = ref - estimate.astype(np.float64)
    return float(10 * np.log10((np.sum(ref**2) + EPS) / (np.sum(err**2) + EPS)))


def csdr(references: np.ndarray, estimates: np.ndarray, sample_rate: int) -> np.ndarray:
    """BSSEval v4 median-of-frames SDR per source.

    Args:
        references, estimates: ``(sources, channels, frames)``.
        sample_rate: Hz (window and hop are 1 s).

    Returns:
        ``(sources,)`` dB; NaN for a source whose reference is silent in every frame.
    """
    metrics = _museval_metrics()
    ref = np.transpose(references, (0, 2, 1)).astype(np.float64)
    est = np.transpose(estimates, (0, 2, 1)).astype(np.float64)
    sdr, _isr, _sir, _sar, _perm = metrics.bss_eval(
        ref, est, window=int(sample_rate), hop=int(sample_rate), compute_permutation=False,
        filters_len=512, framewise_filters=False, bsseval_sources_version=False,
    )
    with np.errstate(all="ignore"):
        return np.array([np.nanmedian(row) if np.isfinite(row).any() else np.nan for row in sdr])


def find_tracks(folder: Path) -> list[Path]:
    """Track folders under ``folder`` (itself if it holds a mixture file)."""
    def has_mix(p: Path) -> bool:
        return any((p / f"mixture{e}").is_file() for e in AUDIO_EXT)

    if has_mix(folder):
        return [folder]
    tracks = sorted(p for p in folder.rglob("*") if p.is_dir() and has_mix(p))
    if not tracks:
        raise SystemExit(f"no track folder with a mixture file under '{folder}'")
    return tracks


def load_track(folder: Path, start: float, duration: float | None) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """``(mixture, {stem: audio}, sample_rate)``, each ``(channels, frames)`` float32."""
    import soundfile as sf

    files = {p.stem: p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXT}
    mix_path = files.pop("mixture")
    info = sf.info(str(mix_path))
    sr = int(info.samplerate)
    a = int(start * sr)
    b = None if duration is None else a + int(duration * sr)

    def read(p: Path) -> np.ndarray:
        data, r = sf.read(str(p), dtype="float32", always_2d=True, start=a, stop=b)
        if r != sr:
            raise SystemExit(f"'{p}' is at {r} Hz but the mixture is at {sr} Hz")
        return np.ascontiguousarray(data.T)

    mix = read(mix_path)
    stems = {name: read(p) for name, p in sorted(files.items())}
    n = min([mix.shape[1], *(s.shape[1] for s in stems.values())])
    return mix[:, :n], {k: v[:, :n] for k, v in stems.items()}, sr


def make_separator(model: str, device: str, models_dir: str | None):
    """A function ``(audio, sample_rate) -> {stem: audio}`` for ``model``."""
    from engines import base

    if models_dir:
        os.environ["SEED_STUDIO_MODELS_DIR"] = models_dir
    from engines.registry import get_engine_class

    if model == "dsp":
        engine = get_engine_class("dsp-separation")()
        model_id = "dsp-hpss-centre"
    else:
        engine = get_engine_class("htdemucs")()
        model_id = model
        if model == "random":
            from engines.separation.demucs_adapter import full_size_htdemucs

            engine.use_model("random", full_size_htdemucs(seed=0))
    engine.load(device, "float16" if device.startswith("cuda") else "float32")

    def run(audio: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        spec = base.SeparateSpec(model_id=model_id, audio=audio, sample_rate=sr)
        res = engine.run(spec, base.ProgressReporter(), base.CancelToken())
        return {k: np.asarray(v) for k, v in res.outputs.items()}

    return run


def evaluate_track(estimates: dict[str, np.ndarray], references: dict[str, np.ndarray], sr: int,
                   fold: bool = True) -> dict[str, dict[str, float]]:
    """cSDR and uSDR per reference stem: ``{stem: {"cSDR": dB, "uSDR": dB}}``.

    Estimates of stems the reference lacks are added to "other" when ``fold`` (and the
    reference has "other"); reference stems the model lacks are skipped.
    """
    est = dict(estimates)
    extra = [k for k in est if k not in references]
    if fold and "other" in references and "other" in est:
        for k in extra:
            est["other"] = est["other"] + est[k]
    names = [k for k in references if k in est]
    if not names:
        raise SystemExit(f"no stem in common: model {sorted(estimates)}, reference {sorted(references)}")
    ref = np.stack([references[k] for k in names])
    es = np.stack([est[k] for k in names])
    c = csdr(ref, es, sr)
    return {k: {"cSDR": float(c[i]), "uSDR": usdr(references[k], est[k])} for i, k in enumerate(names)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="a track folder, or a folder of track folders (MUSDB18-HQ split)")
    ap.add_argument("--model", default="htdemucs", help="htdemucs, htdemucs_ft, htdemucs_6s, dsp or random")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models-dir", help="models folder (default: $SEED_STUDIO_MODELS_DIR or the user cache)")
    ap.add_argument("--start", type=float, default=0.0, help="seconds skipped at the start of each track")
    ap.add_argument("--duration", type=float, help="seconds evaluated per track (default: all)")
    ap.add_argument("--no-fold", action="store_true", help="drop model stems missing from the reference")
    ap.add_argument("--json", help="write all figures to this JSON file")
    args = ap.parse_args(argv)

    separator = make_separator(args.model, args.device, args.models_dir)
    tracks = find_tracks(Path(args.folder))
    results: dict[str, Any] = {}
    print(f"model {args.model}, {len(tracks)} track(s), device {args.device}")
    for folder in tracks:
        mix, refs, sr = load_track(folder, args.start, args.duration)
        t0 = time.perf_counter()
        est = separator(mix, sr)
        elapsed = time.perf_counter() - t0
        scores = evaluate_track(est, refs, sr, fold=not args.no_fold)
        results[folder.name] = {"scores": scores, "seconds": elapsed, "rtf": elapsed / (mix.shape[1] / sr)}
        cells = "  ".join(f"{k}: cSDR {v['cSDR']:6.2f} uSDR {v['uSDR']:6.2f}" for k, v in scores.items())
        print(f"{folder.name:<28} RTF {elapsed / (mix.shape[1] / sr):.2f}  {cells}", flush=True)
    stems = sorted({k for r in results.values() for k in r["scores"]})
    summary = {}
    print("\nmedian over tracks (dB):")
    for k in stems:
        c = [r["scores"][k]["cSDR"] for r in results.values() if k in r["scores"]]
        u = [r["scores"][k]["uSDR"] for r in results.values() if k in r["scores"]]
        summary[k] = {"cSDR": float(np.nanmedian(c)) if np.isfinite(c).any() else math.nan,
                      "uSDR": float(np.median(u))}
        print(f"  {k:<12} cSDR {summary[k]['cSDR']:6.2f}   uSDR {summary[k]['uSDR']:6.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "tracks": results, "median": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
