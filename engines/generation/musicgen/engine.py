"""The MusicGen engine (id ``musicgen``): generate and extend, on our own decode loop.

* ``generate`` (:class:`engines.base.GenerateSpec`): ``variations`` takes of exactly
  ``frames`` frames at ``spec.sample_rate`` (the model's 32 kHz when None) from the
  description, one batch for all variations; longer than one window (30 s) by sliding
  windows at the token level (18 s stride, 12 s kept as the prompt), decoded once at the
  end, so there are no seams.
* ``extend`` (:class:`engines.base.ExtendSpec`, direction ``"after"``): the clip's last
  ``prompt_seconds`` (at most 12 s by default) are encoded with EnCodec as the token
  prompt; generation goes on from there; prompt and new tokens are decoded together
  (continuous audio), and the output is only the new material, exactly ``frames``
  frames, placed at the clip's end (``offset`` = the clip's frame count). The first
  ``crossfade_ms`` of the new material crossfade from "generated audio plus the clip's
  codec residual" (the clip minus its EnCodec reconstruction, mirrored at the join) to the
  generated audio alone, so the join continues the clip's exact last samples without a
  click. The clip itself is never part of an output.
* Melody (musicgen-melody models): ``controls["melody"]`` (a :class:`ControlTarget` dict)
  with ``audio`` (path to a reference, e.g. a track or a rendered MIDI clip) or ``values``
  (a ``(12, T)`` chroma at ``frame_rate``); it starts at output frame ``start`` and stops at
  ``end``; each window reads its own 30 s slice, looped when the reference is shorter
  (audiocraft), as an argmax chroma (:mod:`engines.generation.musicgen.chroma`). MusicGen
  has no strength input: ``strength`` 0 turns the control off, any other value on. The
  reference is used as given (audiocraft first separates it with Demucs; the task layer
  can send a separated stem, a rendered MIDI clip or the melody lane).

Outputs follow :class:`engines.base.MusicSpec`: ``take{v}`` float32 ``(channels, frames)``
(the model's channels for generate; the clip's channels for extend), with
``data["placements"]``; written with :func:`engines.base.write_output` when
``spec.output_dir`` is set. Variation ``v`` draws from its own generator seeded
``seed + v - 1``. Progress and cancel are checked at every decoder step; out-of-memory
errors propagate to the host, which retries with ``chunk_scale`` halved (fewer variations
per batch).

Errors raised by :meth:`MusicgenEngine.run`: ``InvalidJob`` (task, length, direction,
parameters, a melody control on a model without melody input, unreadable references),
``ModelNotInstalled``, ``JobCancelled``, and torch's out-of-memory errors.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engines import base
from engines.base import (
    CancelToken,
    ControlTarget,
    EngineBase,
    InvalidJob,
    JobResult,
    JobSpec,
    ProgressReporter,
)
from engines.generation.musicgen import manifest

__all__ = ["MusicgenEngine", "describe", "match_channels", "resample_exact", "residual_crossfade"]


def describe(prompt: str, bpm: float | None, key: str | None, metadata: bool) -> str:
    """The text MusicGen reads: the description, then ``"bpm: X. key: Y"`` when asked.

    The metadata format is audiocraft's training-time text augmentation
    (``augment_music_info_description``: ``"{description}. bpm: 120. key: C major"``).
    """
    parts = [prompt.strip().rstrip(".")] if prompt.strip() else []
    if metadata:
        if bpm:
            parts.append(f"bpm: {float(bpm):g}")
        if key:
            parts.append(f"key: {key.strip()}")
    return ". ".join(parts)


def resample_exact(audio: np.ndarray, sr_in: int, sr_out: int, frames: int | None = None) -> np.ndarray:
    """Resample ``(channels, samples)`` float32 with soxr (VHQ, linear phase, delay compensated).

    Args:
        audio: ``(channels, samples)``.
        sr_in, sr_out: Hz.
        frames: wanted output length; None = ``round(samples * sr_out / sr_in)``. The result
            is cut or zero-padded at the end (never shifted).

    Returns:
        ``(channels, frames)`` float32, C-contiguous.
    """
    n = audio.shape[-1]
    if frames is None:
        frames = int(round(n * sr_out / sr_in))
    if sr_in == sr_out:
        out = np.asarray(audio, dtype=np.float32)
    else:
        import soxr

        out = soxr.resample(np.ascontiguousarray(audio.T, dtype=np.float32), int(sr_in), int(sr_out), quality="VHQ").T
    if out.shape[-1] > frames:
        out = out[..., :frames]
    elif out.shape[-1] < frames:
        out = np.pad(out, ((0, 0), (0, frames - out.shape[-1])))
    return np.ascontiguousarray(out, dtype=np.float32)


def match_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """``(c, n)`` -> ``(channels, n)``: duplicate mono, average to mono, or keep."""
    c = audio.shape[0]
    if c == channels:
        return audio
    if c == 1:
        return np.repeat(audio, channels, axis=0)
    mono = audio.mean(axis=0, keepdims=True)
    return mono if channels == 1 else np.repeat(mono, channels, axis=0)


def residual_crossfade(new: np.ndarray, clip_tail: np.ndarray, decoded_tail: np.ndarray, length: int) -> np.ndarray:
    """Join generated material to a clip without a click (extend).

    The generated audio continues the *decoded* prompt, which differs from the clip by the
    codec's error. Over the first ``length`` frames the output crossfades (raised cosine)
    from ``new + mirrored residual`` to ``new``, where the residual is ``clip_tail -
    decoded_tail`` mirrored at the join (``residual[-1 - n]`` at frame ``n``): frame 0
    then continues the clip's last sample, and the new material is untouched after
    ``length`` frames.

    Args:
        new: ``(channels, frames)`` generated material (starts at the clip's end).
        clip_tail: ``(channels, m)`` the clip's last ``m`` frames.
        decoded_tail: ``(channels, m)`` the decoded prompt over the same frames.
        length: crossfade frames (clamped to ``frames`` and ``m``); 0 = none.

    Returns:
        A new ``(channels, frames)`` float32 array.
    """
    out = np.array(new, dtype=np.float32, copy=True)
    n = int(min(length, new.shape[-1], clip_tail.shape[-1]))
    if n <= 0:
        return out
    residual = (clip_tail[:, -n:] - decoded_tail[:, -n:])[:, ::-1]
    fade = 0.5 * (1.0 + np.cos(np.pi * (np.arange(n) + 0.5) / n))  # 1 -> 0
    out[:, :n] += (residual * fade).astype(np.float32)
    return out


class MusicgenEngine(EngineBase):
    """MusicGen / MusicGen-Melody (Copet et al. 2023) on transformers' modules with our
    decode loop (:mod:`engines.generation.musicgen.decode`). See the module docstring for
    tasks, outputs and errors; parameters are in :data:`manifest.PARAMS`.

    Models are loaded on first use per ``spec.model_path`` or ``spec.model_id`` (default
    ``musicgen-small``) and stay resident (one at a time); :meth:`use_model` injects an
    already loaded :class:`~engines.generation.musicgen.model.MusicgenModel` (benchmarks).
    """

    entry = manifest.MUSICGEN
    dtypes = ("bfloat16", "float16", "float32")
    devices = ("cuda", "mps", "cpu")
    version = "1"
    default_model = "musicgen-small"

    def __init__(self) -> None:
        super().__init__()
        self._models: dict[Any, Any] = {}

    # ------------------------------------------------------------------ models

    def use_model(self, key: Any, model: Any) -> None:
        """Use an already loaded ``MusicgenModel`` for ``key``: a model id, or
        ``("path", resolved folder)`` for jobs with that ``model_path``."""
        self._models = {key: model}

    def _unload(self) -> None:
        self._models.clear()
        if self.device and self.device.startswith("cuda"):
            from engines.devices import empty_cache

            empty_cache(self.device)

    def memory_bytes(self) -> int:
        """Bytes of the resident model's weights (and their packed CPU copy)."""
        return sum(m.memory_bytes() for m in self._models.values())

    def _decoder_dtype(self, params: dict[str, Any]) -> Any:
        import torch

        from engines.devices import torch_dtype

        device = self.device or "cpu"
        if device.startswith("cpu"):
            if params["cpu_bfloat16"] and _cpu_bf16():
                return torch.bfloat16
            return torch.float32
        return torch_dtype(self.dtype)

    def _model(self, spec: JobSpec, params: dict[str, Any], progress: ProgressReporter) -> tuple[Any, str, Any]:
        """(MusicgenModel, model id for provenance, record or None)."""
        from engines.generation.musicgen.model import MusicgenModel

        dtype = self._decoder_dtype(params)
        folder: Path | None = None
        record = None
        if spec.model_path:
            folder = Path(spec.model_path).expanduser().resolve()
            model_id = spec.model_id or f"local:{folder.name}"
            key: Any = ("path", str(folder))
        else:
            model_id = spec.model_id or self.default_model
            if model_id not in manifest.MODEL_IDS:
                raise InvalidJob(f"the musicgen engine has no model {model_id!r}",
                                 f"models: {', '.join(manifest.MODEL_IDS)}")
            key = model_id
            record = _record(model_id)
        m = self._models.get(key)
        if m is None or m.decoder_dtype != dtype:
            if folder is None:
                folder, record = _installed_folder(model_id, progress)
            self._models.clear()  # one resident model
            m = MusicgenModel(folder, self.device or "cpu", dtype)
            self._models[key] = m
        return m, model_id, record

    # ------------------------------------------------------------------ run

    def run(self, spec: JobSpec, progress: ProgressReporter, cancel: CancelToken) -> JobResult:
        """Generate or extend (see the module docstring)."""
        import torch

        from engines.generation.musicgen.decode import (
            CudaGraphStep,
            SamplingParams,
            StaticDecoder,
            cache_length,
            frames_for,
            generate_long,
            make_generators,
            plan_windows,
        )

        t0 = time.monotonic()
        if spec.task not in (base.GENERATE, base.EXTEND):
            raise InvalidJob(f"the musicgen engine can't do {spec.task!r}", "it can generate and extend")
        params = base.resolve_params(self.param_schema, spec.params)
        frames = int(getattr(spec, "frames", 0) or 0)
        if frames <= 0:
            raise InvalidJob(f"{spec.task} needs a length in frames > 0, got {frames}")
        variations = int(getattr(spec, "variations", 1) or 0)
        if variations < 1:
            raise InvalidJob(f"variations must be at least 1, got {variations}")
        extend = spec.task == base.EXTEND
        if extend and getattr(spec, "direction", "after") != "after":
            raise InvalidJob("MusicGen can only continue music forwards (direction 'after')",
                             "extend after the clip, or use an engine that can extend before a clip")
        if params["extend_stride"] >= params["window"]:
            raise InvalidJob(f"the window step ({params['extend_stride']:g} s) must be shorter than the window "
                             f"({params['window']:g} s)", "lower the window step")
        for name in (getattr(spec, "controls", None) or {}):
            if name != "melody":
                progress.log(f"musicgen has no {name!r} control; it is ignored")
        lyrics = (getattr(spec, "lyrics", "") or "").strip()
        if lyrics and lyrics.lower() != "[instrumental]":
            progress.log("musicgen makes instrumental music; the lyrics are ignored")

        progress(0.0, "loading model")
        mg, model_id, record = self._model(spec, params, progress)
        t_load = time.monotonic()
        device = str(mg.device)
        sr_m, hop, fr = mg.sample_rate, mg.hop, mg.frame_rate

        # ---- prompt (extend) and lengths, in codec frames
        prompt_codes = None
        p = 0
        clip = clip_m = None
        if extend:
            clip, sr_out = spec.load_audio()
            if clip.shape[-1] == 0:
                raise InvalidJob("the clip to extend is empty")
            clip_m = match_channels(resample_exact(clip, sr_out, sr_m), mg.channels)
            window_frames = int(params["window"] * fr)
            p = min(clip_m.shape[-1] // hop, int(params["prompt_seconds"] * fr), window_frames - 1)
            if p <= 0:
                raise InvalidJob(f"the clip is too short to continue ({clip.shape[-1]} frames)",
                                 f"give at least {math.ceil(hop * sr_out / sr_m)} frames of audio")
            prompt_codes = mg.encode(clip_m[:, clip_m.shape[-1] - p * hop:])
        else:
            sr_out = int(spec.sample_rate or sr_m)
        new_m = int(math.ceil(frames * sr_m / sr_out))
        n_new = frames_for(new_m, hop) + 1  # one spare codec frame for the resampler's edge
        total = p + n_new
        window = int(params["window"] * fr)
        stride = int(params["extend_stride"] * fr)
        windows = plan_windows(total, p, window, stride)

        # ---- conditioning
        progress(0.03, "reading the description")
        description = describe(getattr(spec, "prompt", "") or "", getattr(spec, "bpm", None),
                               getattr(spec, "key", None), bool(params["metadata_in_prompt"]))
        text = mg.text_states(description)
        melody_for, melody_info = self._melody(spec, mg, p, sr_out, params)
        sampling = SamplingParams(temperature=float(params["temperature"]), top_k=int(params["top_k"]),
                                  top_p=float(params["top_p"]), cfg=float(params["cfg_coef"]))
        guided = sampling.guided
        prefix_len = (mg.chroma.chroma_length + text[0].shape[1]) if mg.melody else 0

        # ---- tokens
        per_batch = max(1, int(math.floor(variations * min(1.0, float(spec.chunk_scale)))))
        batches = [list(range(a, min(a + per_batch, variations))) for a in range(0, variations, per_batch)]
        steps_total = sum(w.decoder_steps(mg.max_delay) for w in windows) * len(batches)
        gen_progress = progress.sub(0.05, 0.88)
        done = [0]

        def on_step(n: int) -> None:
            done[0] += n
            cancel.raise_if_cancelled()
            gen_progress(done[0] / steps_total, "generating")

        use_graph = device.startswith("cuda") and bool(params["cuda_graph"])
        codes_all: list[torch.Tensor] = []
        seeds_all: list[int] = []
        folded: list[bool] = []
        t_gen = time.monotonic()
        for batch in batches:
            b = len(batch)
            seeds = [int(spec.seed) + v for v in batch]
            seeds_all += seeds
            gens = make_generators(seeds, device)
            dec = StaticDecoder(mg.model.decoder, 2 * b if guided else b, cache_length(window, prefix_len, mg.max_delay),
                                packed=mg.packed)

            fixed = mg.conditioning(text, b, guided) if melody_for is None else None  # text only: one for all windows

            def cond_for(w: Any, _b: int = b, _fixed: Any = fixed) -> Any:
                return _fixed if _fixed is not None else mg.conditioning(text, _b, guided, melody_for(w))

            codes = generate_long(dec, cond_for, prompt_codes.repeat(b, 1, 1) if p else None, total, window, stride,
                                  sampling, gens, mg.delays, mg.special, on_step=on_step,
                                  graph_factory=CudaGraphStep if use_graph else None)
            codes_all.append(codes.cpu())
            folded.append(dec.cross_absorbed)
            del dec
        codes = torch.cat(codes_all)
        t_dec = time.monotonic()

        # ---- audio
        dec_progress = progress.sub(0.88, 0.99)
        outputs: dict[str, Any] = {}
        placements: dict[str, Any] = {}
        for v in range(variations):
            cancel.raise_if_cancelled()
            dec_progress(v / variations, "decoding audio")
            audio_m = mg.decode(codes[v: v + 1])  # (C_m, total * hop), prompt first
            if extend:
                n_full = int(round(audio_m.shape[-1] * sr_out / sr_m))
                full = match_channels(resample_exact(audio_m, sr_m, sr_out, n_full), clip.shape[0])
                b0 = int(round(p * hop * sr_out / sr_m))  # the join, in output frames
                new = full[:, b0: b0 + frames]
                m = min(b0, clip.shape[-1])
                xf = int(round(float(params["crossfade_ms"]) * sr_out / 1000.0))
                out = residual_crossfade(new, clip[:, clip.shape[-1] - m:], full[:, b0 - m: b0], xf)
                offset = int(clip.shape[-1])
            else:
                out = resample_exact(audio_m, sr_m, sr_out, frames)
                offset = 0
            if out.shape[-1] != frames:  # pragma: no cover - guarded by the frame arithmetic above
                raise RuntimeError(f"musicgen produced {out.shape[-1]} frames instead of {frames}")
            name = f"take{v + 1}"
            outputs[name] = (base.write_output(out, sr_out, spec.output_dir, name) if spec.output_dir
                             else np.ascontiguousarray(out, dtype=np.float32))
            placements[name] = {"offset": offset, "variation": v + 1, "region": None}
        t_end = time.monotonic()

        prov = self.provenance(spec)
        prov.model_id = model_id
        prov.revision = record.revision if record is not None else None
        prov.licence = record.licence if record is not None else manifest.LICENCE
        prov.params = params
        prov.dtype = str(mg.decoder_dtype).replace("torch.", "")
        prov.device = device
        if melody_info.get("sha256"):
            prov.input_sha256["melody"] = melody_info["sha256"]
        prov.timings.update({"load": t_load - t0, "generate": t_dec - t_gen, "decode": t_end - t_dec,
                             "total": t_end - t0})
        prov.extra.update({
            "prompt": getattr(spec, "prompt", ""),
            "description": description,
            "method": "MusicGen (Copet et al. 2023): delay pattern, classifier-free guidance, top-k sampling; "
                      "audiocraft extend_stride windows; own decode loop over transformers modules",
            "paper": manifest.PAPER,
            "seeds": seeds_all,
            "sample_rate_model": sr_m,
            "frame_rate": fr,
            "codec_frames": int(total),
            "prompt_frames": int(p),
            "windows_s": [[w.start / fr, w.known / fr, w.end / fr] for w in windows],
            "guidance_rows": 2 if guided else 1,
            "batches": [len(b) for b in batches],
            "cuda_graph": use_graph,
            "decoder_dtype": prov.dtype,
            "packed_cpu_weights": mg.packed is not None,
            "cross_attention_folded": all(folded) and bool(folded),
            "melody": melody_info,
            "library": _library_versions(),
        })
        if spec.model_path:
            prov.extra["model_path"] = str(spec.model_path)
            prov.extra["model_config_sha256"] = base.sha256_file(Path(spec.model_path) / "config.json")
            prov.extra["licence_note"] = "local model folder; licence assumed from the MusicGen family (CC-BY-NC-4.0)"
        if getattr(spec, "time_signature", None):
            prov.extra["time_signature_note"] = "MusicGen has no meter input; the time signature was not used"
        if extend:
            prov.extra["crossfade_frames"] = int(round(float(params["crossfade_ms"]) * sr_out / 1000.0))
        progress(1.0, "done")
        return JobResult(outputs=outputs, sample_rate=sr_out, provenance=prov,
                         data={"placements": placements, "description": description})

    # ------------------------------------------------------------------ melody

    def _melody(self, spec: JobSpec, mg: Any, prompt_frames: int, sr_out: int,
                params: dict[str, Any]) -> tuple[Callable[[Any], Any] | None, dict[str, Any]]:
        """The per-window chroma function of ``controls["melody"]`` (or None) and its facts."""
        import torch

        from engines.generation.musicgen.chroma import (
            melody_chroma,
            reference_window,
            values_window,
        )

        raw = (getattr(spec, "controls", None) or {}).get("melody")
        if raw is None:
            return None, {}
        target = raw if isinstance(raw, ControlTarget) else ControlTarget.from_dict(dict(raw))
        if not mg.melody:
            raise InvalidJob("this MusicGen model has no melody input",
                             "choose musicgen-melody (or musicgen-stereo-melody) for a melody control")
        if float(target.strength) <= 0.0:
            return None, {"strength": 0.0, "used": False}
        cp = mg.chroma
        sr_m, hop, fr = mg.sample_rate, mg.hop, mg.frame_rate
        origin_s = prompt_frames * hop / sr_m  # timeline time of output frame 0
        begin_s = origin_s + int(target.start) / sr_out
        end_s = None if target.end is None else origin_s + int(target.end) / sr_out
        window_s = float(params["window"])
        info: dict[str, Any] = {"used": True, "start_s": begin_s - origin_s,
                                "end_s": None if end_s is None else end_s - origin_s, "strength": float(target.strength)}
        if target.audio:
            ref, sr_ref = base.load_audio(target.audio)
            info["sha256"] = base.sha256_file(target.audio)
            mono = resample_exact(ref.mean(axis=0, keepdims=True), sr_ref, cp.sample_rate)[0]
            if mono.size == 0:
                raise InvalidJob(f"the melody reference '{target.audio}' is empty")
            info.update({"source": "audio", "reference_s": mono.size / cp.sample_rate})
            cover = (int(round(begin_s * cp.sample_rate)), None if end_s is None else int(round(end_s * cp.sample_rate)))
            length = int(window_s * cp.sample_rate)

            def chroma_for(w: Any) -> Any:
                start = int(round(w.start / fr * cp.sample_rate))
                wav = reference_window(mono, start, length, cover)
                return melody_chroma(torch.from_numpy(wav)[None].to(mg.device), cp)

            return chroma_for, info
        if target.values is None:
            raise InvalidJob("the melody control needs 'audio' (a reference file) or 'values' (a 12 x T chroma)")
        values = np.asarray(target.values, dtype=np.float32)
        info["sha256"] = base.sha256_audio(values)
        info.update({"source": "values", "frame_rate": float(target.frame_rate)})
        try:
            values_window(values, float(target.frame_rate), cp, 0.0)
        except ValueError as exc:
            raise InvalidJob(f"melody values: {exc}") from None

        def values_for(w: Any) -> Any:
            return values_window(values, float(target.frame_rate), cp, w.start / fr, (begin_s, end_s)).to(mg.device)

        return values_for, info


# --------------------------------------------------------------------------- helpers


def _cpu_bf16() -> bool:
    """True when this CPU runs bfloat16 matrix maths natively (AVX512-BF16 / AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # pragma: no cover - older torch
        return False


def _record(model_id: str) -> Any:
    for r in manifest.MODELS:
        if r.id == model_id:
            return r
    return None


def _installed_folder(model_id: str, progress: ProgressReporter) -> tuple[Path, Any]:
    """The model's folder from the model manager, and its record.

    Raises:
        ModelNotInstalled: not downloaded / imported.
    """
    from engines.base import ModelNotInstalled
    from engines.models import ModelManager

    mgr = ModelManager()
    record = _record(model_id)
    try:
        return mgr.require(model_id), record
    except ModelNotInstalled:
        # records whose file sizes could not be looked up offline (manifest.MISSING_FACTS) can't
        # pass the manager's size check: accept a folder that holds a loadable model.
        folder = mgr.model_dir(model_id)
        if model_id in manifest.MISSING_FACTS and (folder / "config.json").is_file():
            progress.log(f"{model_id}: file sizes/checksums unknown to Seed Studio; using '{folder}' unverified")
            return folder, record
        raise


def _library_versions() -> str:
    try:
        import torch
        import transformers

        return f"transformers {transformers.__version__}, torch {torch.__version__}"
    except Exception:  # pragma: no cover
        return "transformers"
