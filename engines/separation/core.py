"""Chunked, bounded-memory stem separation with any source model (numpy in, stems out).

:func:`separate` runs a separation model (an ``demucs.htdemucs.HTDemucs``, a
``demucs.apply.BagOfModels`` or anything with the same interface) over audio of any
sample rate and length:

1. the mixture is scaled by the std of its mono reference (as ``demucs.api``), converted to
   the model's channel count and resampled to the model rate with soxr (VHQ);
2. it is cut into chunks planned by :func:`engines.chunking.plan_chunks`, run in batches
   (on GPU with autocast and pinned, overlapped host transfers), and cross-faded into a
   CPU buffer, or a disk buffer (``numpy.memmap``) for long files, so the device only
   ever holds one batch;
3. each stem is scaled back, resampled back to the input rate and cut to exactly the input's frame
   count (soxr is linear-phase with its delay compensated: no offset, no drift);
4. stem selection adds a complement (``instrumental = mixture - vocals``) and the
   residual-consistent mode makes the stems sum exactly to the mixture.

The model interface used: attributes ``sources`` (list of names), ``samplerate`` (Hz),
``audio_channels`` and ``segment`` (seconds, the model's input length) and
``forward((batch, channels, frames)) -> (batch, sources, channels, frames)``; a bag has
``models`` and ``weights`` (per model, per source). Torch is imported lazily.
"""
from __future__ import annotations

import os
import random
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from engines.base import InvalidJob, JobCancelled, is_out_of_memory
from engines.chunking import plan_chunks, transition_window, weight_sum

ProgressFn = Callable[..., None]

DTYPES = ("float32", "bfloat16", "float16")
"""Compute dtypes: float32, or autocast to bfloat16/float16 (CUDA only; CPU runs float32)."""


@dataclass
class SeparationOptions:
    """Parameters of one separation run.

    Attributes:
        stems: wanted stem names (model source names); ``None``/empty = every source.
            When the wanted stems don't cover every source, a complement stem is added
            (see :func:`complement_name`), computed as mixture minus the wanted stems.
        residual: residual-consistent mode: the stems sum exactly to the mixture; the
            residual (mixture - sum of estimates) goes to ``residual_stem``.
        residual_stem: the stem that absorbs the residual; default "other" if the model
            has it, else its last source.
        shifts: test-time augmentation: number of random time shifts in [0, 0.5 s]
            (seeded by ``seed``) whose predictions are averaged; 0 = none.
        segment: chunk length in seconds; ``None`` = the model's own (HTDemucs pads
            shorter chunks to its training length, so shorter is never cheaper there).
        overlap: minimum overlap of neighbouring chunks as a fraction of the segment.
        transition_power: sharpness of the triangular cross-fade (>= 1), as in demucs.
        batch_size: chunks per model call; ``None`` = 1 on CPU, 4 on GPU.
        device: torch device string ("cpu", "cuda", "cuda:1", "mps").
        dtype: "float32", or "bfloat16"/"float16" autocast on CUDA.
        seed: seed of the shift offsets.
        buffer: "memory", "disk" (``numpy.memmap`` in ``tmp_dir``) or "auto" (disk when the
            stem buffer would exceed ``disk_threshold_bytes``).
        disk_threshold_bytes: see ``buffer``.
        tmp_dir: folder for disk buffers; ``None`` = the system temp folder.
    """

    stems: list[str] | None = None
    residual: bool = False
    residual_stem: str | None = None
    shifts: int = 0
    segment: float | None = None
    overlap: float = 0.25
    transition_power: float = 1.0
    batch_size: int | None = None
    device: str = "cpu"
    dtype: str = "float32"
    seed: int = 0
    buffer: str = "auto"
    disk_threshold_bytes: int = 1 << 30
    tmp_dir: str | None = None


@dataclass
class SeparationResult:
    """Stems of one run.

    Attributes:
        stems: stem name -> ``(channels, frames)`` float32 at ``sample_rate`` with exactly
            the input's channels and frames (possibly a read-only-ish ``numpy.memmap``
            for disk buffers; its file is deleted when the array is freed).
        sample_rate: the input's sample rate in Hz.
        model_sources: the model's source names.
        info: facts about the run (chunks, batches, device, dtype, seconds per stage).
    """

    stems: dict[str, np.ndarray]
    sample_rate: int
    model_sources: list[str]
    info: dict[str, Any] = field(default_factory=dict)


