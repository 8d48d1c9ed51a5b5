"""Offline DSP stem separation: harmonic/percussive split plus centre-channel extraction.

A fallback that needs no model download. It is a classic signal-processing estimate,
far below HT-Demucs in quality, and is labelled as a DSP fallback wherever it appears.

Method, on the STFT of each channel (librosa):

* harmonic/percussive soft masks from median filtering of the mid-channel magnitude
  (Fitzgerald, "Harmonic/percussive separation using median filtering", DAFx 2010;
  ``librosa.decompose.hpss`` with ``mask=True``);
* a centre mask from the inter-channel similarity of Avendano & Jot ("A frequency-domain
  approach to multichannel upmix", JAES 2004): ``2 Re(L R*) / (|L|^2 + |R|^2)``, clipped
  to [0, 1] and sharpened; mono input counts as fully centred;
* vocals = centre x harmonic within 120 Hz - 8 kHz; bass = harmonic below 250 Hz (not
  vocals); drums = percussive (not vocals); other = the mixture minus those three, so
  the four stems always sum exactly to the mixture.

Blocking (bounded memory). The song is processed in blocks of STFT frames on the global
hop grid (``block_seconds``, 30 s by default), so memory scales with the block and not
with the song, and the result equals the one-batch computation (``librosa.stft`` with
``center=True``, HPSS, masks, ``librosa.istft(..., length=frames)``) to within float32
rounding - in practice bit for bit. Frame ``t`` of the one-batch STFT is the window at
samples ``[t*hop - n_fft//2, t*hop + n_fft//2)`` of the signal zero-padded by
``n_fft//2`` on each side (librosa's default ``pad_mode="constant"``); a block cuts that
span out of the signal, zero-filling only where it passes the true signal edges, and
takes ``librosa.stft(..., center=False)`` of it, which yields exactly those frames. Each
block's core frames get ``context`` extra frames on each side (at least 32, and at least
``kernel_size[0] // 2`` plus the frames the resynthesis needs): the harmonic median
filter looks ``kernel_size[0] // 2`` frames along time, and with that margin it sees the
same neighbours as in one batch (at the true ends of the song the block ends there too,
so scipy's ``reflect`` edge mode sees the same data). The percussive filter (along
frequency) and the centre mask (per bin) need no context. Resynthesis: a sample of the
inverse STFT depends only on the ``ceil(n_fft / hop)`` frames that cover it. For the
output samples of a block's core (padded positions ``[c0*hop, c1*hop)`` for core frames
``[c0, c1)``) those are frames ``c0 - ceil(n_fft/hop) + 1 .. c1 - 1``, so ``librosa.istft``
with ``center=False`` on exactly those masked frames overlap-adds the same frames in the
same order and divides by the same window sum of squares (``window_sumsquare`` sums the
same squared-window values in the same order) as the one-batch ``istft``; the samples
outside the core are dropped. This was chosen over a hand-written overlap-add because it
reuses librosa's own inverse FFT, windowing, accumulation and normalisation code.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from engines.base import InvalidJob, JobCancelled

DSP_SOURCES = ["drums", "bass", "other", "vocals"]

#: Minimum number of STFT frames of context computed (and dropped) on each side of a block.
MIN_CONTEXT_FRAMES = 32


def separate_dsp(
    audio: np.ndarray,
    sample_rate: int,
    *,
    n_fft: int = 4096,
    kernel_size: tuple[int, int] = (17, 61),
    centre_power: float = 4.0,
    vocal_band: tuple[float, float] = (120.0, 8000.0),
    bass_cutoff: float = 250.0,
    progress: Callable[..., None] | None = None,
    cancel: Any = None,
    block_seconds: float | None = 30.0,
) -> dict[str, np.ndarray]:
    """Split a mixture into drums, bass, other and vocals with DSP only.

    The signal is processed in blocks of STFT frames with enough context that the result
    equals the one-batch computation within float32 rounding (see the module docstring);
    working memory is proportional to ``block_seconds``, plus the input and the four
    output stems.

    Args:
        audio: ``(channels, frames)`` float32, 1 or 2 channels (a 1-D array is mono).
        sample_rate: Hz.
        n_fft: STFT size in samples (hop n_fft / 4, Hann window).
        kernel_size: median filter lengths of the HPSS: (harmonic, along time frames;
            percussive, along frequency bins).
        centre_power: sharpness of the centre mask (higher = only hard-centred sound).
        vocal_band: (low, high) Hz of the vocal estimate.
        bass_cutoff: Hz below which harmonic sound is bass.
        progress: ``progress(fraction, stage)``; the fraction rises monotonically through
            each block's stages and ends at ``1.0`` with stage ``"done"``.
        cancel: anything with a ``cancelled`` attribute (a ``CancelToken``), checked
            between the stages of every block, so a cancelled job stops within one block.
        block_seconds: length of a block in seconds, rounded to whole STFT hops (at
            least one hop); ``None``, or a value longer than the input, processes the
            whole input as one block.

    Returns:
        ``{"drums", "bass", "other", "vocals"}`` -> ``(channels, frames)`` float32, same
        shape as the input; the stems sum to the input within float32 rounding.

    Raises:
        InvalidJob: not 1 or 2 channels, empty, non-finite samples, or ``block_seconds``
            not a positive finite number.
        JobCancelled: cancelled.
    """
    import librosa

    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        raise InvalidJob(f"DSP separation needs mono or stereo (channels, frames) audio, got shape {x.shape}")
    if x.shape[1] == 0:
        raise InvalidJob("DSP separation input is empty (0 frames)")
    if not np.isfinite(x).all():
        raise InvalidJob("DSP separation input contains NaN or infinite samples")
    if block_seconds is not None and not (math.isfinite(block_seconds) and block_seconds > 0):
        raise InvalidJob(f"DSP separation block_seconds must be a positive number of seconds, got {block_seconds!r}")

    def step(f: float, stage: str) -> None:
        if cancel is not None and getattr(cancel, "cancelled", False):
            raise JobCancelled("job cancelled")
        if progress is not None:
            progress(f, stage)

    channels, frames = x.shape
    hop = n_fft // 4
    half = n_fft // 2  # librosa's centre padding on each side
    # frames of librosa.stft(center=True): 1 + (padded length - n_fft) // hop
    n_stft = 1 + (frames + 2 * half - n_fft) // hop
    # frames before a core start that still overlap its first output sample
    overlap = -(-n_fft // hop) - 1
    win_harm = int(kernel_size if np.isscalar(kernel_size) else kernel_size[0])
    context = max(MIN_CONTEXT_FRAMES, overlap + win_harm // 2 + 1)
    if block_seconds is None:
        block_frames = n_stft
    else:
        block_frames = max(1, int(round(block_seconds * sample_rate / hop)))
    n_blocks = -(-n_stft // block_frames)

    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft)[:, None]
    in_band = ((freqs >= vocal_band[0]) & (freqs <= vocal_band[1])).astype(np.float32)
    below_bass = freqs < bass_cutoff

    out = {name: np.empty((channels, frames), dtype=np.float32) for name in DSP_SOURCES}

    for i in range(n_blocks):
        def block_step(sub: float, stage: str, _i: int = i) -> None:
            step((_i + sub) / n_blocks, stage if n_blocks == 1 else f"{stage} (block {_i + 1}/{n_blocks})")

        c0 = i * block_frames  # core frames [c0, c1)
        c1 = min(c0 + block_frames, n_stft)
        a = max(0, c0 - context)  # analysed frames [a, b)
        b = min(n_stft, c1 + context)
        block_step(0.0, "analysing")
        # Samples of the centre-padded signal under frames [a, b), in signal coordinates.
        s0, s1 = a * hop - half, (b - 1) * hop + n_fft - half
        seg = np.zeros((channels, s1 - s0), dtype=np.float32)
        lo_s, hi_s = max(s0, 0), min(s1, frames)
        if hi_s > lo_s:
            seg[:, lo_s - s0:hi_s - s0] = x[:, lo_s:hi_s]
        spec = librosa.stft(seg, n_fft=n_fft, hop_length=hop, center=False)  # (channels, bins, b - a)
        del seg
        mid = np.abs(spec.mean(axis=0))
        block_step(0.2, "harmonic/percussive split")
        harm, perc = librosa.decompose.hpss(mid, kernel_size=kernel_size, mask=True)
        block_step(0.6, "centre extraction")
        # Only frames [lo, c1) feed this block's output samples.
        lo = max(0, c0 - overlap)
        keep = slice(lo - a, c1 - a)
        spec = spec[..., keep]
        harm, perc, mid = harm[:, keep], perc[:, keep], mid[:, keep]
        if channels == 2:
            left, right = spec[0], spec[1]
            num = 2.0 * np.real(left * np.conj(right))
            den = np.abs(left) ** 2 + np.abs(right) ** 2 + 1e-12
            centre = np.clip(num / den, 0.0, 1.0) ** centre_power
            del num, den
        else:
            centre = np.ones_like(mid)
        vocals = centre * harm * in_band
        bass = harm * below_bass * (1.0 - vocals)
        drums = perc * (1.0 - vocals)
        del centre, harm, perc, mid
        block_step(0.8, "resynthesis")
        # Output samples of the core: padded positions [c0*hop, c1*hop) (to the end for
        # the last block), clipped to the signal.
        u0 = min(max(c0 * hop - half, 0), frames)
        u1 = frames if i == n_blocks - 1 else min(max(c1 * hop - half, 0), frames)
        off = half - lo * hop  # signal sample u is local sample u + off
        for name, mask in (("drums", drums), ("bass", bass), ("vocals", vocals)):
            y = librosa.istft(spec * mask[None].astype(np.float32), hop_length=hop, n_fft=n_fft, center=False)
            out[name][:, u0:u1] = y[:, u0 + off:u1 + off]
        del spec, vocals, bass, drums
        other = x[:, u0:u1].astype(np.float64) - sum(out[n][:, u0:u1].astype(np.float64) for n in ("drums", "bass", "vocals"))
        out["other"][:, u0:u1] = other
    step(1.0, "done")
    return out
