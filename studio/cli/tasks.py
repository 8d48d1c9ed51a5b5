"""The task commands (``separate``, ``transcribe``, ``analyze``, ``generate``, ``extend``,
``inpaint``, ``add-stem``, ``restyle``, ``convert-voice``), generated from each task's
request schema (:mod:`studio.tasks`), so their flags and defaults are the app's.

Each runs on a project (``Song.seedproj``: the result lands as takes or tracks, one undo
step, and the project is saved) or on an audio file (a temporary project at the file's
sample rate runs the very same job; the results are written with ``--out``). Jobs run
in the engine host process with a progress bar; Ctrl-C cancels the job and adds nothing.

Flags: the task's own fields (``--prompt``, ``--stems``, ``--bars``...), the model
(``--model``, ``--model-path``, ``--seed``, ``--device``), and every parameter of the
task's engines (``--shifts``, ``--steps``...; a parameter the chosen model's engine does
not have is refused). Targets: ``--track``, ``--start``/``--end`` (seconds),
``--bars A-B`` (bar numbers, 1-based, inclusive), ``--region NAME``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from studio.errors import StudioError
from studio.tasks import Target, Task, TaskError, all_tasks

COMMON = ("model", "model_path", "seed", "device")
SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT"}


# ---------------------------------------------------------------- flags from the schema

def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _list_type(item_type: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        return [item_type(x.strip()) for x in text.split(",") if x.strip()]

    parse.__name__ = "list"
    return parse


def _kind(prop: dict[str, Any]) -> str:
    t = prop.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    return str(t or "string")


def add_schema_argument(p: argparse.ArgumentParser, name: str, prop: dict[str, Any], dest: str,
                        flag: str | None = None, extra_help: str = "") -> None:
    """One argparse option for one JSON Schema property (default None = "not given", so the
    schema's own default applies and the app and the CLI agree)."""
    kind = _kind(prop)
    desc = str(prop.get("description") or prop.get("title") or name)
    default = prop.get("default")
    shown = "" if default in (None, "", []) else f" (default: {','.join(map(str, default)) if isinstance(default, list) else default})"
    kw: dict[str, Any] = {"dest": dest, "default": None, "help": desc + shown + extra_help}
    if kind == "boolean":
        kw["action"] = argparse.BooleanOptionalAction
    elif kind == "array":
        items = prop.get("items") or {}
        conv = {"integer": int, "number": float}.get(_kind(items), str)
        kw["type"] = _list_type(conv)
        kw["metavar"] = "A,B,..."
        if items.get("enum"):
            kw["help"] += f" (choices: {', '.join(map(str, items['enum']))})"
    else:
        kw["type"] = {"integer": int, "number": float}.get(kind, str)
        kw["metavar"] = {"integer": "N", "number": "X"}.get(kind, "TEXT")
        if name.endswith("_path"):
            kw["metavar"] = "PATH"
        if prop.get("enum") and kind == "string" and name == "model":
            kw["help"] += f" (choices: {', '.join(map(str, prop['enum']))})"  # checked by the task: exit 1, not 2
            kw["metavar"] = "MODEL"
        elif prop.get("enum") and kind == "string":
            kw["choices"] = list(prop["enum"])
            kw.pop("metavar")
    p.add_argument(flag or _flag(name), **kw)


RESERVED = {"track", "start", "end", "bars_range", "region", "at", "bar", "sample_rate", "regions", "tracks", "clip",
            "models_dir", "out", "format", "bit_depth", "json", "help", "control_strength", "melody_from",
            "dynamics_from", "rhythm_from", *COMMON}


def _engine_params(task: Task) -> dict[str, tuple[dict[str, Any], list[str]]]:
    """Flag name -> (schema, engine ids) over every engine that can run ``task``. A
    parameter whose name is taken (by a task field, a target flag, or another engine's
    parameter of another type) gets the engine id in front: ``--<engine>-<name>``."""
    from engines.registry import list_engines

    taken = RESERVED | set(_task_fields(task))
    out: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for e in list_engines(task.runs()):
        for name, prop in (task.engine_schema(e).get("properties") or {}).items():
            if not isinstance(prop, dict):
                continue
            if name in out and _kind(out[name][0]) == _kind(prop):
                out[name][1].append(e.id)
            elif name in out or name in taken:
                out[f"{e.id}_{name}"] = (prop, [e.id])
            else:
                out[name] = (prop, [e.id])
    return out


def _task_fields(task: Task) -> dict[str, dict[str, Any]]:
    """The task's fields, with enums (e.g. stems) widened over every model."""
    fields = task.field_schema(None)
    for m in task.models():
        for name, prop in task.field_schema(m).items():
            items = prop.get("items") or {}
            if items.get("enum"):
                have = fields[name].setdefault("items", {}).setdefault("enum", [])
                have += [x for x in items["enum"] if x not in have]
    return fields


# ---------------------------------------------------------------- targets

def _seconds(value: float | None, sr: int) -> int | None:
    return None if value is None else int(round(float(value) * sr))


def _bar_range(project: Any, text: str) -> tuple[int, int]:
    """``"5-8"`` -> samples from the start of bar 5 to the end of bar 8 (1-based, inclusive)."""
    a, _, b = text.partition("-")
    try:
        first, last = int(a), int(b or a)
    except ValueError:
        raise StudioError(f"--bars takes bar numbers like 5-8, not '{text}'") from None
    if first < 1 or last < first:
        raise StudioError(f"--bars {text}: bars are numbered from 1, and the range must not be empty")
    tm, sr = project.tempo_map, project.sample_rate
    return tm.tick_to_sample(tm.bar_to_tick(first - 1), sr), tm.tick_to_sample(tm.bar_to_tick(last), sr)


def _target(task: Task, project: Any, args: argparse.Namespace, default_track: str | None = None) -> Target:
    from studio.cli.main import resolve_tracks

    sr = project.sample_rate
    track_id = resolve_tracks(project, args.track)[0] if getattr(args, "track", None) else default_track
    start, end = _seconds(getattr(args, "start", None), sr), _seconds(getattr(args, "end", None), sr)
    regions: tuple[tuple[int, int], ...] = ()
    if getattr(args, "bars_range", None):
        spans = [_bar_range(project, part) for part in args.bars_range.split(",") if part.strip()]
        if len(spans) == 1:
            start, end = spans[0]
        else:
            regions = tuple(spans)
    if getattr(args, "regions", None):
        regions = tuple(sorted(tuple(_seconds(float(x), sr) for x in part.split("-", 1))  # type: ignore[misc]
                               for part in args.regions.split(",") if part.strip()))
    if getattr(args, "region", None):
        match = [r for r in project.regions if r.name == args.region or r.id == args.region]
        if not match:
            names = ", ".join(r.name for r in project.regions) or "none"
            raise StudioError(f"no region named '{args.region}' (regions: {names})")
        start, end = match[0].start, match[0].end
    if getattr(args, "at", None) is not None:
        start = _seconds(args.at, sr)
    if getattr(args, "bar", None) is not None:
        if args.bar < 1:
            raise StudioError("--bar counts from 1")
        start = project.tempo_map.tick_to_sample(project.tempo_map.bar_to_tick(args.bar - 1), sr)
    if start is not None and end is not None and end <= start:
        raise StudioError(f"the range {start / sr:.3f}..{end / sr:.3f} s is empty (--end must be after --start)")
    track_ids = tuple(resolve_tracks(project, args.tracks) or ()) if getattr(args, "tracks", None) else ()
    clip_id = None
    if getattr(args, "clip", None):
        clip_id = _find_clip(project, track_id, args.clip)
    if track_id is None and clip_id is None and not track_ids and task.name not in ("generate", "add_stem"):
        raise StudioError(f"give --track (a name, 1-based number or id): the track to {task.name.replace('_', ' ')}")
    return Target(track_id=track_id, start=start, end=end, track_ids=track_ids, clip_id=clip_id, regions=regions)


def _find_clip(project: Any, track_id: str | None, name: str) -> str:
    tracks = [project.track(track_id)] if track_id else project.tracks
    for t in tracks:
        for c in t.clips:
            if c.id == name or c.name == name:
                return c.id
    raise StudioError(f"no clip named '{name}'" + (f" on track '{project.track(track_id).name}'" if track_id else ""))


# ---------------------------------------------------------------- request

def resolve_control_sources(project: Any, request: dict) -> dict:
    """The request with each control source's track or clip named by id (the CLI accepts
    names and 1-based numbers).

    Raises:
        StudioError: no such track or clip.
    """
    from studio.cli.main import resolve_tracks

    controls = request.get("controls")
    if not controls:
        return request
    out = {}
    for kind, c in controls.items():
        what, _, ref = c["source"].partition(":")
        if what in ("track", "lane") and ref:
            ref = resolve_tracks(project, ref)[0]
        elif what == "clip" and ref:
            ref = _find_clip(project, None, ref)
        out[kind] = {**c, "source": f"{what}:{ref}" if ref else what}
    return {**request, "controls": out}


def _request(task: Task, args: argparse.Namespace, params: dict[str, tuple[dict[str, Any], list[str]]]) -> dict:

    req: dict[str, Any] = {}
    for name in COMMON:
        v = getattr(args, f"c_{name}", None)
        if v is not None:
            req[name] = v
    for name in _task_fields(task):
        v = getattr(args, f"f_{name}", None)
        if v is not None:
            req[name] = v
    controls = {k: {"source": getattr(args, f"ctl_{k}")} for k in ("melody", "dynamics", "rhythm")
                if getattr(args, f"ctl_{k}", None)}
    for item in getattr(args, "control_strength", None) or []:
        name, _, value = item.partition("=")
        if name not in controls:
            raise StudioError(f"--control-strength {item}: give --{name}-from first (controls: melody, dynamics, rhythm)")
        try:
            controls[name]["strength"] = float(value)
        except ValueError:
            raise StudioError(f"--control-strength {item}: the strength must be a number") from None
    if controls:
        req["controls"] = controls
    engine = task.engine_for(task.model(req.get("model")))
    given: dict[str, Any] = {}
    for flag_name, (_prop, engines) in params.items():
        v = getattr(args, f"p_{flag_name}", None)
        if v is None:
            continue
        if engine.id not in engines:
            raise StudioError(f"{_flag(flag_name)} is a setting of {', '.join(engines)}, not of {engine.id} "
                              f"(the engine of model '{task.model(req.get('model')).id}')")
        real = flag_name.split("_", 1)[1] if flag_name.startswith(f"{engine.id}_") else flag_name
        given[real] = v
    req["params"] = given
    return req


# ---------------------------------------------------------------- outputs

def _write_audio(path: Path, audio: Any, sr: int, bit_depth: str, mono: bool) -> Path:
    from studio.io.audio_io import write_audio

    if path.suffix.lower() == ".flac" and bit_depth == "float":
        raise StudioError("FLAC can't hold 32-bit float; use --bit-depth 16 or 24, or a .wav file")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_audio(path, audio[:1] if mono else audio, sr, subtype=SUBTYPES[bit_depth])
    return path


def _numbered(out: Path, n: int, k: int, fmt: str) -> Path:
    if out.suffix:
        return out if n == 1 else out.with_name(f"{out.stem}-v{k}{out.suffix}")
    return out / (f"take.{fmt}" if n == 1 else f"take-v{k}.{fmt}")


def write_results(session: Any, task: Task, outcome: Any, before: set[str], target: Target, out: Path, *,
                  fmt: str = "wav", bit_depth: str = "24", mono: bool = False, whole: bool = False) -> list[Path]:
    """Write what a task job added to files under ``out``:

    * stems (new audio tracks of a separation) -> ``out/<stem>.<fmt>``;
    * a new MIDI track (transcription) -> ``out`` (a ``.mid`` file);
    * takes (generate, extend, inpaint, add-stem, restyle, convert-voice) -> one file per
      variation (``out``, or ``out-v2.wav``...): the track they landed on rendered with
      that take playing, over the whole track when ``whole`` (file mode: the file as
      changed), else over the take's range.

    Returns the written paths.
    """
    from studio.audio.render import render_track_raw
    from studio.io.midi_io import write_midi

    project, sr = session.project, session.project.sample_rate
    new = [t for t in project.tracks if t.id not in before]
    written: list[Path] = []
    if task.name == "separate":
        for t in new:
            g = t.take_groups[0]
            stem = str(t.provenance.get("stem") or t.name)
            written.append(_write_audio(out / f"{stem}.{fmt}", render_track_raw(project, session.pool, t.id, g.start,
                                                                               g.end), sr, bit_depth, mono))
        return written
    if task.name == "transcribe":
        for t in new:
            path = out if out.suffix.lower() in (".mid", ".midi") else out / f"{t.name}.mid"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_midi(path, [t], project.tempo_map)
            written.append(path)
        return written
    if outcome.command is None:
        return written
    job = outcome.job
    tracks = new or [project.track(target.track_id or target.track_ids[0])]
    for track in tracks:
        groups = [g for g in track.take_groups if any(tk.provenance.get("created") == job.result.provenance.created
                                                      for tk in g.takes)]
        if not groups:
            continue
        n = max(len(g.takes) for g in groups)
        old = {g.id: g.active_take_id for g in groups}
        try:
            for k in range(n):
                for g in groups:
                    mine = [tk for tk in g.takes if tk.provenance.get("created") == job.result.provenance.created]
                    g.active_take_id = mine[min(k, len(mine) - 1)].id
                if whole:
                    a, b = project.audio_track_span(track.id)
                    a = 0
                else:
                    a, b = min(g.start for g in groups), max(g.end for g in groups)
                audio = render_track_raw(project, session.pool, track.id, a, b)
                written.append(_write_audio(_numbered(out, n, k + 1, fmt), audio, sr, bit_depth, mono))
        finally:
            for g in groups:
                g.active_take_id = old[g.id]
    return written


# ---------------------------------------------------------------- running

def _is_bundle(path: str | None) -> bool:
    if not path:
        return False
    p = Path(path)
    return p.suffix == ".seedproj" or (p.is_dir() and (p / "project.json").is_file())


def _run(task: Task, session: Any, target: Target, request: dict, args: argparse.Namespace) -> Any:
    from studio.cli.main import progress_bar
    from studio.jobs.tasks import JobFailed, run_task

    update, close = progress_bar(task.name.replace("_", " "))
    try:
        outcome = run_task(session, task, target, request, progress=lambda f, stage: update(f))
    except JobFailed as exc:
        state = "cancelled" if exc.state == "cancelled" else "failed"
        err = StudioError(f"{task.name.replace('_', ' ')} {state}: {exc}; nothing was added")
        err.hint = exc.hint
        raise err from exc
    except KeyboardInterrupt:
        close()
        print(f"\n{task.name.replace('_', ' ')} cancelled: nothing was added to the project", file=sys.stderr)
        raise
    finally:
        close()
    return outcome


def _report(task: Task, outcome: Any, args: argparse.Namespace) -> None:
    print(outcome.summary)
    if getattr(args, "json", None):
        from engines.files import atomic_write_text

        data = {"task": task.name, "summary": outcome.summary, "data": outcome.job.result.data,
                "provenance": outcome.job.result.provenance.to_dict()}
        atomic_write_text(args.json, json.dumps(data, indent=1, default=str))
        print(f"wrote {args.json}")


def _check_out(task: Task, args: argparse.Namespace, file_mode: bool) -> Path | None:
    out = Path(args.out) if getattr(args, "out", None) else None
    if file_mode and out is None and task.name != "analyze":
        raise StudioError(f"give --out: where the {'stems go (a folder)' if task.name == 'separate' else 'result goes'}")
    if out is not None and task.name == "transcribe" and out.suffix.lower() not in (".mid", ".midi", ""):
        raise StudioError(f"--out {out}: transcriptions are written as MIDI files (.mid)")
    if out is not None and out.suffix and task.name == "separate":
        raise StudioError(f"--out {out}: give a folder for the stems")
    if out is not None and out.suffix.lower() not in ("", ".wav", ".flac", ".mid", ".midi"):
        raise StudioError(f"--out {out}: write .wav or .flac files")
    if out is not None and out.suffix.lower() == ".flac" and args.bit_depth == "float":
        raise StudioError("FLAC can't hold 32-bit float; use --bit-depth 16 or 24, or a .wav file")
    return out


def _handler(task: Task, params: dict[str, tuple[dict[str, Any], list[str]]]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        if getattr(args, "models_dir", None):
            os.environ["SEED_STUDIO_MODELS_DIR"] = str(args.models_dir)
        source = getattr(args, "source", None)
        request = _request(task, args, params)
        task.resolve(request)  # refuse bad flags before opening or reading anything
        if _is_bundle(source):
            return _run_project(task, source, request, args)
        return _run_file(task, source, request, args)

    return run


def _run_project(task: Task, bundle: str, request: dict, args: argparse.Namespace) -> int:
    from studio.io.session import Session

    out = _check_out(task, args, file_mode=False)
    s = Session.open(bundle)
    try:
        target = _target(task, s.project, args)
        request = resolve_control_sources(s.project, request)
        before = {t.id for t in s.project.tracks}
        outcome = _run(task, s, target, request, args)
        if outcome.command is not None:
            s.save()
            print(f"{outcome.command.label}: saved (undo it in the app with Ctrl+Z)")
        _report(task, outcome, args)
        if out is not None:
            for p in write_results(s, task, outcome, before, target, out, fmt=args.format, bit_depth=args.bit_depth):
                print(f"wrote {p}")
    finally:
        s.close()
    return 0


def _run_file(task: Task, source: str | None, request: dict, args: argparse.Namespace) -> int:
    from studio.io.session import Session
    from studio.media.importing import import_files

    out = _check_out(task, args, file_mode=True)
    if source is None and task.name != "generate":
        raise StudioError(f"give the audio file or the project (.seedproj) to {task.name.replace('_', ' ')}")
    for flag in ("track", "region", "tracks", "clip"):
        if getattr(args, flag, None):
            raise StudioError(f"'{source}' is not a project: --{flag} needs a .seedproj")
    mono = False
    if source is not None:
        from studio.io.audio_io import audio_info

        src = Path(source)
        if not src.is_file():
            raise StudioError(f"file '{src}' does not exist")
        if src.suffix.lower() in (".mid", ".midi"):
            sr = int(getattr(args, "sample_rate", None) or 48000)
        else:
            info = audio_info(src)
            sr, mono = int(info.sample_rate), info.channels == 1
    else:
        sr = int(getattr(args, "sample_rate", None) or 48000)
    tmp = Path(tempfile.mkdtemp(prefix="seed-cli-"))
    try:
        bpm = float(request.get("bpm") or getattr(args, "project_bpm", None) or 120.0)
        s = Session.create(tmp / "job.seedproj", sample_rate=sr, bpm=bpm)
        try:
            if source is not None:
                import_files(s, [source])
            target = _target(task, s.project, args, default_track=s.project.tracks[0].id if s.project.tracks else None)
            request = resolve_control_sources(s.project, request)
            before = {t.id for t in s.project.tracks}
            outcome = _run(task, s, target, request, args)
            _report(task, outcome, args)
            if out is not None:
                fmt = out.suffix.lstrip(".").lower() if out.suffix else args.format
                for p in write_results(s, task, outcome, before, target, out, fmt=fmt if fmt in ("wav", "flac") else "wav",
                                       bit_depth=args.bit_depth, mono=mono, whole=True):
                    print(f"wrote {p}")
        finally:
            s.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


# ---------------------------------------------------------------- parser

HELP = """\
On a project (NAME.seedproj) the result lands in the project as takes or tracks, as one
undo step, and the project is saved. On an audio file, the same job runs on a temporary
project at the file's sample rate and the results are written to --out.

The job runs in the engine host process with a progress bar; Ctrl-C cancels it and
nothing is added. Engine settings that the chosen model's engine does not have are
refused. Times are in seconds; --bars counts bars from 1, both ends included."""

_TARGET_HELP = {
    "track": "project track: name, 1-based number or id",
    "start": "start of the range, seconds",
    "end": "end of the range, seconds",
    "bars_range": "the range as bar numbers, 1-based and inclusive, e.g. 5-8 (inpaint: several, 3-4,9-10)",
    "region": "a project region (name or id) as the range",
}


def register(subparsers: Any) -> None:
    """Add one subcommand per task to the ``seed-studio`` parser."""
    for task in all_tasks():
        try:
            params = _engine_params(task)
        except Exception:  # a broken manifest must not take the whole CLI down
            params = {}
        cmd = task.name.replace("_", "-")
        p = subparsers.add_parser(cmd, help=task.description, description=task.description + "\n\n" + HELP,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("source", nargs="?" if task.name == "generate" else None,
                       help="a project (NAME.seedproj) or an audio file" +
                            (" (omit it to generate into --out)" if task.name == "generate" else ""))
        g = p.add_argument_group("what to work on")
        if task.name != "generate":
            g.add_argument("--track", help=_TARGET_HELP["track"])
        g.add_argument("--start", type=float, help=_TARGET_HELP["start"])
        g.add_argument("--end", type=float, help=_TARGET_HELP["end"])
        # "--bars N" is a length where the task has one (generate, extend); the range is then "--bar-range"
        g.add_argument("--bar-range" if "bars" in task.fields else "--bars", dest="bars_range", metavar="A-B",
                       help=_TARGET_HELP["bars_range"])
        g.add_argument("--region", help=_TARGET_HELP["region"])
        if task.name == "generate":
            g.add_argument("--at", type=float, help="where the result starts, seconds (default: 0)")
            g.add_argument("--bar", type=int, help="where the result starts, as a bar number (1-based)")
            g.add_argument("--sample-rate", type=int, help="sample rate of a result written without a project "
                                                           "(default 48000)")
        if task.name == "inpaint":
            g.add_argument("--regions", metavar="S-E,...", help="several regions in seconds, e.g. 10-14,30-32.5")
        if task.name == "add_stem":
            g.add_argument("--tracks", help="the tracks the new stem should fit (comma-separated names or numbers)")
        if task.name == "extend":
            g.add_argument("--clip", help="the clip to extend (name or id; default: the track's audio)")
        m = p.add_argument_group("model")
        schema = task.request_schema() if task.models() else None
        for name in COMMON:
            prop = (schema or {}).get("properties", {}).get(name) or {"type": "string", "description": name}
            add_schema_argument(m, name, prop, dest=f"c_{name}")
        m.add_argument("--models-dir", help="models folder (default: $SEED_STUDIO_MODELS_DIR or the user cache)")
        f = p.add_argument_group(f"{task.title.rstrip('…').lower()} settings")
        for name, prop in _task_fields(task).items():
            if name == "controls":
                continue
            add_schema_argument(f, name, prop, dest=f"f_{name}")
        if "controls" in task.fields:
            c = p.add_argument_group("controls (melody, dynamics, rhythm)")
            for kind in ("melody", "dynamics", "rhythm"):
                c.add_argument(f"--{kind}-from", dest=f"ctl_{kind}", metavar="SOURCE",
                               help=f"steer the {kind} by: lane (the track's drawn {kind} lane), lane:TRACK, "
                                    f"track:TRACK (that track's audio) or clip:CLIP (a MIDI clip); tracks by name, "
                                    f"number or id")
            c.add_argument("--control-strength", action="append", metavar="NAME=VALUE", default=None,
                           help="strength of a control, e.g. melody=1.5 (default 1; 0 = off); repeat for several")
        if params:
            e = p.add_argument_group("engine settings")
            for name, (prop, engines) in params.items():
                if str(prop.get("description", "")).lower().startswith("test hook"):
                    continue
                add_schema_argument(e, name, prop, dest=f"p_{name}", extra_help=f" [{', '.join(engines)}]")
        o = p.add_argument_group("output")
        o.add_argument("--out", help="where results are written: a folder (stems), a .mid file (transcription), "
                                     "or a .wav/.flac file (one per variation: -v2, -v3...)")
        o.add_argument("--format", choices=("wav", "flac"), default="wav", help="file format in a folder (default wav)")
        o.add_argument("--bit-depth", choices=tuple(SUBTYPES), default="24", help="bit depth (default 24)")
        if task.name == "analyze":
            o.add_argument("--json", metavar="OUT", help="also write the whole analysis as JSON")
        p.set_defaults(func=_handler(task, params))


__all__ = ["register", "write_results", "add_schema_argument", "TaskError"]