def complement_name(wanted: Sequence[str]) -> str:
    """Name of the stem that completes ``wanted`` to the mixture.

    "instrumental" for ``["vocals"]``, ``"no_<stem>"`` for any other single stem (as
    ``demucs --two-stems``), "rest" otherwise.
    """
    wanted = list(wanted)
    if wanted == ["vocals"]:
        return "instrumental"
    if len(wanted) == 1:
        return f"no_{wanted[0]}"
    return "rest"


def bag_members(model: Any) -> list[tuple[Any, list[float]]]:
    """``[(sub_model, per-source weights)]``: the members of a bag, or ``[(model, 1s)]``."""
    if hasattr(model, "models") and hasattr(model, "weights"):
        return [(m, [float(x) for x in w]) for m, w in zip(model.models, model.weights)]
    return [(model, [1.0] * len(model.sources))]


def resample_exact(audio: np.ndarray, sr_in: int, sr_out: int, frames: int | None = None) -> np.ndarray:
    """Resample ``(channels, frames)`` float32 with soxr (VHQ, linear phase) to an exact length.

    Args:
        audio: ``(channels, frames)`` float32.
        sr_in, sr_out: sample rates in Hz.
        frames: wanted output frames; ``None`` = ``round(frames_in * sr_out / sr_in)``.
            soxr's output may differ by a frame; it is cut or zero-padded at the end,
            never shifted.

    Returns:
        ``(channels, frames)`` float32, C-contiguous.

    Method: soxr (libsoxr by Rob Sykes), via the ``soxr`` Python package.
    """
    n_in = audio.shape[-1]
    if frames is None:
        frames = int(round(n_in * sr_out / sr_in))
    if sr_in == sr_out:
        out = np.asarray(audio, dtype=np.float32)
    else:
        import soxr

        out = soxr.resample(np.ascontiguousarray(audio.T, dtype=np.float32), sr_in, sr_out, quality="VHQ").T
    if out.shape[-1] > frames:
        out = out[..., :frames]
    elif out.shape[-1] < frames:
        out = np.pad(out, ((0, 0), (0, frames - out.shape[-1])))
    return np.ascontiguousarray(out, dtype=np.float32)


