"""``seed-studio separate``: stem separation of an audio file or of a project track.

Examples::

    seed-studio separate song.flac --model htdemucs --stems vocals,drums,bass,other --out stems/
    seed-studio separate song.wav --stems vocals --out stems/          # vocals + instrumental
    seed-studio separate Song.seedproj --track Mix --model htdemucs_6s   # stem tracks in the project
    seed-studio separate Song.seedproj --track 1 --start 30 --end 45 --model dsp

On a file, each stem is written to ``DIR/<stem>.<format>`` with exactly the input's
sample rate, channels and length. On a project (a ``.seedproj`` bundle), the stems
become tracks grouped under the source track (which is muted), as one undo step, and
the project is saved; ``--out`` then also writes the stem files.

``--model dsp`` is the offline DSP fallback (no download, rough stems).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from studio.errors import StudioError

DSP_ALIASES = ("dsp", "dsp-hpss-centre", "dsp-separation")


def _engine_and_model(model: str) -> tuple[str, str]:
    if model in DSP_ALIASES:
        return "dsp-separation", "dsp-hpss-centre"
    from engines.registry import get_entry

    if model not in get_entry("htdemucs").models:
        known = ", ".join([*get_entry("htdemucs").models, "dsp"])
        raise StudioError(f"unknown separation model '{model}' (models: {known})")
    return "htdemucs", model


def _params(args: argparse.Namespace, engine_id: str) -> dict[str, Any]:
    if engine_id != "htdemucs":
        return {}
    params: dict[str, Any] = {"residual": bool(args.residual), "shifts": int(args.shifts), "overlap": float(args.overlap)}
    if args.segment is not None:
        params["segment"] = float(args.segment)
    if args.batch_size is not None:
        params["batch_size"] = int(args.batch_size)
    return params


def _stems(args: argparse.Namespace) -> list[str]:
    return [s.strip() for s in (args.stems or "").split(",") if s.strip()]


def _is_bundle(path: Path) -> bool:
    return path.suffix == ".seedproj" or (path.is_dir() and (path / "project.json").is_file())


def _write_stems(outputs: dict[str, Any], sample_rate: int, out_dir: Path, fmt: str, bit_depth: str) -> list[Path]:
    from studio.io.audio_io import write_audio

    subtype = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT"}[bit_depth]
    if fmt == "flac" and subtype == "FLOAT":
        raise StudioError("FLAC can't hold 32-bit float; use --bit-depth 16 or 24, or --format wav")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, audio in outputs.items():
        path = out_dir / f"{name}.{fmt}"
        write_audio(path, audio, sample_rate, subtype=subtype)
        paths.append(path)
    return paths


def _progress():
    from studio.cli.main import progress_bar

    update, close = progress_bar("separate")
    return (lambda f, stage="": update(f)), close


def cmd_separate(args: argparse.Namespace) -> int:
    """Handler of ``seed-studio separate``; returns the exit code."""
    from engines import base
    from engines.devices import choose_device, choose_dtype
    from engines.registry import get_engine_class

    if args.models_dir:
        os.environ["SEED_STUDIO_MODELS_DIR"] = str(args.models_dir)
    engine_id, model_id = _engine_and_model(args.model)
    stems = _stems(args)
    params = _params(args, engine_id)
    source = Path(args.song)
    engine = get_engine_class(engine_id)()
    device = choose_device(args.device, tuple(getattr(engine, "devices", ("cpu",))))
    engine.load(device, choose_dtype(device, tuple(engine.dtypes), args.dtype))

    if _is_bundle(source):
        return _separate_project(args, source, engine, engine_id, model_id, stems, params)
    if args.track or args.start is not None or args.end is not None or args.region:
        raise StudioError(f"'{source}' is not a project: --track, --region, --start and --end need a .seedproj")
    if not args.out:
        raise StudioError("give --out DIR: the folder where the stem files go")
    from studio.io.audio_io import read_audio

    audio, sr = read_audio(source)
    if audio.shape[0] > 2:
        from studio.io.audio_io import downmix_to_stereo

        audio = downmix_to_stereo(audio, sr)
    spec = base.SeparateSpec(engine_id=engine_id, model_id=model_id, audio=audio, sample_rate=sr,
                             stems=stems, params=params, seed=int(args.seed))
    update, close = _progress()
    try:
        result = engine.run(spec, base.ProgressReporter(lambda f, s, eta: update(f)), base.CancelToken())
    finally:
        close()
    paths = _write_stems(result.outputs, sr, Path(args.out), args.format, args.bit_depth)
    for p in paths:
        print(f"wrote {p}")
    print(f"{len(paths)} stem(s) of '{source.name}', {audio.shape[1]} frames at {sr} Hz, model {model_id}"
          + (" (DSP fallback)" if engine_id == "dsp-separation" else ""))
    return 0


def _separate_project(args, bundle, engine, engine_id, model_id, stems, params) -> int:
    from studio.cli.main import resolve_tracks
    from studio.audio.render import render_track_raw
    from studio.tasks.separate import separate_track
    from studio.io.session import Session

    if not args.track:
        raise StudioError("give --track NAME|NUMBER|ID: the project track to separate")
    s = Session.open(bundle)
    try:
        project = s.project
        sr = project.sample_rate
        (track_id,) = resolve_tracks(project, args.track)[:1]
        start = None if args.start is None else int(round(float(args.start) * sr))
        end = None if args.end is None else int(round(float(args.end) * sr))
        if args.region:
            match = [r for r in project.regions if r.name == args.region or r.id == args.region]
            if not match:
                names = ", ".join(r.name for r in project.regions) or "none"
                raise StudioError(f"no region named '{args.region}' (regions: {names})")
            start, end = match[0].start, match[0].end
        update, close = _progress()
        try:
            tracks = separate_track(s, track_id, engine_id=engine_id, model_id=model_id, stems=stems, params=params,
                                    start=start, end=end, seed=int(args.seed), engine=engine, progress=update)
        finally:
            close()
        s.save()
        for t in tracks:
            print(f"added track '{t.name}'")
        if args.out:
            outputs = {}
            for t in tracks:
                group = t.take_groups[0]
                outputs[t.name.rsplit(" ", 1)[-1]] = render_track_raw(project, s.pool, t.id, group.start, group.end)
            for p in _write_stems(outputs, sr, Path(args.out), args.format, args.bit_depth):
                print(f"wrote {p}")
    finally:
        s.close()
    return 0


def register(subparsers: Any) -> None:
    """Add the ``separate`` subcommand to the ``seed-studio`` parser."""
    p = subparsers.add_parser(
        "separate", help="split a song (audio file or project track) into stems",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("song", help="an audio file, or a .seedproj project (then give --track)")
    p.add_argument("--model", default="htdemucs", help="htdemucs (default), htdemucs_ft, htdemucs_6s, or dsp (offline fallback)")
    p.add_argument("--stems", default="", help="comma-separated stems to keep, e.g. vocals or vocals,drums "
                   "(the rest is summed into a complement stem such as 'instrumental'); default all")
    p.add_argument("--out", help="folder for the stem files (required for an audio file)")
    p.add_argument("--track", help="project track to separate: name, 1-based number or id")
    p.add_argument("--region", help="project region (name or id) to separate; default the whole track")
    p.add_argument("--start", type=float, help="start of the range to separate, seconds")
    p.add_argument("--end", type=float, help="end of the range to separate, seconds")
    p.add_argument("--residual", action="store_true", help="stems sum exactly to the mixture (the residual goes to 'other')")
    p.add_argument("--shifts", type=int, default=0, help="random-shift passes to average (test-time augmentation)")
    p.add_argument("--segment", type=float, help="chunk length in seconds (default: the model's, 7.8 s)")
    p.add_argument("--overlap", type=float, default=0.25, help="minimum chunk overlap, fraction of a segment (default 0.25)")
    p.add_argument("--batch-size", type=int, help="chunks per model call (default 1 on CPU, 4 on GPU)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: best available)")
    p.add_argument("--dtype", choices=("float32", "float16"), help="GPU compute dtype (default float16 autocast on CUDA)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shift offsets")
    p.add_argument("--format", choices=("wav", "flac"), default="wav", help="stem file format (default wav)")
    p.add_argument("--bit-depth", choices=("16", "24", "float"), default="24", help="stem file bit depth (default 24)")
    p.add_argument("--models-dir", help="models folder (default: $SEED_STUDIO_MODELS_DIR or the user cache)")
    p.set_defaults(func=cmd_separate)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run it as: seed-studio separate ...")
