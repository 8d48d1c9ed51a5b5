"""Engine classes (``engines.base.EngineBase``) over the analysis functions.

* :class:`BasicPitchEngine` (``basic-pitch``, task ``transcribe``): polyphonic audio-to-MIDI.
* :class:`MusicAnalysisEngine` (``music-analysis``, task ``analyze``): tempo, beats,
  downbeats, time signature and key; Beat This! when its model is installed, else the DSP
  tracker at the tempo of an estimator ensemble with a confidence value
  (:mod:`engines.analysis.tempo`).
* :class:`MelodyEngine` (``fcpe-melody``, tasks ``analyze`` and ``transcribe``): F0 curve
  or monophonic notes with FCPE.

Result conventions (see ``engines.base``): positions are integer samples relative to the
start of the job's output, i.e. the input minus its ``context`` margins; events in the
margins are dropped. ``JobResult.data["notes"]`` holds ``{pitch, velocity, start, length,
pitch_bends}`` dicts; with ``spec.output_dir`` set, transcription also writes
``files["midi"]`` (PPQ 960, at the tempo in ``params["bpm"]`` or 120).
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from engines.analysis.melody import NoteEvent
from engines.analysis import manifest
from engines.analysis.manifest import BEAT_THIS_MODEL_ID

_log = logging.getLogger(__name__)
from engines.base import (
    TRANSCRIBE,
    CancelToken,
    EngineBase,
    InvalidJob,
    JobResult,
    JobSpec,
    ModelNotInstalled,
    ProgressReporter,
    resolve_params,
)

__all__ = ["BasicPitchEngine", "MusicAnalysisEngine", "MelodyEngine", "notes_to_data"]


def _check_task(engine: EngineBase, spec: JobSpec) -> None:
    if spec.task not in engine.tasks:
        raise InvalidJob(f"engine {engine.id!r} can't do task {spec.task!r}; it does {', '.join(engine.tasks)}")


def _input(spec: JobSpec) -> tuple[np.ndarray, int, int, int]:
    """(audio, sample_rate, before, out_frames) with the context margins validated."""
    audio, sr = spec.load_audio()
    before, after = (int(x) for x in spec.context)
    frames = audio.shape[-1]
    if before < 0 or after < 0 or before + after >= frames:
        raise InvalidJob(f"context margins {spec.context} leave no audio of {frames} frames")
    if frames == 0 or not np.all(np.isfinite(audio)):
        raise InvalidJob("input audio is empty or holds NaN/infinite samples")
    return audio, sr, before, frames - before - after


def notes_to_data(notes: list[NoteEvent], before: int, out_frames: int) -> list[dict[str, Any]]:
    """Notes as ``TranscribeSpec`` data: ``{pitch, velocity, start, length, pitch_bends}``, samples
    relative to the output start; notes starting outside ``[0, out_frames)`` dropped, ends clipped."""
    out = []
    for n in notes:
        s = n.start - before
        if s < 0 or s >= out_frames:
            continue
        e = min(n.end - before, out_frames)
        out.append({"pitch": int(n.pitch), "velocity": int(n.velocity), "start": int(s), "length": int(max(1, e - s)),
                    "pitch_bends": [[int(p - before), round(float(b), 4)] for p, b in n.pitch_bends
                                    if 0 <= p - before < out_frames]})
    return out


class BasicPitchEngine(EngineBase):
    """basic-pitch audio-to-MIDI (ONNX on CPU via onnxruntime). Parameters: see ``BASIC_PITCH_PARAMS``.
    Notes come back in ``result.data["notes"]`` (samples); studio turns them into MIDI clips and files."""

    entry = manifest.BASIC_PITCH
    devices = ("cpu",)
    version = "1"

    def __init__(self) -> None:
        super().__init__()
        self._model: Any = None

    def _load(self, device: str, dtype: str) -> None:
        from engines.analysis.transcribe import load_basic_pitch

        self._model = load_basic_pitch()

    def _unload(self) -> None:
        self._model = None

    def run(self, spec: JobSpec, progress: ProgressReporter, cancel: CancelToken) -> JobResult:
        from engines.analysis.transcribe import TranscribeParams, transcribe

        _check_task(self, spec)
        schema_params = {k: v for k, v in spec.params.items() if k != "bpm"}
        params = resolve_params(self.param_schema, schema_params)
        audio, sr, before, out_frames = _input(spec)
        if not self.loaded:
            self.load("cpu")
        progress(0.0, "transcribing")
        try:
            result = transcribe(audio, sr, TranscribeParams(**params), model=self._model,
                                progress=lambda f: progress(0.95 * f, "transcribing"),
                                check_cancel=cancel.raise_if_cancelled)
        except ValueError as exc:
            raise InvalidJob(str(exc)) from exc
        progress(1.0, "done")
        prov = self.provenance(spec)
        prov.model_id = spec.model_id or "basic-pitch-icassp2022"
        prov.params = params
        return JobResult(sample_rate=sr, provenance=prov,
                         data={"notes": notes_to_data(result.notes, before, out_frames), "frames": out_frames})


class MusicAnalysisEngine(EngineBase):
    """Tempo, beats, downbeats, time signature and key.

    Args:
        beat_model: an already-built Beat This! model (tests, or a caller that loaded it);
            None = load ``beat-this-final0`` through the model manager when needed.

    Data keys: ``bpm``, ``beat_count``, ``time_signature`` ([num, den]; also as ``numerator``
    and ``denominator``), ``tempo_confidence`` (0..1, the DSP path's tempo ensemble,
    :mod:`engines.analysis.tempo`; also in ``beats.extra`` with every estimator's tempo), ``beats``
    (:meth:`BeatGrid.to_dict` with positions relative to the output start), ``key``
    (``KeyEstimate.to_dict()``), ``beat_tracker`` ("beat_this" or "dsp").
    ``spec.features`` may restrict to ``["beats"]`` or ``["key"]``.
    """

    entry = manifest.MUSIC_ANALYSIS
    devices = ("cuda", "mps", "cpu")
    version = "1"

    def __init__(self, beat_model: Any = None) -> None:
        super().__init__()
        self._beat_model = beat_model
        self._injected = beat_model is not None
        self._model_missing: str | None = None

    def _load(self, device: str, dtype: str) -> None:
        if self._beat_model is not None:
            self._beat_model = self._beat_model.to(device)
            return
        from engines.base import ChecksumMismatch
        from engines.models import ModelManager

        try:
            folder = ModelManager().require(BEAT_THIS_MODEL_ID)
        except (ModelNotInstalled, ChecksumMismatch) as exc:
            self._model_missing = str(exc)  # DSP fallback unless Beat This! is asked for explicitly
            if isinstance(exc, ChecksumMismatch):
                _log.warning("Beat This! is not used, beats come from the DSP tracker: %s", exc)
            return
        from engines.analysis.beat_this_adapter import CHECKPOINT_FILE, load_beat_this

        try:
            self._beat_model = load_beat_this(folder / CHECKPOINT_FILE, device)
        except Exception as exc:  # noqa: BLE001 - any bad checkpoint: fall back, say so
            self._model_missing = (f"the Beat This! checkpoint '{folder / CHECKPOINT_FILE}' can't be loaded "
                                   f"({type(exc).__name__}: {str(exc)[:200]}); download it again with "
                                   f"`seed-studio models download {BEAT_THIS_MODEL_ID}`")
            _log.warning("Beat This! is not used, beats come from the DSP tracker: %s", self._model_missing)

    def _unload(self) -> None:
        if not self._injected:
            self._beat_model = None

    def run(self, spec: JobSpec, progress: ProgressReporter, cancel: CancelToken) -> JobResult:
        from engines.analysis.beats import BeatGrid, track_beats_dsp
        from engines.analysis.key import estimate_key

        _check_task(self, spec)
        params = resolve_params(self.param_schema, spec.params)
        features = list(getattr(spec, "features", None) or ["beats", "key"])
        unknown = set(features) - {"beats", "key"}
        if unknown:
            raise InvalidJob(f"unknown analysis feature(s) {sorted(unknown)}; use 'beats' and/or 'key'")
        audio, sr, before, out_frames = _input(spec)
        if not self.loaded:
            self.load(self.device or "cpu")
        data: dict[str, Any] = {"frames": out_frames}
        extra: dict[str, Any] = {}
        if "beats" in features:
            progress(0.05, "tracking beats")
            tracker = params["beat_tracker"]
            if tracker == "beat_this" and self._beat_model is None:
                raise ModelNotInstalled(self._model_missing or f"model {BEAT_THIS_MODEL_ID!r} is not installed")
            try:
                if tracker != "dsp" and self._beat_model is not None:
                    from engines.analysis.beat_this_adapter import BeatThisTracker

                    grid = BeatThisTracker(self._beat_model, self.device or "cpu").track(audio, sr)
                else:
                    tempo = None
                    if params["tempo_estimator"] == "ensemble":
                        from engines.analysis.tempo import estimate_tempo

                        progress(0.05, "estimating the tempo")
                        est = estimate_tempo(audio, sr, min_bpm=params["min_bpm"], max_bpm=params["max_bpm"])
                        tempo = est.bpm
                        cancel.raise_if_cancelled()
                    progress(0.3, "tracking beats")
                    grid = track_beats_dsp(audio, sr, min_bpm=params["min_bpm"], max_bpm=params["max_bpm"],
                                           tempo=tempo)
                    if tempo is not None:
                        grid.extra.update({"tempo_confidence": est.confidence, "tempo_estimates": est.to_dict()})
                        data["tempo_confidence"] = est.confidence
                    extra["fallback"] = "dsp"
            except ValueError as exc:
                raise InvalidJob(str(exc)) from exc
            cancel.raise_if_cancelled()
            shifted = BeatGrid(
                beats=grid.beats[(grid.beats >= before) & (grid.beats < before + out_frames)] - before,
                downbeats=grid.downbeats[(grid.downbeats >= before) & (grid.downbeats < before + out_frames)] - before,
                sample_rate=sr, bpm=grid.bpm, numerator=grid.numerator, denominator=grid.denominator,
                method=grid.method, extra=grid.extra)
            data.update({"bpm": round(float(grid.bpm), 3), "beat_count": int(shifted.beats.size),
                         "time_signature": [grid.numerator, grid.denominator], "numerator": grid.numerator,
                         "denominator": grid.denominator, "beats": shifted.to_dict(),
                         "beat_tracker": grid.method})
        if "key" in features:
            progress(0.8, "estimating key")
            core = audio[:, before: before + out_frames]
            try:
                data["key"] = estimate_key(core, sr, profile=params["key_profile"]).to_dict()
            except ValueError as exc:
                data["key"] = None
                extra["key_error"] = str(exc)
        progress(1.0, "done")
        prov = self.provenance(spec, **extra)
        prov.params = params
        if data.get("beat_tracker") == "beat_this":
            prov.model_id = spec.model_id or BEAT_THIS_MODEL_ID
        return JobResult(sample_rate=sr, provenance=prov, data=data)


class MelodyEngine(EngineBase):
    """FCPE melody: ``analyze`` gives the F0 curve, ``transcribe`` gives monophonic notes.

    Analyze data: ``f0`` (:meth:`F0Track.to_dict`, positions relative to the output start)
    and ``midi_curve`` (fractional MIDI pitch per frame, null when unvoiced).
    """

    entry = manifest.FCPE_MELODY
    devices = ("cuda", "mps", "cpu")
    version = "1"

    def __init__(self) -> None:
        super().__init__()
        self._model: Any = None

    def _load(self, device: str, dtype: str) -> None:
        from engines.analysis.melody import load_fcpe

        self._model = load_fcpe(device)

    def _unload(self) -> None:
        self._model = None

    def run(self, spec: JobSpec, progress: ProgressReporter, cancel: CancelToken) -> JobResult:
        from engines.analysis.melody import F0Track, f0_to_midi_curve, f0_to_notes, track_f0

        _check_task(self, spec)
        schema_params = {k: v for k, v in spec.params.items() if k != "bpm"}
        params = resolve_params(self.param_schema, schema_params)
        audio, sr, before, out_frames = _input(spec)
        if not self.loaded:
            self.load(self.device or "cpu")
        progress(0.05, "tracking pitch")
        try:
            track = track_f0(audio, sr, model=self._model, f0_min=params["f0_min"], f0_max=params["f0_max"],
                             threshold=params["threshold"])
        except ValueError as exc:
            raise InvalidJob(str(exc)) from exc
        cancel.raise_if_cancelled()
        prov = self.provenance(spec)
        prov.model_id = spec.model_id or "fcpe-bundled"
        prov.params = params
        if spec.task == TRANSCRIBE:
            notes = f0_to_notes(track, min_note_seconds=params["min_note_seconds"], pitch_bends=params["pitch_bends"])
            progress(1.0, "done")
            return JobResult(sample_rate=sr, provenance=prov,
                             data={"notes": notes_to_data(notes, before, out_frames), "frames": out_frames})
        keep = (track.positions >= before) & (track.positions < before + out_frames)
        core = F0Track(positions=track.positions[keep] - before, f0_hz=track.f0_hz[keep], voiced=track.voiced[keep],
                       sample_rate=sr)
        curve = f0_to_midi_curve(core)
        progress(1.0, "done")
        return JobResult(sample_rate=sr, provenance=prov, data={
            "f0": core.to_dict(), "frames": out_frames,
            "midi_curve": [None if not np.isfinite(v) else round(float(v), 3) for v in curve]})