def _check_input(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    a = np.asarray(audio)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise InvalidJob(f"separation input must be (channels, frames), got shape {a.shape}")
    if a.shape[0] not in (1, 2):
        raise InvalidJob(f"separation input must be mono or stereo, got {a.shape[0]} channels")
    if a.shape[1] == 0:
        raise InvalidJob("separation input is empty (0 frames)")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise InvalidJob(f"separation input has an invalid sample rate {sample_rate!r}")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        raise InvalidJob("separation input contains NaN or infinite samples")
    return a


class _Buffers:
    """Allocates stem buffers in memory or as self-deleting memmaps."""

    def __init__(self, options: SeparationOptions, expected_bytes: int):
        mode = options.buffer
        if mode not in ("memory", "disk", "auto"):
            raise InvalidJob(f"buffer must be 'memory', 'disk' or 'auto', got {mode!r}")
        self.disk = mode == "disk" or (mode == "auto" and expected_bytes > options.disk_threshold_bytes)
        self.tmp_dir = options.tmp_dir

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        if not self.disk:
            return np.zeros(shape, dtype=np.float32)
        fd, path = tempfile.mkstemp(prefix="seed-stems-", suffix=".f32", dir=self.tmp_dir)
        os.close(fd)
        arr = np.memmap(path, dtype=np.float32, mode="w+", shape=shape)
        try:  # POSIX: the mapping outlives the name, the file vanishes with the array
            os.unlink(path)
        except OSError:  # Windows: delete when the array is collected
            weakref.finalize(arr, _unlink_quietly, path)
        return arr


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _autocast_dtype(torch: Any, dtype: str, device_type: str) -> Any:
    if dtype not in DTYPES:
        raise InvalidJob(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dtype == "float32" or device_type != "cuda":
        return None
    return {"bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


class _Runner:
    """Runs one model over one normalised mixture, batch by batch, and cross-fades the
    chunk outputs into ``acc`` (one ``(channels, frames)`` buffer per stem, model rate)."""

    def __init__(self, options: SeparationOptions, progress: ProgressFn | None, cancel: Any, total: int):
        import torch

        self.torch = torch
        self.options = options
        self.device = torch.device(options.device)
        self.cuda = self.device.type == "cuda"
        self.autocast = _autocast_dtype(torch, options.dtype, self.device.type)
        self.batch_size = int(options.batch_size or (4 if self.cuda else 1))
        if self.batch_size < 1:
            raise InvalidJob(f"batch_size must be >= 1, got {self.batch_size}")
        self.progress = progress
        self.cancel = cancel
        self.total = max(1, total)
        self.done = 0
        self.batches = 0
        self.autocast_error = ""
        self.pipelined = self.cuda

    def _tick(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(min(1.0, self.done / self.total), "separating")

    def _check_cancel(self) -> None:
        if self.cancel is not None:
            if hasattr(self.cancel, "raise_if_cancelled"):
                self.cancel.raise_if_cancelled()
            elif callable(self.cancel) and self.cancel():
                raise JobCancelled("job cancelled")

    def run(
        self,
        model: Any,
        mix: np.ndarray,
        segment: int,
        shift: int,
        acc: list[np.ndarray],
        stem_index: list[int | None],
        coef: np.ndarray,
    ) -> None:
        """Add ``coef[k] * model(mix)[source k]`` (cross-faded) into ``acc[stem_index[k]]``.

        ``shift`` frames of silence are prepended to the mixture (and removed from the
        output), as in demucs' shift trick. ``stem_index[k] is None`` skips source k.
        """
        torch = self.torch
        channels, length = mix.shape
        plan = plan_chunks(length + shift, segment, self.options.overlap)
        window = transition_window(segment, self.options.transition_power)
        wsum = weight_sum(plan, window)
        used = [(k, i) for k, i in enumerate(stem_index) if i is not None and coef[k] != 0.0]
        offsets = list(plan.offsets)
        pending: tuple[Any, Any, list[int]] | None = None
        for b0 in range(0, len(offsets), self.batch_size):
            self._check_cancel()
            batch_offsets = offsets[b0: b0 + self.batch_size]
            chunk = np.zeros((len(batch_offsets), channels, segment), dtype=np.float32)
            for j, off in enumerate(batch_offsets):
                lo, hi = off - shift, off - shift + segment
                src_lo, src_hi = max(lo, 0), min(hi, length)
                if src_hi > src_lo:
                    chunk[j, :, src_lo - lo: src_hi - lo] = mix[:, src_lo:src_hi]
            x = self._to_device(torch.from_numpy(chunk))
            with torch.inference_mode():
                try:
                    y = self._forward(model, x)
                except RuntimeError as exc:
                    if self.autocast is None or is_out_of_memory(exc):
                        raise
                    # an op without a reduced-precision kernel on this device: finish in float32
                    self.autocast, self.autocast_error = None, f"{type(exc).__name__}: {exc}"[:300]
                    y = self._forward(model, x)
                y = y.float()
                if self.pipelined:
                    # overlapped I/O: start the copy of this batch, then cross-fade the
                    # previous batch on the CPU while the device works on this one
                    host_out, event = self._start_host_copy(y)
                    if pending is not None:
                        self._accumulate(*pending, plan, window, wsum, shift, acc, used, coef)
                    pending = (host_out, event, batch_offsets)
                    continue
            self._accumulate(y.numpy(), None, batch_offsets, plan, window, wsum, shift, acc, used, coef)
        if pending is not None:
            self._accumulate(*pending, plan, window, wsum, shift, acc, used, coef)

    def _to_device(self, x: Any) -> Any:
        if not self.cuda:
            return x
        # pinned staging buffers come from torch's caching host allocator, which does
        # not reuse a block before its asynchronous copy has finished
        return x.pin_memory().to(self.device, non_blocking=True)

    def _start_host_copy(self, y: Any) -> tuple[Any, Any]:
        """Start an asynchronous device-to-host copy; returns ``(host tensor, event)``."""
        torch = self.torch
        host = torch.empty(y.shape, dtype=torch.float32, pin_memory=True)
        host.copy_(y, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        return host, event

    def _finish_host_copy(self, host: Any, event: Any) -> np.ndarray:
        event.synchronize()
        return host.numpy()

    def _forward(self, model: Any, x: Any) -> Any:
        if self.autocast is not None:
            with self.torch.autocast(device_type="cuda", dtype=self.autocast):
                return model(x)
        return model(x)

    def _accumulate(self, y, event, batch_offsets, plan, window, wsum, shift, acc, used, coef) -> None:
        if event is not None:
            y = self._finish_host_copy(y, event)
        length = acc[0].shape[-1]
        segment = plan.segment
        for j, off in enumerate(batch_offsets):
            n = min(segment, plan.length - off)
            # positions in mixture coordinates, dropping the prepended shift frames
            lo = off - shift
            a = max(0, -lo)
            b = min(n, length - lo)
            if b <= a:
                continue
            w = (window[a:b] / wsum[off + a: off + b]).astype(np.float32)
            for k, i in used:
                acc[i][:, lo + a: lo + b] += (coef[k] * w) * y[j, k, :, a:b]
        self.batches += 1
        self._tick(len(batch_offsets))


def separate(
    model: Any,
    audio: np.ndarray,
    sample_rate: int,
    options: SeparationOptions | None = None,
    progress: ProgressFn | None = None,
    cancel: Any = None,
) -> SeparationResult:
    """Separate a mixture into stems with a demucs-style model, chunked and bounded in memory.

    Args:
        model: a model or bag of models with the interface described in the module doc
            (e.g. ``demucs.htdemucs.HTDemucs``), already in eval mode; it is moved to
            ``options.device``.
        audio: the mixture, ``(channels, frames)`` float32 (1-D = mono), 1 or 2 channels.
        sample_rate: its sample rate in Hz (any; resampled to the model's and back).
        options: see :class:`SeparationOptions`.
        progress: ``progress(fraction, stage)`` called after every batch.
        cancel: a ``CancelToken`` (or a callable returning True to cancel), checked
            before every batch.

    Returns:
        A :class:`SeparationResult` whose stems have exactly the input's channels,
        frames and sample rate.

    Raises:
        InvalidJob: bad input (shape, channels, empty, NaN), unknown stem names, bad options.
        JobCancelled: cancelled.

    Method: Défossez et al. 2021/2023 (Hybrid (Transformer) Demucs) and ``demucs.apply``
    chunked inference with triangular overlap-add; resampling with soxr.
    """
    import torch

    opts = options or SeparationOptions()
    t0 = time.perf_counter()
    mix_in = _check_input(audio, sample_rate)
    in_channels, frames = mix_in.shape
    sources = list(model.sources)
    model_sr = int(model.samplerate)
    model_channels = int(getattr(model, "audio_channels", 2))

    wanted = [s for s in (opts.stems or []) if s]
    unknown = [s for s in wanted if s not in sources]
    if unknown:
        raise InvalidJob(f"unknown stem(s) {', '.join(unknown)}; this model has {', '.join(sources)}")
    if len(set(wanted)) != len(wanted):
        raise InvalidJob(f"stem listed twice in {wanted}")
    wanted = [s for s in sources if s in wanted] or list(sources)
    full = len(wanted) == len(sources)
    residual_stem = None
    if full and opts.residual:
        residual_stem = opts.residual_stem or ("other" if "other" in sources else sources[-1])
        if residual_stem not in sources:
            raise InvalidJob(f"residual stem {residual_stem!r} is not a source of this model")
    if opts.shifts < 0:
        raise InvalidJob(f"shifts must be >= 0, got {opts.shifts}")
    if not 0.0 <= float(opts.overlap) < 1.0:
        raise InvalidJob(f"overlap must be in [0, 1), got {opts.overlap}")

    # 1. scale to unit variance (demucs.api divides by the std of the mono reference; we
    #    do not subtract its mean: HT-Demucs removes each chunk's mean itself, and keeping
    #    it makes a linear model's stems sum back to the input exactly), convert channels,
    #    resample to the model rate
    ref = mix_in.mean(axis=0, dtype=np.float64)
    std = float(ref.std()) + 1e-8
    x = mix_in / np.float32(std)
    if in_channels != model_channels:
        x = np.repeat(x[:1], model_channels, axis=0) if in_channels == 1 else x.mean(axis=0, keepdims=True)
    model_frames = int(round(frames * model_sr / sample_rate))
    x = resample_exact(x, sample_rate, model_sr, model_frames)
    t_prep = time.perf_counter()

    # 2. chunked inference into a CPU or disk buffer
    members = bag_members(model)
    needed = [sources.index(s) for s in (sources if (full or residual_stem) else wanted)]
    totals = np.zeros(len(sources))
    runs: list[tuple[Any, np.ndarray]] = []
    for sub, weights in members:
        w = np.array([weights[k] if k in needed else 0.0 for k in range(len(sources))])
        if np.any(w != 0):
            runs.append((sub, w))
            totals += w
    missing = [sources[k] for k in needed if totals[k] == 0]
    if missing:
        raise InvalidJob(f"no model in the bag predicts {', '.join(missing)}")
    stem_index: list[int | None] = [needed.index(k) if k in needed else None for k in range(len(sources))]
    buffers = _Buffers(opts, len(needed) * model_channels * model_frames * 4 * 2)
    acc = [buffers.zeros((model_channels, model_frames)) for _ in needed]

    segments = []
    for sub, _ in runs:
        seg_s = float(opts.segment) if opts.segment else float(getattr(sub, "segment", 0) or 0)
        if seg_s <= 0:
            raise InvalidJob("the model has no segment length; give options.segment")
        seg = max(1, int(round(seg_s * model_sr)))
        if getattr(sub, "use_train_segment", False) and getattr(sub, "segment", None):
            # HTDemucs can't take more than its training length (it pads shorter input)
            limit = int(sub.segment * model_sr)
            if seg > limit:
                raise InvalidJob(f"segment {seg_s:g} s is longer than this model's {float(sub.segment):g} s")
        segments.append(seg)
    rng = random.Random(opts.seed)
    n_shifts = max(1, opts.shifts)
    max_shift = int(0.5 * model_sr)
    shift_values = [rng.randint(0, max_shift) if opts.shifts else 0 for _ in range(n_shifts)]
    total_chunks = sum(len(plan_chunks(model_frames + s, seg, opts.overlap)) for seg in segments for s in shift_values)
    runner = _Runner(opts, progress, cancel, total_chunks)
    for (sub, w), seg in zip(runs, segments):
        params = list(sub.parameters()) if hasattr(sub, "parameters") else []
        was_device = params[0].device if params else None
        if hasattr(sub, "to"):
            sub.to(runner.device)
        if hasattr(sub, "eval"):
            sub.eval()
        coef = np.where(totals > 0, w / np.maximum(totals, 1e-12), 0.0) / n_shifts
        try:
            for s in shift_values:
                runner.run(sub, x, seg, s, acc, stem_index, coef)
        finally:
            if was_device is not None and len(runs) > 1:
                sub.to(was_device)  # a bag keeps only one member on the device
    del x
    if runner.cuda:
        torch.cuda.synchronize(runner.device)
    t_infer = time.perf_counter()

    # 3. back to the input's rate, channels and length, undoing the normalisation
    stems: dict[str, np.ndarray] = {}
    # (one stem at a time, in place where possible, so the peak stays near one stem set)
    for i, k in enumerate(needed):
        y = acc[i]
        acc[i] = None  # type: ignore[call-overload]
        y *= np.float32(std)
        if model_sr != sample_rate or in_channels != y.shape[0]:
            y = resample_exact(y, model_sr, sample_rate, frames)
            if in_channels != y.shape[0]:
                y = y.mean(axis=0, keepdims=True) if in_channels == 1 else np.repeat(y, in_channels, axis=0)
            if buffers.disk:
                out = buffers.zeros((in_channels, frames))
                out[...] = y
                y = out
        stems[sources[k]] = y
    del acc

    # 4. complement and residual, in float64 blocks
    block = 1 << 20
    if not full:
        name = complement_name(wanted)
        comp = buffers.zeros((in_channels, frames))
        for lo in range(0, frames, block):
            hi = min(frames, lo + block)
            s = sum(stems[n][:, lo:hi].astype(np.float64) for n in wanted)
            comp[:, lo:hi] = mix_in[:, lo:hi].astype(np.float64) - s
        stems = {n: stems[n] for n in wanted}
        stems[name] = comp
    elif residual_stem is not None:
        others = [n for n in sources if n != residual_stem]
        r = stems[residual_stem]
        for lo in range(0, frames, block):
            hi = min(frames, lo + block)
            s = sum(stems[n][:, lo:hi].astype(np.float64) for n in others)
            r[:, lo:hi] = mix_in[:, lo:hi].astype(np.float64) - s
    t_end = time.perf_counter()
    info = {
        "chunks": total_chunks,
        "batches": runner.batches,
        "batch_size": runner.batch_size,
        "device": str(runner.device),
        "dtype": opts.dtype if runner.autocast is not None else "float32",
        "model_sample_rate": model_sr,
        "members_run": len(runs),
        "shifts": [int(s) for s in shift_values] if opts.shifts else [],
        "disk_buffer": buffers.disk,
        "autocast_error": runner.autocast_error,
        "seconds": {
            "prepare": t_prep - t0,
            "inference": t_infer - t_prep,
            "finish": t_end - t_infer,
            "total": t_end - t0,
        },
    }
    return SeparationResult(stems=stems, sample_rate=int(sample_rate), model_sources=sources, info=info)
