"""Levels of rendered audio: sample peak, true peak, RMS, integrated loudness, overs.

Everything here reads blocks that the one render path (:mod:`studio.audio.render`)
produced: the playback meters, the export and ``render`` reports all measure the same
audio that is heard and written; nothing mixes a second time.

* **Sample peak**: the largest ``|x|``, in dBFS (0 dBFS = 1.0, full scale).
* **True peak** (ITU-R BS.1770-4, Annex 2): the largest ``|x|`` of the signal
  oversampled 4x (2x at 96 kHz and above, 1x at 192 kHz) by a polyphase low-pass FIR
  (:data:`TRUE_PEAK_TAPS` taps per phase, Kaiser window; flat within 0.01 dB up to
  18 kHz at 44.1 kHz), in dBFS. It shows the peaks a
  D/A converter or a lossy encoder makes *between* samples: a sine at a quarter of the
  sample rate whose samples read -3 dBFS can have a true peak of 0 dBFS.
  :class:`TruePeak` works block by block with the filter history carried over, so a
  file measured in blocks reads exactly what the whole file reads.
* **RMS**: the root mean square per channel, dBFS (a full-scale sine reads -3.01 dBFS).
* **Integrated loudness** (ITU-R BS.1770-4 / EBU R 128): K-weighting (the two biquads
  of the standard, coefficients from :mod:`pyloudnorm`), mean square in 400 ms blocks
  with 75 % overlap, an absolute gate at -70 LUFS and a relative gate 10 LU below the
  gated mean; in LUFS. :class:`Loudness` streams: it keeps one sum per 100 ms and
  reads within 0.01 LU of ``pyloudnorm.Meter.integrated_loudness`` on the same audio.
* **Overs**: samples with ``|x| > 1.0``. An integer file (16/24-bit PCM) clips them
  (``clipped_samples``); a 32-bit float file keeps them, but they clip as soon as the
  file is converted or played at fixed point, so a float export reports them as overs
  (``over_samples``) and never as 0.

Units: levels in dBFS (``-inf`` for digital silence), loudness in LUFS, counts in
samples (one sample of one channel), durations in samples at the stated rate.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np

TRUE_PEAK_TAPS = 24
"""Taps per polyphase branch of the true-peak interpolator (BS.1770-4's example filter has 12)."""

OVER = 1.0
"""Full scale: a sample above this magnitude is an over."""

SILENCE_DB = -math.inf


def gain_to_db(x: float) -> float:
    """Linear amplitude -> dBFS (``20 log10 x``); 0 -> ``-inf``."""
    x = float(x)
    return 20.0 * math.log10(x) if x > 0.0 else -math.inf


def fmt_db(db: float, unit: str = "dBFS") -> str:
    """``"+4.1 dBFS"``, ``"-0.3 dBFS"`` or ``"-inf dBFS"`` (signed, one decimal)."""
    if db == -math.inf or db != db:
        return f"-inf {unit}"
    return f"{db:+.1f} {unit}"


def oversampling_factor(sample_rate: int) -> int:
    """4 below 96 kHz, 2 below 192 kHz, else 1 (BS.1770-4: oversample to at least 192 kHz)."""
    sr = int(sample_rate)
    return 4 if sr < 96000 else 2 if sr < 192000 else 1


def _interpolator(factor: int) -> np.ndarray:
    """The polyphase low-pass FIR for ``factor``x oversampling (unity passband gain)."""
    from scipy.signal import firwin

    if factor == 1:
        return np.ones(1, dtype=np.float64)
    n = TRUE_PEAK_TAPS * factor
    return firwin(n, 1.0 / factor, window=("kaiser", 7.0)) * factor


class TruePeak:
    """Streaming true-peak meter (ITU-R BS.1770-4 Annex 2) of ``channels`` channels.

    Feed consecutive ``(channels, n)`` blocks to :meth:`process`; :attr:`peak` is the
    largest oversampled magnitude so far (linear, per channel) and :meth:`peak_db` the
    largest over all channels in dBFS. The filter history crosses block edges, so the
    result does not depend on how the audio is cut into blocks.

    Speed: each output phase ``p`` of input sample ``m`` is ``sum_k h[p + kL] x[m - k]``,
    so it is at most :attr:`gain_bound` (``max_p sum_k |h[p + kL]|``) times the largest
    ``|x|`` in its window. The block is cut into chunks of :attr:`CHUNK` samples, visited
    loudest first, and a chunk whose bound can't exceed the peak found so far is not
    filtered: the result is exactly that of filtering everything, usually for a few
    chunks per block.

    Args:
        sample_rate: Hz (sets the oversampling factor, see :func:`oversampling_factor`).
        channels: number of channels.
    """

    CHUNK = 2048

    def __init__(self, sample_rate: int, channels: int = 2):
        self.factor = oversampling_factor(sample_rate)
        h = _interpolator(self.factor)
        self.taps = len(h) // self.factor
        self._phases = [np.ascontiguousarray(h[p::self.factor].astype(np.float32)) for p in range(self.factor)]
        self.gain_bound = max(float(np.abs(ph).sum()) for ph in self._phases)
        self.history = self.taps - 1
        self._hist = np.zeros((channels, self.history), dtype=np.float32)
        self.peak = np.zeros(channels, dtype=np.float64)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Measure one block; returns the true peak per channel (linear) so far, at least
        as large as the block's own sample peak."""
        x = np.asarray(block, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        n = x.shape[1]
        if n == 0:
            return self.peak.copy()
        np.maximum(self.peak, np.abs(x).max(axis=1), out=self.peak)  # the samples count too
        if self.factor == 1:
            return self.peak.copy()
        ext = np.concatenate([self._hist, x], axis=1)
        C, K = self.CHUNK, self.taps
        starts = np.arange(0, n, C)
        for c in range(x.shape[0]):
            a = np.abs(ext[c])
            m = np.maximum.reduceat(a, np.arange(0, a.size, C))
            nxt = np.append(m[1:], 0.0)
            bound = np.maximum(m, nxt)[: starts.size] * self.gain_bound  # window i spans ext chunks i, i+1
            for i in np.argsort(-bound, kind="stable"):
                if bound[i] <= self.peak[c]:
                    break
                seg = ext[c, starts[i]: starts[i] + C + K - 1]
                top = max(float(np.abs(np.convolve(seg, ph, mode="valid")).max()) for ph in self._phases)
                if top > self.peak[c]:
                    self.peak[c] = top
        self._hist = ext[:, ext.shape[1] - self.history:].copy()
        return self.peak.copy()

    def peak_db(self) -> float:
        """The true peak so far over all channels, dBFS."""
        return gain_to_db(float(self.peak.max()) if self.peak.size else 0.0)


class Loudness:
    """Streaming integrated loudness (ITU-R BS.1770-4, EBU R 128) of stereo or mono audio.

    Feed consecutive ``(channels, n)`` blocks to :meth:`process`, then read
    :meth:`integrated` (LUFS; ``-inf`` for audio shorter than one 400 ms block or quieter
    than the -70 LUFS gate). Memory: one number per channel per 100 ms.

    Args:
        sample_rate: Hz.
        channels: 1 or 2 (channel weights 1.0 each, as BS.1770 gives for L and R).
    """

    BLOCK_S = 0.4
    STEP_S = 0.1
    ABSOLUTE_GATE = -70.0
    RELATIVE_GATE = -10.0

    def __init__(self, sample_rate: int, channels: int = 2):
        import pyloudnorm
        from scipy.signal import lfilter_zi

        self.rate = int(sample_rate)
        self.channels = int(channels)
        meter = pyloudnorm.Meter(self.rate)
        self._stages = []
        for stage in meter._filters.values():  # high shelf, then high pass (K-weighting)
            zi = lfilter_zi(stage.b, stage.a) * 0.0
            self._stages.append((np.asarray(stage.b), np.asarray(stage.a), float(stage.passband_gain),
                                 np.tile(zi, (self.channels, 1))))
        self._frames = 0
        self._seg_index = 0
        self._seg_acc = np.zeros(self.channels)
        self._segments: list[np.ndarray] = []

    def _boundary(self, k: int) -> int:
        return int(self.BLOCK_S * (k * 0.25) * self.rate)

    def process(self, block: np.ndarray) -> None:
        """Add one ``(channels, n)`` block."""
        from scipy.signal import lfilter

        x = np.asarray(block, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.shape[1] == 0:
            return
        y = x[: self.channels]
        for b, a, g, zi in self._stages:
            y, zf = lfilter(b, a, y, axis=1, zi=zi)
            zi[:] = zf
            y = y * g
        sq = y * y
        pos = self._frames
        end = pos + x.shape[1]
        while True:
            nxt = self._boundary(self._seg_index + 1)
            if nxt > end:
                self._seg_acc += sq[:, pos - self._frames:].sum(axis=1)
                break
            self._seg_acc += sq[:, pos - self._frames:nxt - self._frames].sum(axis=1)
            self._segments.append(self._seg_acc)
            self._seg_acc = np.zeros(self.channels)
            self._seg_index += 1
            pos = nxt
        self._frames = end

    def integrated(self) -> float:
        """Integrated (gated) loudness of everything processed so far, LUFS."""
        seconds = self._frames / self.rate
        if seconds < self.BLOCK_S:
            return -math.inf
        n_blocks = int(np.round((seconds - self.BLOCK_S) / (self.BLOCK_S * 0.25))) + 1
        segs = self._segments + [self._seg_acc]
        need = n_blocks + 3
        if len(segs) < need:
            segs = segs + [np.zeros(self.channels)] * (need - len(segs))
        s = np.asarray(segs[:need])  # (segments, channels)
        csum = np.concatenate([np.zeros((1, self.channels)), np.cumsum(s, axis=0)])
        z = (csum[4:4 + n_blocks] - csum[:n_blocks]) / (self.BLOCK_S * self.rate)  # (blocks, channels)
        power = z.sum(axis=1)
        with np.errstate(divide="ignore"):
            lj = -0.691 + 10.0 * np.log10(power)
        gated = lj >= self.ABSOLUTE_GATE
        if not gated.any():
            return -math.inf
        gamma_r = -0.691 + 10.0 * np.log10(z[gated].mean(axis=0).sum()) + self.RELATIVE_GATE
        keep = (lj > gamma_r) & (lj > self.ABSOLUTE_GATE)
        if not keep.any():
            return -math.inf
        return float(-0.691 + 10.0 * np.log10(z[keep].mean(axis=0).sum()))


@dataclass
class FileLevels:
    """The levels of one rendered file (see the module docstring for each measure).

    Attributes:
        frames: samples per channel measured.
        sample_peak_dbfs: largest ``|x|``, dBFS.
        true_peak_dbfs: BS.1770-4 true peak, dBFS.
        loudness_lufs: integrated loudness, LUFS (``-inf``: shorter than 0.4 s or silent).
        over_samples: samples with ``|x| > 1.0`` (counted per channel).
        clipped_samples: of those, the ones the file format clipped (integer PCM: all
            of them; 32-bit float: none).
    """

    frames: int = 0
    sample_peak_dbfs: float = -math.inf
    true_peak_dbfs: float = -math.inf
    loudness_lufs: float = -math.inf
    over_samples: int = 0
    clipped_samples: int = 0

    @property
    def is_over(self) -> bool:
        """True when a sample or the true peak went above full scale."""
        return self.over_samples > 0 or self.true_peak_dbfs > 0.0

    def to_dict(self) -> dict:
        """JSON-ready (``-inf`` becomes ``None``; dB rounded to 0.01)."""
        d = asdict(self)
        for k in ("sample_peak_dbfs", "true_peak_dbfs", "loudness_lufs"):
            v = d[k]
            d[k] = None if v == -math.inf or v != v else round(float(v), 2)
        return d


class LevelMeter:
    """Measures one file's audio block by block: peaks, true peak, loudness, overs.

    Args:
        sample_rate: Hz. channels: channels of the blocks.
        clips: True when the file format clips overs (integer PCM), False for float.
        loudness: also measure integrated loudness (costs two biquads per sample).
    """

    def __init__(self, sample_rate: int, channels: int = 2, *, clips: bool = True, loudness: bool = True):
        self.sample_rate = int(sample_rate)
        self.clips = clips
        self.true_peak = TruePeak(sample_rate, channels)
        self.loudness = Loudness(sample_rate, channels) if loudness else None
        self.frames = 0
        self.sample_peak = 0.0
        self.overs = 0

    def add(self, block: np.ndarray) -> None:
        """Measure the next ``(channels, n)`` block."""
        x = np.asarray(block)
        if x.size == 0:
            return
        a = np.abs(x)
        self.sample_peak = max(self.sample_peak, float(a.max()))
        self.overs += int(np.count_nonzero(a > OVER))
        self.true_peak.process(x)
        if self.loudness is not None:
            self.loudness.process(x)
        self.frames += x.shape[-1]

    def result(self) -> FileLevels:
        """The levels measured so far."""
        return FileLevels(
            frames=self.frames, sample_peak_dbfs=gain_to_db(self.sample_peak),
            true_peak_dbfs=self.true_peak.peak_db(),
            loudness_lufs=self.loudness.integrated() if self.loudness is not None else -math.inf,
            over_samples=self.overs, clipped_samples=self.overs if self.clips else 0)


def measure(audio: np.ndarray, sample_rate: int, *, clips: bool = True) -> FileLevels:
    """:class:`FileLevels` of a whole ``(channels, frames)`` array."""
    x = np.asarray(audio)
    if x.ndim == 1:
        x = x[None, :]
    m = LevelMeter(sample_rate, x.shape[0], clips=clips)
    m.add(x)
    return m.result()


# ------------------------------------------------------------------ meters (playback)
@dataclass
class BlockLevels:
    """Peak and RMS of one block, per channel, linear (the meters' input).

    Attributes:
        peak: ``(channels,)`` largest ``|x|``.
        rms: ``(channels,)`` root mean square.
        overs: samples above full scale in the block.
    """

    peak: np.ndarray
    rms: np.ndarray
    overs: int = 0

    @property
    def peak_db(self) -> float:
        """Largest peak over the channels, dBFS."""
        return gain_to_db(float(self.peak.max()) if self.peak.size else 0.0)

    @property
    def rms_db(self) -> float:
        """Largest RMS over the channels, dBFS."""
        return gain_to_db(float(self.rms.max()) if self.rms.size else 0.0)


def block_levels(audio: np.ndarray) -> BlockLevels:
    """Peak, RMS and overs of one ``(channels, n)`` block (float32 in, float64 maths)."""
    x = np.asarray(audio)
    if x.ndim == 1:
        x = x[None, :]
    if x.shape[1] == 0:
        z = np.zeros(x.shape[0])
        return BlockLevels(z, z.copy(), 0)
    a = np.abs(x)
    peak = a.max(axis=1).astype(np.float64)
    rms = np.sqrt(np.mean(np.square(x, dtype=np.float64), axis=1))
    return BlockLevels(peak, rms, int(np.count_nonzero(a > OVER)))


# ------------------------------------------------------------------ the warning
def headroom_needed_db(levels: Iterable[FileLevels], target_dbfs: float = -1.0) -> float:
    """How many dB the master must come down so that every file's true peak is at or
    below ``target_dbfs`` (0 when it already is)."""
    worst = max((max(lv.true_peak_dbfs, lv.sample_peak_dbfs) for lv in levels), default=-math.inf)
    return max(0.0, worst - target_dbfs) if worst != -math.inf else 0.0


def over_warning(files: list[tuple[str, FileLevels]], *, float_format: bool, master_gain_db: float,
                 app: bool = False) -> str | None:
    """A plain-words warning about the files that went over full scale, or None.

    Args:
        files: ``(file name, levels)`` of every written file.
        float_format: the files are 32-bit float (nothing was cut off).
        master_gain_db: the master gain used for the render, dB.
        app: word the advice for the app (the Mixer's Master fader, the Export dialog)
            instead of the command line (``--master-gain``, ``--float``).

    Returns:
        Several lines: what went over (file, samples over, true peak in dBFS, integrated
        loudness in LUFS) and what to do; None when nothing went over.
    """
    bad = [(name, lv) for name, lv in files if lv.is_over]
    if not bad:
        return None
    need = headroom_needed_db([lv for _, lv in bad])
    new_master = master_gain_db - need
    if float_format:
        head = (f"{len(bad)} file(s) go above full scale (0 dBFS). They are 32-bit float, so nothing was cut "
                "off, but they will clip when converted to 16/24-bit, encoded or played as they are:")
    else:
        head = f"{len(bad)} file(s) clipped (went above full scale, 0 dBFS):"
    lines = [head]
    for name, lv in bad:
        what = "samples clipped" if lv.clipped_samples else "samples over 0 dBFS"
        count = lv.clipped_samples or lv.over_samples
        samples = f"{count:,} {what}" if count else "no sample over, but peaks between samples"
        lines.append(f"  {name}: {samples}, true peak {fmt_db(lv.true_peak_dbfs)}, "
                     f"loudness {fmt_db(lv.loudness_lufs, 'LUFS').lstrip('+')}")
    if app:
        fix = (f"What to do: lower the Master fader in the Mixer by {need:.1f} dB (to {new_master:+.1f} dB) for a "
               "true peak of -1 dBFS, or lower the loudest tracks")
        if not float_format:
            fix += ", or export 32-bit float (Export dialog, Format) to keep the overs and lower the level later"
    else:
        fix = (f"What to do: lower the master by {need:.1f} dB for a true peak of -1 dBFS "
               f"(--master-gain {new_master:.1f}; in the app: the Master fader in the Mixer), or lower the "
               "loudest tracks")
        if not float_format:
            fix += ", or export 32-bit float (render --bit-depth float, export --float) to keep the overs"
    lines.append(fix + ".")
    return "\n".join(lines)
