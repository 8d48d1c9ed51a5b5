"""Training-free time-varying control guidance: melody, dynamics and rhythm targets steer a
latent flow-matching sampler through a differentiable decoder (model independent).

The controls are Music ControlNet's (Wu, Donahue, Watanabe, Bryan, "Music ControlNet:
Multiple Time-varying Controls for Music Generation", arXiv:2311.07069, 2023): a melody
(one-hot pitch class per frame of a high-passed chromagram), dynamics (a smoothed
A-weighted loudness curve in dB) and rhythm (an onset / beat activation), each with its
own time range and strength. Music ControlNet trains an adapter; no released model ships
one, so the controls are applied without training, by optimising the sampler's latents
against differentiable feature losses, as DITTO does (Novack, McAuley, Berg-Kirkpatrick,
Bryan, "DITTO: Diffusion Inference-Time T-Optimization for Music Generation", ICML 2024,
arXiv:2401.12179) and DITTO-2 ("Distilled Diffusion Inference-Time T-Optimization",
ISMIR 2024, arXiv:2405.20289):

* **losses** (DITTO section 4): melody: the negative log-likelihood of the target pitch
  class under a log-softmax of the generated chromagram; dynamics: the mean squared error
  of the generated loudness curve in dB against the target (offset-free: the engines set
  the absolute level afterwards with peak or loudness normalisation, so the shape is what
  a guidance step can keep); rhythm: the target's onsets drawn as Gaussian bumps, like
  Music ControlNet's beat activation (``engines.features.rhythm_curves`` draws them 50 ms
  wide, 12 ms here: :data:`RHYTHM_SIGMA_S`), against the generated onset envelope smoothed
  the same way, by the mean squared error of the standardised curves (or a binary
  cross-entropy). Features are :mod:`engines.features`' torch twins, which agree with the
  numpy functions the studio builds the targets with.
* **the guided step** (:meth:`ControlGuide.step`): at the chosen steps the clean-latent
  estimate of flow matching, ``x0 = x_t - t * v``, is decoded (only the crop the controls
  cover, plus a decoder margin), the losses are taken on the audio and their gradient
  brought back to the latents; ``x0`` moves ``inner_steps`` times along the normalised
  negative gradient while the noise estimate ``eps = x_t + (1 - t) * v`` is kept, and the
  step continues from the pair (the update of "manifold preserving" guidance: He et al.,
  ICLR 2024, on a flow sampler). Like DITTO-2's surrogate, it optimises through the
  model's one-step clean estimate (which distilled "turbo" models make good), here inside
  the schedule; the gradient does not go through the denoiser, which keeps a guided step
  to a few decoder passes.
* **precise mode** (:meth:`ControlGuide.optimise_start`): DITTO's own idea, optimising the
  initial noise latent ``x_T``; with DITTO-2's one-step surrogate the loss of
  ``decode(x_T - t_0 * model(x_T, t_0))`` is minimised by normalised gradient steps
  through the model before sampling starts (the per-step guidance then runs as usual).
* **defaults** (:class:`GuidanceConfig`): guidance acts in the middle of the schedule (the
  first steps only set the coarse noise level, and what they are told is mostly redrawn by
  the steps after; the last ones can't move the content any more), with a few normalised
  steps rather than many small ones, as DITTO and DITTO-2 do. The numbers are ours: every
  2nd step from 50 % to 75 % of the schedule, one nudge each, a nudge 0.3 of the
  estimate's RMS times ``t``. On ACE-Step turbo's 8 steps that is step 5 (t = 0.75), one
  decoder gradient in all; on the 32 steps of base models, steps 17, 19, 21 and 23. That
  is what the budget allows: a guided job may cost 3 unguided ones (issue 14), and on the
  CPU a decoder gradient costs about five VAE decodes, a VAE decode about three distilled
  DiT steps (``benchmarks/control_overhead.py``: 2 nudges on turbo cost x3.2 an unguided
  10 s job). More nudges (``inner_steps``), steps (``every``) or precise mode buy closer
  adherence at that price. Spending the same decoder gradients on the tiny test model,
  the step at t = 0.75 lowered the losses most (t = 0.9 and 0.75 with one nudge each, or
  t = 0.9 with two, less: what early steps are told is partly undone).

Memory: the crop is decoded in tiles. A first pass decodes the whole crop without a graph
(the features see their full context), the per-control gradient of the losses with
respect to that audio is taken (cheap), and each tile is then decoded again with a graph
(the decoder is expected to checkpoint its blocks) and back-propagated with its slice of
the audio gradient. Tiles overlap by at least the decoder's receptive field, so the
latent gradient is the untiled one (tested); peak memory is one tile's. A crop that fits
one tile is decoded once, with its graph.

Shapes: latents ``(batch, frames, channels)`` at ``fps`` frames per second; audio
``(batch, channels, frames * hop)`` at ``rate`` Hz. Times of a :class:`Control` are
"job seconds": seconds from the first frame of the job's audio (generate: from the start
of the output), as :class:`engines.base.ControlTarget`'s ``origin`` defines them.

Adherence (:func:`adherence`), measured on the finished takes: melody accuracy (frame-wise
agreement of the chroma argmax with the target pitch class), dynamics Pearson r of the
loudness curves, rhythm F-measure of onsets at +-70 ms (``mir_eval.beat.f_measure``),
each over the control's own time range.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from engines.base import InvalidJob

KINDS: tuple[str, ...] = ("melody", "dynamics", "rhythm")
FLOOR_DB = -60.0
"""Lowest loudness a dynamics target means (the studio's floor); lower values are clamped."""
MELODY_TEMPERATURE = 0.1
"""Softmax temperature of the melody loss over the peak-normalised chroma (0..1 per frame)."""
RHYTHM_SIGMA_S = 0.012
"""Width (standard deviation, seconds) of the Gaussian bump a rhythm target draws per onset,
and of the smoothing of the generated onset envelope: about one feature frame, well under a
latent frame (40 ms), so that an onset doubled one latent frame later costs something."""
BEAT_WINDOW_S = 0.07
"""Tolerance of the rhythm adherence (mir_eval's beat F-measure window)."""
FEATURE_HOP = 512
"""Hop of the feature frames, in samples at the audio's rate (``engines.features.HOP_LENGTH``)."""
DB_SCALE = 10.0
"""Dynamics errors are measured in units of 10 dB (so the loss is O(1))."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class GuidanceConfig:
    """When and how hard guidance acts (see the module docstring for the defaults' source).

    Attributes:
        start, end: guidance acts on the steps ``i`` with ``start <= i / count < end``
            (fractions of the schedule's steps).
        every: on every ``every``-th of those steps, from the first.
        inner_steps: normalised gradient nudges of the clean-latent estimate per guided step.
        step_size: size of one nudge: the root mean square of the change, per latent value,
            as a fraction of the estimate's own root mean square over the frames it covers,
            times the largest control strength and times the step's time ``t`` (nudges shrink
            as the sampler nears the clean audio, where the estimate is sharp and a large
            fixed step would overshoot).
        precise: also optimise the initial noise before sampling (DITTO; slower).
        precise_steps: normalised gradient steps on the initial noise in precise mode.
        rhythm_loss: ``"mse"`` or ``"bce"``.
        margin_frames: latent frames decoded on each side of a control's range (the
            decoder's receptive field is about 9 frames in ACE-Step's VAE).
    """

    start: float = 0.5
    end: float = 0.75
    every: int = 2
    inner_steps: int = 1
    step_size: float = 0.3
    precise: bool = False
    precise_steps: int = 4
    rhythm_loss: str = "mse"
    margin_frames: int = 12

    def __post_init__(self) -> None:
        if not (0.0 <= self.start < self.end <= 1.0):
            raise InvalidJob(f"controls steer from {self.start} until {self.end}: both must lie in 0..1, "
                             "the first before the second")
        if self.every < 1 or self.inner_steps < 0 or self.precise_steps < 0 or self.margin_frames < 0:
            raise InvalidJob("control guidance counts must be positive (every >= 1, steps >= 0)")
        if not (math.isfinite(self.step_size) and self.step_size >= 0):
            raise InvalidJob(f"control step size must be a non-negative number, not {self.step_size}")
        if self.rhythm_loss not in ("mse", "bce"):
            raise InvalidJob(f"rhythm loss must be 'mse' or 'bce', not {self.rhythm_loss!r}")

    def active_steps(self, count: int) -> list[int]:
        """Indices (0-based) of the guided steps in a schedule of ``count`` steps."""
        first = math.ceil(self.start * count - 1e-9)
        return [i for i in range(first, count)
                if i / count < self.end - 1e-12 and (i - first) % self.every == 0] if self.inner_steps else []

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "every": self.every, "inner_steps": self.inner_steps,
                "step_size": self.step_size, "precise": self.precise, "precise_steps": self.precise_steps,
                "rhythm_loss": self.rhythm_loss, "margin_frames": self.margin_frames}


# --------------------------------------------------------------------------- targets


@dataclass
class Control:
    """One control target in job seconds (see :func:`parse_controls`).

    Attributes:
        kind: ``"melody"``, ``"dynamics"`` or ``"rhythm"``.
        values: melody ``(12, T)`` one-hot (all-zero frame = no melody); dynamics ``(T,)`` dB;
            rhythm ``(T,)`` onset activation 0..1.
        frame_rate: frames of ``values`` per second (Hz).
        first_s: job second of ``values``' first frame.
        start_s, end_s: the control's time range in job seconds.
        strength: guidance weight (0 = measured only, 1 = default).
        range_samples: ``[start, end)`` of the range in samples at the job's rate from the
            job's first frame (provenance).
    """

    kind: str
    values: np.ndarray
    frame_rate: float
    first_s: float
    start_s: float
    end_s: float
    strength: float = 1.0
    range_samples: tuple[int, int] = (0, 0)
    source: str | None = None
    _events: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def frames(self) -> int:
        return int(self.values.shape[-1])

    def events(self) -> tuple[np.ndarray, np.ndarray]:
        """Rhythm: onset times (job seconds) picked from ``values`` (:func:`onset_peaks`),
        every one whatever the range, and their weights in the loss (all 1: an onset is an
        onset, as the F-measure counts them; accents are the dynamics control's business)."""
        if self._events is None:
            idx = onset_peaks(self.values, self.frame_rate)
            times = self.first_s + idx / self.frame_rate
            self._events = (times.astype(np.float64), np.ones(idx.size))
        return self._events

    def sample(self, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The target at ``times_s`` (job seconds) and where it counts.

        Returns:
            ``(target, mask)``: melody: pitch class int64 (-1 = none) and ``in range and
            voiced``; dynamics: dB float64 (clamped at :data:`FLOOR_DB`) and ``in range``;
            rhythm: bump curve 0..1 float64 and ``in range``.
        """
        t = np.asarray(times_s, dtype=np.float64)
        pos = (t - self.first_s) * self.frame_rate
        inside = (t >= self.start_s) & (t < self.end_s) & (pos > -0.5) & (pos < self.frames - 0.5)
        if self.kind == "melody":
            idx = np.clip(np.floor(pos + 0.5).astype(np.int64), 0, self.frames - 1)
            col = self.values[:, idx]
            pc = np.where(col.max(axis=0) > 0, col.argmax(axis=0), -1).astype(np.int64)
            return pc, inside & (pc >= 0)
        if self.kind == "dynamics":
            grid = self.first_s + np.arange(self.frames) / self.frame_rate
            db = np.interp(t, grid, np.maximum(self.values.astype(np.float64), FLOOR_DB))
            return db, inside
        times, heights = self.events()
        curve = np.zeros_like(t)
        for e, h in zip(times, heights):
            near = np.abs(t - e) < 4 * RHYTHM_SIGMA_S
            if near.any():
                curve[near] = np.maximum(curve[near], h * np.exp(-0.5 * ((t[near] - e) / RHYTHM_SIGMA_S) ** 2))
        return curve, inside


def onset_peaks(curve: np.ndarray, frame_rate: float | None = None) -> np.ndarray:
    """Frame indices of the onsets in an activation / onset-strength curve ``(T,)``.

    Peak picking of :func:`librosa.onset.onset_detect` with its default parameters (in
    frames at ``frame_rate``, default 86.13 Hz = 44.1 kHz / 512: pre-max 30 ms, post-max 1
    frame, averages over 100 ms, wait 30 ms, delta 0.07) on the curve normalised to 0..1.
    """
    import librosa

    x = np.asarray(curve, dtype=np.float64).ravel()
    if x.size < 3 or not np.isfinite(x).all():
        return np.zeros(0, np.int64)
    lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 1e-9:
        return np.zeros(0, np.int64)
    x = (x - lo) / (hi - lo)
    fr = float(frame_rate or 44100 / FEATURE_HOP)
    return np.asarray(librosa.util.peak_pick(
        x, pre_max=max(1, int(0.03 * fr)), post_max=1, pre_avg=max(1, int(0.10 * fr)), post_avg=int(0.10 * fr) + 1,
        wait=max(1, int(0.03 * fr)), delta=0.07), dtype=np.int64)


def _get(d: Any, key: str, default: Any = None) -> Any:
    return d.get(key, default) if isinstance(d, dict) else getattr(d, key, default)


def parse_controls(controls: dict[str, Any] | None, sample_rate: int, *,
                   load_audio: Callable[[str], tuple[np.ndarray, int]] | None = None) -> list[Control]:
    """``MusicSpec.controls`` (``ControlTarget`` dicts or objects) -> :class:`Control` list.

    Args:
        controls: ``{name: {"kind", "values", "frame_rate", "start", "end", "strength",
            "origin", "audio"?, "source"?}}`` (:class:`engines.base.ControlTarget`): ``start``,
            ``end`` and ``origin`` are samples at ``sample_rate`` (``end`` None = to the end of
            ``values``).
        sample_rate: the spec's sample rate in Hz.
        load_audio: ``path -> (audio (channels, frames), rate)`` for targets given as
            reference audio (``audio`` instead of ``values``); features are then taken with
            :mod:`engines.features` at that rate.

    Returns:
        The controls in the order given; their ranges are clipped to their values.

    Raises:
        InvalidJob: unknown kind, wrong shape, no values, non-finite numbers, a frame rate
            or sample rate that is not positive, a negative strength, an empty range.
    """
    out: list[Control] = []
    sr = float(sample_rate)
    if not sr > 0:
        raise InvalidJob(f"controls need a positive sample rate, not {sample_rate}")
    for name, d in (controls or {}).items():
        kind = str(_get(d, "kind") or name)
        if kind not in KINDS:
            raise InvalidJob(f"unknown control '{kind}'", f"controls: {', '.join(KINDS)}")
        values, rate = _get(d, "values"), float(_get(d, "frame_rate", 0.0) or 0.0)
        if values is None:
            path = _get(d, "audio")
            if path is None or load_audio is None:
                raise InvalidJob(f"the {kind} control has no values and no reference audio")
            values, rate = _features_of(kind, *load_audio(str(path)))
        arr = np.asarray(values, dtype=np.float64)
        want = (12,) if kind == "melody" else ()
        if arr.ndim != len(want) + 1 or arr.shape[:-1] != want or arr.shape[-1] < 1:
            shape = "(12, T)" if kind == "melody" else "(T,)"
            raise InvalidJob(f"the {kind} control's values must be shaped {shape}, not {arr.shape}")
        if not np.isfinite(arr).all():
            raise InvalidJob(f"the {kind} control's values hold NaN or infinite numbers")
        if not (math.isfinite(rate) and rate > 0):
            raise InvalidJob(f"the {kind} control needs a positive frame rate, not {rate}")
        strength = float(_get(d, "strength", 1.0) if _get(d, "strength") is not None else 1.0)
        if not (math.isfinite(strength) and strength >= 0):
            raise InvalidJob(f"the {kind} control's strength must be 0 or more, not {strength}")
        origin = int(_get(d, "origin", 0) or 0)
        span = arr.shape[-1] * sr / rate
        start = max(0, int(_get(d, "start", 0) or 0))
        end_raw = _get(d, "end")
        end = span if end_raw is None else min(float(end_raw), span)
        if end <= start:
            raise InvalidJob(f"the {kind} control's range {start}..{end_raw} is empty")
        out.append(Control(kind=kind, values=arr.astype(np.float32), frame_rate=rate, first_s=origin / sr,
                           start_s=(origin + start) / sr, end_s=(origin + end) / sr, strength=strength,
                           range_samples=(origin + start, int(round(origin + end))),
                           source=_get(d, "source")))
    return out


def _features_of(kind: str, audio: np.ndarray, rate: int) -> tuple[np.ndarray, float]:
    """A target from reference audio, as the studio makes one from a track."""
    from engines import features as F

    if kind == "melody":
        v = F.melody_one_hot(F.chroma(audio, rate))
    elif kind == "dynamics":
        v = np.maximum(F.loudness_db(audio, rate), FLOOR_DB)
    else:
        v = F.onset_strength(audio, rate)
        v = v / v.max() if v.size and v.max() > 0 else v
    return v.astype(np.float32), rate / float(F.HOP_LENGTH)


# --------------------------------------------------------------------------- losses (torch)


def feature_loss(kind: str, audio: Any, rate: int, target: Any, mask: Any, *, rhythm_loss: str = "mse") -> Any:
    """One control's loss per batch row.

    Args:
        kind: the control kind.
        audio: ``(batch, channels, samples)`` float tensor at ``rate`` Hz (any grad).
        target, mask: on the audio's feature frames (``1 + samples // 512`` of them; a
            longer target is cut), as :meth:`Control.sample` gives them: melody pitch
            classes (int64), dynamics dB, rhythm bump curve; ``mask`` bool.
        rhythm_loss: ``"mse"`` or ``"bce"``.

    Returns:
        ``(batch,)`` losses; 0 where the mask is empty. Melody: mean NLL (nats per frame) of
        the target pitch class under ``log_softmax(chroma / 0.1)``; dynamics: mean squared
        error in units of 10 dB of the mean-removed loudness curves; rhythm: the onset
        envelope smoothed with the target's 12 ms Gaussian, then the mean squared error of
        the standardised curves (zero mean, unit variance over the range: ``2 (1 - r)``, so
        the loudness of the onsets does not matter, only where they are), or the binary
        cross-entropy of the smoothed envelope divided by its (constant) peak.

    Method: DITTO (Novack et al. 2024) section 4's melody NLL and intensity MSE; the
    features are :func:`engines.features.chroma_torch`, :func:`engines.features.loudness_db_torch`
    and :func:`engines.features.onset_strength_torch`.
    """
    import torch

    from engines import features as F

    if kind == "melody":
        feat = F.chroma_torch(audio, rate, hop_length=FEATURE_HOP)
    elif kind == "dynamics":
        feat = F.loudness_db_torch(audio, rate, hop_length=FEATURE_HOP)
    else:
        feat = F.onset_strength_torch(audio, rate, hop_length=FEATURE_HOP)
    n = min(int(feat.shape[-1]), int(target.shape[-1]))
    feat, target = feat[..., :n], target[..., :n].to(feat.device)
    m = mask[:n].to(device=feat.device, dtype=feat.dtype)
    count = m.sum().clamp_min(1.0)
    if kind == "melody":
        logp = torch.log_softmax(feat / MELODY_TEMPERATURE, dim=1)
        idx = target.clamp_min(0).long().view(1, 1, n).expand(feat.shape[0], 1, n)
        nll = -logp.gather(1, idx).squeeze(1)
        return (nll * m).sum(-1) / count
    if kind == "dynamics":
        tgt = target.to(feat.dtype)
        mean_f = (feat * m).sum(-1, keepdim=True) / count
        mean_t = (tgt * m).sum() / count
        err = ((feat - mean_f) - (tgt - mean_t)) / DB_SCALE
        return (err ** 2 * m).sum(-1) / count
    tgt = target.to(feat.dtype)
    env = _gaussian_smooth(feat, RHYTHM_SIGMA_S * rate / FEATURE_HOP)
    if rhythm_loss == "bce":
        p = (env / (env * m).amax(-1, keepdim=True).detach().clamp_min(1e-6)).clamp(1e-4, 1 - 1e-4)
        err = -(tgt * torch.log(p) + (1 - tgt) * torch.log(1 - p))
    else:
        err = (_standardised(env, m, count) - _standardised(tgt, m, count)) ** 2
    return (err * m).sum(-1) / count


def _standardised(x: Any, m: Any, count: Any) -> Any:
    """``x`` minus its mean over the mask, divided by its standard deviation there."""
    mean = (x * m).sum(-1, keepdim=True) / count
    var = (((x - mean) * m) ** 2).sum(-1, keepdim=True) / count
    return (x - mean) / (var + 1e-12).sqrt()


def _gaussian_smooth(x: Any, sigma_frames: float) -> Any:
    """``x`` ``(batch, n)`` convolved with a unit-peak Gaussian of ``sigma_frames`` (edges replicated)."""
    import torch
    import torch.nn.functional as Fn

    r = max(1, int(math.ceil(3 * sigma_frames)))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) / sigma_frames) ** 2)
    return Fn.conv1d(Fn.pad(x.unsqueeze(1), (r, r), mode="replicate"), k.view(1, 1, -1)).squeeze(1)


def control_loss(audio: np.ndarray, sample_rate: int, control: Control, offset_s: float = 0.0, *,
                 rhythm_loss: str = "mse") -> float | None:
    """:func:`feature_loss` of a finished take against one control, over the control's range.

    Args:
        audio: ``(channels, samples)`` or ``(samples,)`` float at ``sample_rate``.
        offset_s: job second of the take's first sample.

    Returns:
        The loss, or None when the take and the control's range don't meet.

    Raises:
        ValueError: empty or non-finite audio (:mod:`engines.features`).
    """
    import torch

    a = np.asarray(audio, dtype=np.float32)
    a = a[None] if a.ndim == 1 else a
    n = 1 + a.shape[-1] // FEATURE_HOP
    times = offset_s + np.arange(n) * FEATURE_HOP / float(sample_rate)
    target, mask = control.sample(times)
    if not mask.any():
        return None
    with torch.no_grad():
        loss = feature_loss(control.kind, torch.from_numpy(a)[None], int(sample_rate), torch.from_numpy(target),
                            torch.from_numpy(mask), rhythm_loss=rhythm_loss)
    return float(loss[0])


# --------------------------------------------------------------------------- adherence (numpy)


def adherence(audio: np.ndarray, sample_rate: int, control: Control, offset_s: float = 0.0) -> dict[str, Any]:
    """How well a finished take follows one control, over the control's own time range.

    Args:
        audio: ``(channels, samples)`` or ``(samples,)`` float at ``sample_rate`` Hz.
        control: the target.
        offset_s: job second of the take's first sample.

    Returns:
        ``{"metric", "value", "frames"}``: ``melody_accuracy`` (fraction of the voiced target
        frames whose chroma argmax, :func:`engines.features.melody_argmax`, is the target
        pitch class; silent frames count as wrong), ``dynamics_r`` (Pearson r of
        :func:`engines.features.loudness_db`, floored at -60 dB, and the target), or
        ``rhythm_f1`` (``mir_eval.beat.f_measure`` at +-70 ms of the onsets picked, by
        :func:`onset_peaks`, from :func:`engines.features.onset_strength` of the take and
        from the target); ``frames``: feature frames (rhythm: target onsets) it is taken
        over. ``value`` is None where the take and the range don't meet, or where the
        metric is undefined (a constant curve, no target onsets).

    Raises:
        ValueError: empty or non-finite audio (:mod:`engines.features`).
    """
    from engines import features as F

    metric = {"melody": "melody_accuracy", "dynamics": "dynamics_r", "rhythm": "rhythm_f1"}[control.kind]
    a = np.asarray(audio, dtype=np.float32)
    sr = int(sample_rate)
    n = 1 + a.shape[-1] // FEATURE_HOP
    times = offset_s + np.arange(n) * FEATURE_HOP / sr
    target, mask = control.sample(times)
    if control.kind == "melody":
        if not mask.any():
            return {"metric": metric, "value": None, "frames": 0}
        est = F.melody_argmax(F.chroma(a, sr, hop_length=FEATURE_HOP))[:n]
        return {"metric": metric, "value": float(np.mean(est[mask] == target[mask])), "frames": int(mask.sum())}
    if control.kind == "dynamics":
        db = np.maximum(F.loudness_db(a, sr, hop_length=FEATURE_HOP), FLOOR_DB)[:n].astype(np.float64)
        x, y = db[mask], target[mask]
        if x.size < 3 or x.std() < 1e-9 or y.std() < 1e-9:
            return {"metric": metric, "value": None, "frames": int(x.size)}
        return {"metric": metric, "value": float(np.corrcoef(x, y)[0, 1]), "frames": int(x.size)}
    import mir_eval

    t0, t1 = max(control.start_s, offset_s), min(control.end_s, offset_s + a.shape[-1] / sr)
    ref = control.events()[0]
    ref = ref[(ref >= t0) & (ref < t1)]
    if t1 <= t0 or ref.size == 0:
        return {"metric": metric, "value": None, "frames": int(ref.size)}
    env = F.onset_strength(a, sr, hop_length=FEATURE_HOP)
    est = offset_s + onset_peaks(env, sr / FEATURE_HOP) * FEATURE_HOP / sr
    est = est[(est >= t0) & (est < t1)]
    return {"metric": metric, "value": float(mir_eval.beat.f_measure(ref, est, f_measure_threshold=BEAT_WINDOW_S)),
            "frames": int(ref.size)}


# --------------------------------------------------------------------------- the guided step


Decoder = Callable[[Any], Any]
"""``decode(latents (batch, frames, channels)) -> audio (batch, channels, frames * hop)``,
differentiable (it may checkpoint), on the latents' device; any float dtype."""


@dataclass
class _Crop:
    """A stretch of latent frames decoded for the controls inside it."""

    c0: int
    c1: int
    items: list[tuple[Control, Any, Any]]  # (control, target tensor, mask tensor) on the crop's feature frames


@dataclass
class GuidanceTrace:
    """What guidance did in one run (provenance and tests).

    Attributes:
        steps: per guided step ``{"index", "t", "loss": {kind: [[one per row] per nudge]}}``
            (the loss of the clean-latent estimate before each nudge).
        touched: latent frames (``(frames,)`` bool) any update changed.
        precise_loss: ``{kind: [per row]}`` per noise-optimisation step (precise mode).
        decoder_passes: latent frames decoded with and without a graph (cost).
        seconds: wall time spent in guidance.
    """

    steps: list[dict[str, Any]] = field(default_factory=list)
    touched: np.ndarray | None = None
    precise_loss: list[dict[str, list[float]]] = field(default_factory=list)
    decoder_passes: dict[str, int] = field(default_factory=lambda: {"frames_no_grad": 0, "frames_grad": 0})
    seconds: float = 0.0


class ControlGuide:
    """Training-free control guidance for one sampling run (see the module docstring).

    Args:
        controls: the targets (:func:`parse_controls`); those with strength 0 are skipped.
        config: :class:`GuidanceConfig`.
        decode: :data:`Decoder`.
        frames: latent frames of the timeline.
        hop: audio samples per latent frame; ``rate``: the decoder's sample rate (Hz).
        timeline_start_s: job second of latent frame 0.
        tile, overlap: latent frames per gradient tile (core) and decoded on each side of
            it (at least the decoder's receptive field); ``tile <= 0`` = untiled.
        allowed: ``(frames,)`` bool where the sampler may change the latents (repainting:
            the windows); None = everywhere. Loss frames and updates stay inside it.
        check: called between decoder passes (cancel; whatever it raises goes through).

    Controls whose range misses the timeline (or the windows) are listed in ``skipped`` and
    left out; :attr:`active` is False when none is left.
    """

    def __init__(self, controls: list[Control], config: GuidanceConfig, *, decode: Decoder, frames: int, hop: int,
                 rate: int, timeline_start_s: float, tile: int = 0, overlap: int = 12,
                 allowed: np.ndarray | None = None, check: Callable[[], None] | None = None) -> None:
        self.config, self.decode, self.frames, self.hop, self.rate = config, decode, int(frames), int(hop), int(rate)
        self.fps = self.rate / self.hop
        self.t0 = float(timeline_start_s)
        self.tile, self.overlap, self.check = int(tile), int(overlap), check
        self.allowed = np.ones(self.frames, bool) if allowed is None else np.asarray(allowed, bool)[: self.frames]
        self.controls = [c for c in controls if c.strength > 0]
        self.skipped: list[str] = []
        self.trace = GuidanceTrace(touched=np.zeros(self.frames, bool))
        spans = []
        for c in self.controls:
            a = max(0, int(math.floor((c.start_s - self.t0) * self.fps)))
            b = min(self.frames, int(math.ceil((c.end_s - self.t0) * self.fps)))
            if b <= a or not self.allowed[a:b].any():
                self.skipped.append(c.kind)
                continue
            spans.append((max(0, a - config.margin_frames), min(self.frames, b + config.margin_frames), c))
        self.controls = [s[2] for s in spans]
        self.crops: list[_Crop] = []
        for a, b, c in sorted(spans, key=lambda s: s[0]):
            if self.crops and a <= self.crops[-1].c1:
                self.crops[-1].c1 = max(self.crops[-1].c1, b)
                self.crops[-1].items.append((c, None, None))
            else:
                self.crops.append(_Crop(a, b, [(c, None, None)]))
        for crop in self.crops:
            crop.items = [(c, *self._targets(c, crop)) for c, _, _ in crop.items]
        mask = np.zeros(self.frames, bool)
        for crop in self.crops:
            mask[crop.c0:crop.c1] = True
        self.update_frames = mask & self.allowed
        self.strength = max((c.strength for c in self.controls), default=0.0)

    @property
    def active(self) -> bool:
        """Whether any control meets the timeline."""
        return bool(self.crops)

    def _targets(self, c: Control, crop: _Crop) -> tuple[Any, Any]:
        import torch

        n = 1 + (crop.c1 - crop.c0) * self.hop // FEATURE_HOP
        rel = np.arange(n) * FEATURE_HOP / self.rate
        target, mask = c.sample(self.t0 + crop.c0 / self.fps + rel)
        frame = np.clip(np.floor(crop.c0 + rel * self.fps).astype(np.int64), 0, self.frames - 1)
        mask = mask & self.allowed[frame]
        return torch.from_numpy(target), torch.from_numpy(mask)

    # ------------------------------------------------------------------ loss and gradient

    def _bounds(self, n: int) -> list[tuple[int, int, int, int]]:
        if self.tile <= 0 or n <= self.tile:
            return [(0, n, 0, n)]
        out = []
        for i in range(math.ceil(n / self.tile)):
            cs, ce = i * self.tile, min(n, (i + 1) * self.tile)
            out.append((max(0, cs - self.overlap), min(n, ce + self.overlap), cs, ce))
        return out

    def loss_and_grad(self, z: Any) -> tuple[dict[str, Any], Any]:
        """The controls' losses at the latents ``z`` and the gradient that lowers them.

        Args:
            z: ``(batch, frames, channels)``.

        Returns:
            ``(losses, grad)``: ``{kind: (batch,) float32 CPU tensor}`` and a float32
            ``(batch, frames, channels)`` tensor, zero outside the crops. Each control's
            gradient with respect to the decoded audio is scaled to unit root mean square
            per row and weighted by ``strength / max strength`` before it goes back through
            the decoder (so controls with very different loss scales share the step).
        """
        import torch

        z = z.detach()
        grad = torch.zeros(z.shape, dtype=torch.float32, device=z.device)
        losses: dict[str, Any] = {}
        for crop in self.crops:
            zc = z[:, crop.c0:crop.c1]
            bounds = self._bounds(crop.c1 - crop.c0)
            if len(bounds) == 1:  # one tile: one pass, its graph kept while the losses are taken
                self._tick()
                with torch.enable_grad():
                    zt = zc.detach().requires_grad_(True)
                    out = self.decode(zt).float()
                self.trace.decoder_passes["frames_grad"] += crop.c1 - crop.c0
                g_audio = self._audio_grad(crop, out.detach(), losses)
                out.backward(g_audio)
                grad[:, crop.c0:crop.c1] += zt.grad.float()
                del out, zt
                continue
            with torch.no_grad():
                parts = []
                for ws, we, cs, ce in bounds:
                    self._tick()
                    parts.append(self.decode(zc[:, ws:we])[..., (cs - ws) * self.hop:(ce - ws) * self.hop].float())
                    self.trace.decoder_passes["frames_no_grad"] += we - ws
                audio = torch.cat(parts, dim=-1)
                del parts
            g_audio = self._audio_grad(crop, audio, losses)
            del audio
            for ws, we, cs, ce in bounds:
                self._tick()
                with torch.enable_grad():
                    zt = zc[:, ws:we].detach().requires_grad_(True)
                    out = self.decode(zt)[..., (cs - ws) * self.hop:(ce - ws) * self.hop]
                    out.backward(g_audio[..., cs * self.hop:ce * self.hop].to(out.dtype))
                grad[:, crop.c0 + ws:crop.c0 + we] += zt.grad.float()
                self.trace.decoder_passes["frames_grad"] += we - ws
                del out, zt
        return losses, grad

    def _audio_grad(self, crop: _Crop, audio: Any, losses: dict[str, Any]) -> Any:
        """The weighted, per-control normalised gradient of the crop's losses with respect to
        its audio ``(batch, channels, samples)``; the losses go into ``losses``."""
        import torch

        g_audio = torch.zeros_like(audio)
        leaf = audio.detach().requires_grad_(True)
        with torch.enable_grad():
            for c, target, mask in crop.items:
                loss = feature_loss(c.kind, leaf, self.rate, target, mask, rhythm_loss=self.config.rhythm_loss)
                g, = torch.autograd.grad(loss.sum(), leaf)
                rms = g.pow(2).mean(dim=(1, 2), keepdim=True).sqrt().clamp_min(1e-20)
                g_audio += (c.strength / self.strength) * g / rms
                losses[c.kind] = loss.detach().float().cpu()
        return g_audio

    def _tick(self) -> None:
        if self.check is not None:
            self.check()

    def _nudge(self, x: Any, grad: Any, t: float = 1.0) -> Any:
        """``x`` moved along ``-grad`` (masked to the update frames), the change's root mean
        square per row being ``step_size * max strength * rms(x)`` over those frames."""
        import torch

        m = torch.from_numpy(self.update_frames.astype(np.float32)).to(grad.device).view(1, -1, 1)
        g = grad * m
        count = m.sum() * grad.shape[-1]
        rms_g = (g.pow(2).sum(dim=(1, 2), keepdim=True) / count).sqrt()
        xf = x.float()
        rms_x = ((xf * m).pow(2).sum(dim=(1, 2), keepdim=True) / count).sqrt().clamp_min(1e-3)
        scale = self.config.step_size * t * self.strength * rms_x / rms_g.clamp_min(1e-30)
        scale = torch.where(rms_g > 1e-30, scale, torch.zeros_like(scale))
        return xf - scale * g

    # ------------------------------------------------------------------ the hooks

    def step(self, index: int, count: int, t: float, x_t: Any, velocity: Any) -> tuple[Any, Any] | None:
        """The guided step (module docstring) at sampler step ``index`` of ``count``, time ``t``.

        Args:
            x_t, velocity: ``(batch, frames, channels)``: the latents and the model's velocity.

        Returns:
            ``(new x_t, new velocity)`` (the Euler step from them lands on
            ``(1 - t_next) * x0' + t_next * eps``), or None on the steps guidance skips.
        """
        if not self.active or index not in self.config.active_steps(count):
            return None
        start = time.monotonic()
        dtype = x_t.dtype
        x0 = (x_t - t * velocity).float()
        x0_before = x0.clone()
        record: dict[str, Any] = {"index": index, "t": round(float(t), 6), "loss": {}}
        for _ in range(self.config.inner_steps):
            losses, grad = self.loss_and_grad(x0)
            for k, v in losses.items():
                record["loss"].setdefault(k, []).append([round(float(x), 6) for x in v])
            x0 = self._nudge(x0, grad, float(t))
        self.trace.steps.append(record)
        delta = x0 - x0_before  # exactly 0 outside the update frames
        self.trace.touched |= (delta != 0).any(dim=2).any(dim=0).cpu().numpy()
        self.trace.seconds += time.monotonic() - start
        # x0 += delta with eps = x_t + (1 - t) v kept: x_t += (1 - t) delta, v -= delta
        # (written as increments so that frames guidance leaves alone stay bit-identical)
        return (x_t.float() + (1.0 - t) * delta).to(dtype), (velocity.float() - delta).to(dtype)

    def optimise_start(self, x: Any, t: float, model: Callable[[Any, float], Any]) -> Any:
        """Precise mode: DITTO's optimisation of the starting latent, through DITTO-2's
        one-step surrogate ``x0 = x - t * model(x, t)``.

        Args:
            x: the starting latents ``(batch, frames, channels)`` (noise, or the noised
                source for restyle).
            t: the schedule's first time.
            model: ``model(x, t) -> velocity``, differentiable under ``torch.enable_grad()``.

        Returns:
            The optimised start (same shape and dtype), changed only in the update frames.
        """
        import torch

        if not (self.active and self.config.precise and self.config.precise_steps > 0):
            return x
        start = time.monotonic()
        dtype = x.dtype
        cur = x.detach()
        before = cur.clone()
        for _ in range(self.config.precise_steps):
            self._tick()
            with torch.enable_grad():
                xv = cur.detach().requires_grad_(True)
                x0 = xv - t * model(xv, t)
                losses, g0 = self.loss_and_grad(x0.detach())
                x0.backward(g0.to(x0.dtype))
            self.trace.precise_loss.append({k: [round(float(v), 6) for v in vals] for k, vals in losses.items()})
            cur = self._nudge(cur, xv.grad.float()).to(dtype)
        self.trace.touched |= (cur != before).any(dim=2).any(dim=0).cpu().numpy()
        self.trace.seconds += time.monotonic() - start
        return cur

    def summary(self) -> dict[str, Any]:
        """Provenance: the configuration, the guided steps, touched frames, cost."""
        touched = np.nonzero(self.trace.touched)[0]
        return {
            **self.config.to_dict(),
            "controls": [c.kind for c in self.controls],
            "outside_the_generated_span": list(self.skipped),
            "crops_latent_frames": [[c.c0, c.c1] for c in self.crops],
            "guided_steps": [s["index"] for s in self.trace.steps],
            "loss_per_step": self.trace.steps,
            "precise_loss": self.trace.precise_loss,
            "touched_latent_frames": [int(touched[0]), int(touched[-1]) + 1] if touched.size else None,
            "decoder_frames": dict(self.trace.decoder_passes),
            "seconds": round(self.trace.seconds, 3),
        }
