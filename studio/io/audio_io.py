"""Audio file reading, writing and resampling at the edges of the studio.

Everything here works on float32 numpy arrays shaped ``(channels, frames)``
(pedalboard's convention) and always passes the sample rate (Hz) alongside.

Libraries used (no format or resampler code of our own):

* `soundfile <https://python-soundfile.readthedocs.io>`_ (libsndfile) decodes and
  encodes WAV, RF64, AIFF, FLAC, OGG Vorbis, Opus and MP3;
* `pedalboard.io.AudioFile <https://spotify.github.io/pedalboard>`_ is the fallback
  decoder for files libsndfile does not recognise;
* `soxr <https://github.com/dofuuz/python-soxr>`_ (libsoxr, "VHQ" preset) resamples,
  so that a file at another rate enters a project exactly once.

Validation turns every bad input into :class:`studio.errors.AudioFileError`
naming the file: missing, empty, not audio, unsupported sample rate, truncated
(fewer frames decode than the header claims, or a decode error mid-stream),
NaN/Inf samples.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from engines.files import atomic_output
from studio.errors import AudioFileError

__all__ = [
    "MIN_SAMPLE_RATE",
    "MAX_SAMPLE_RATE",
    "READ_EXTENSIONS",
    "WRITE_SUBTYPES",
    "AudioInfo",
    "AudioReader",
    "StreamResampler",
    "atomic_output",
    "audio_info",
    "check_finite",
    "downmix_to_stereo",
    "file_sha256",
    "read_audio",
    "resample",
    "resampled_length",
    "write_audio",
    "write_audio_blocks",
    "check_output_path",
]

MIN_SAMPLE_RATE = 8_000
"""Lowest sample rate (Hz) the studio accepts on import."""
MAX_SAMPLE_RATE = 192_000
"""Highest sample rate (Hz) the studio accepts on import."""

READ_EXTENSIONS = frozenset(
    {".wav", ".wave", ".rf64", ".w64", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".caf"}
)
"""File extensions offered in open dialogs (reading goes by content, not by name)."""

WRITE_SUBTYPES = ("PCM_16", "PCM_24", "FLOAT")
"""Sample formats :func:`write_audio` accepts."""

DEFAULT_BLOCK_FRAMES = 1 << 18
"""Frames per block when streaming a file (about 5.5 s at 48 kHz)."""

_WAV_LIMIT_BYTES = 0xFFFF_FFFF - (1 << 16)
"""Data size above which a WAV must become RF64 (RIFF sizes are 32-bit), with header headroom."""

_SFC_SET_ADD_PEAK_CHUNK = 0x1050
"""libsndfile command (sndfile.h) turning off the PEAK chunk, whose time stamp would make
float WAV files written at different times differ byte-wise (breaking content addressing)."""

_LOSSLESS_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "W64", "AIFF", "FLAC", "CAF", "AU"})
"""Containers whose header frame count is exact; a shortfall there means truncation."""

_MP3_TOLERANCE_FRAMES = 2 * 1152
"""MP3 frame counts may be estimated (no Xing/LAME header); allow two MPEG frames of slack."""

_HEADER_SHORTFALL = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
"""libsndfile's log line when a WAV/AIFF data chunk is longer than what the file holds."""
_UNKNOWN_SIZES = frozenset({0xFFFF_FFFF, 0x7FFF_FFFF})
"""Placeholder chunk sizes written by streaming recorders; libsndfile reads to the end of file."""


def _header_promises_more(log: str) -> bool:
    """True when libsndfile's header log shows a data chunk cut short (a truncated WAV/AIFF)."""
    return any(
        int(claimed) > int(actual) and int(claimed) not in _UNKNOWN_SIZES
        for claimed, actual in _HEADER_SHORTFALL.findall(log or "")
    )


# ----------------------------------------------------------------------------- info
@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says.

    Attributes:
        path: the file.
        sample_rate: Hz.
        channels: channel count (any; the media pool accepts 1 or 2, or downmixes).
        frames: frame count from the header (exact for lossless formats, possibly an
            estimate for MP3).
        format: container name, e.g. ``"WAV"``, ``"FLAC"``, ``"OGG"``, ``"MP3"``.
        subtype: sample encoding, e.g. ``"PCM_16"``, ``"FLOAT"``, ``"VORBIS"``, ``"OPUS"``.
        backend: ``"soundfile"`` or ``"pedalboard"``: which library decodes it.
    """

    path: Path
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str
    backend: str

    @property
    def duration(self) -> float:
        """Length in seconds (for display at the edges only)."""
        return self.frames / self.sample_rate

    @property
    def is_integer_pcm(self) -> bool:
        """True when the samples are stored as integer PCM (exactly representable in float32)."""
        return self.subtype.startswith("PCM_")


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioFileError(path, "file not found")
    if path.is_dir():
        raise AudioFileError(path, "is a folder, not an audio file")
    try:
        size = path.stat().st_size
    except OSError as exc:  # pragma: no cover - permissions, races
        raise AudioFileError(path, f"can't be read ({exc.strerror})") from exc
    if size == 0:
        raise AudioFileError(path, "file is empty (0 bytes)")


def _check_header(path: Path, sample_rate: int, channels: int, frames: int) -> None:
    if channels < 1:
        raise AudioFileError(path, "has no audio channels")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioFileError(
            path,
            f"unsupported sample rate {sample_rate} Hz "
            f"(supported: {MIN_SAMPLE_RATE // 1000}-{MAX_SAMPLE_RATE // 1000} kHz)",
        )
    if frames <= 0:
        raise AudioFileError(path, "holds no audio (0 frames)")


# ----------------------------------------------------------------------------- reading
class AudioReader:
    """Streams a file block by block, validating as it goes.

    Open with ``AudioReader(path)`` (or as a context manager); :attr:`info` holds the
    header. :meth:`blocks` yields ``(channels, n)`` float32 arrays and raises
    :class:`AudioFileError` on a decode error, on NaN/Inf samples, or when fewer frames
    decode than the header claims (a truncated file).

    Decoding goes through soundfile (libsndfile); files libsndfile does not recognise
    are tried with ``pedalboard.io.AudioFile``.

    Raises:
        AudioFileError: missing or empty file, not an audio file, unsupported sample
            rate (outside 8-192 kHz), zero frames, or a header that says the data
            chunk is longer than the file (a truncated WAV/AIFF).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        _check_path(self.path)
        self._sf: sf.SoundFile | None = None
        self._pb = None
        try:
            self._sf = sf.SoundFile(str(self.path))
        except (sf.LibsndfileError, RuntimeError) as sf_exc:
            self._pb = self._open_pedalboard(sf_exc)
        try:
            self.info = self._make_info()
            _check_header(self.path, self.info.sample_rate, self.info.channels, self.info.frames)
            if self._sf is not None and _header_promises_more(self._sf.extra_info):
                raise AudioFileError(
                    self.path, "file is truncated (the header promises more audio data than the file holds)"
                )
        except BaseException:
            self.close()
            raise

    def _open_pedalboard(self, sf_exc: Exception):
        try:
            from pedalboard.io import AudioFile

            return AudioFile(str(self.path))
        except Exception as pb_exc:  # pedalboard raises ValueError/RuntimeError/ImportError
            detail = str(sf_exc).split(":")[-1].strip() or str(pb_exc)
            raise AudioFileError(self.path, f"not a recognised audio file ({detail})") from sf_exc

    def _make_info(self) -> AudioInfo:
        if self._sf is not None:
            f = self._sf
            return AudioInfo(self.path, int(f.samplerate), int(f.channels), int(f.frames), f.format, f.subtype, "soundfile")
        a = self._pb
        return AudioInfo(
            self.path, int(round(a.samplerate)), int(a.num_channels), int(a.frames),
            self.path.suffix.lstrip(".").upper(), "", "pedalboard",
        )

    # -- context manager
    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the file handle (idempotent)."""
        if self._sf is not None:
            self._sf.close()
            self._sf = None
        if self._pb is not None:
            self._pb.close()
            self._pb = None

    def _read(self, n: int) -> np.ndarray:
        if self._sf is not None:
            return self._sf.read(n, dtype="float32", always_2d=True).T
        block = self._pb.read(n)
        return np.asarray(block, dtype=np.float32).reshape(self.info.channels, -1)

    def blocks(self, block_frames: int = DEFAULT_BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """Yield the whole file as consecutive ``(channels, n)`` float32 blocks.

        Each block is a new array (``n <= block_frames``; only the last may be shorter).
        Validation happens while reading, so a bad file raises part-way through;
        callers that write somewhere must clean up on error.

        Raises:
            AudioFileError: decode error mid-stream, NaN/Inf samples, or truncation
                (fewer frames than the header's count).
        """
        done = 0
        while True:
            try:
                block = self._read(block_frames)
            except Exception as exc:  # libsndfile / pedalboard decode errors
                raise AudioFileError(
                    self.path,
                    f"decode error after {done} frames ({exc}); the file is truncated or damaged",
                ) from exc
            n = block.shape[1]
            if n == 0:
                break
            check_finite(block, self.info.sample_rate, path=self.path, first_frame=done)
            done += n
            yield block
            if self._pb is not None and n < block_frames:
                break
        self._check_length(done)

    def _check_length(self, decoded: int) -> None:
        expected = self.info.frames
        if decoded == 0:
            raise AudioFileError(self.path, "holds no audio (0 frames decoded)")
        fmt = self.info.format
        if self.info.backend == "soundfile" and fmt in _LOSSLESS_FORMATS:
            tolerance = 0
        elif fmt == "MP3":
            tolerance = _MP3_TOLERANCE_FRAMES
        else:  # OGG/Opus page granules, pedalboard estimates: no reliable promise
            return
        if decoded + tolerance < expected:
            raise AudioFileError(
                self.path,
                f"file is truncated: {decoded} of {expected} frames decode "
                f"({decoded / self.info.sample_rate:.2f} s of {expected / self.info.sample_rate:.2f} s)",
            )


def audio_info(path: str | Path) -> AudioInfo:
    """Read a file's header without decoding the audio.

    Args:
        path: any file soundfile or pedalboard.io can open.

    Returns:
        :class:`AudioInfo` (sample rate in Hz, channels, frames, format, subtype).

    Raises:
        AudioFileError: missing/empty/non-audio file, sample rate outside 8-192 kHz,
            zero frames, or a WAV/AIFF header promising more data than the file holds.
    """
    with AudioReader(path) as reader:
        return reader.info


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a whole file into memory, fully validated.

    Args:
        path: WAV, RF64, AIFF, FLAC, OGG Vorbis, Opus, MP3 (anything libsndfile or
            pedalboard.io decodes).

    Returns:
        ``(audio, sample_rate)``: ``audio`` is float32 ``(channels, frames)`` in
        [-1, 1] for integer sources, ``sample_rate`` in Hz. Any channel count is
        returned; the media pool decides what to accept.

    Raises:
        AudioFileError: see :class:`AudioReader` (missing, empty, not audio, bad sample
            rate, truncated, decode error, NaN/Inf).
    """
    with AudioReader(path) as reader:
        blocks = list(reader.blocks())
        sample_rate = reader.info.sample_rate
    audio = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)
    return np.ascontiguousarray(audio, dtype=np.float32), sample_rate


# ----------------------------------------------------------------------------- validation
def check_finite(audio: np.ndarray, sample_rate: int, *, path: str | Path = "<array>", first_frame: int = 0) -> None:
    """Raise if ``audio`` holds NaN or infinite samples.

    Args:
        audio: ``(channels, frames)`` float array.
        sample_rate: Hz, for the position in the message.
        path: the file (or a name) the audio comes from, for the message.
        first_frame: frame index of ``audio[:, 0]`` within the file.

    Raises:
        AudioFileError: naming ``path`` and the first bad frame (and its time).
    """
    if audio.size == 0:
        return
    # min/max propagate NaN and expose +-inf: two fast SIMD reductions, no temporaries.
    if np.isfinite(audio.min()) and np.isfinite(audio.max()):
        return
    bad = np.flatnonzero(~np.isfinite(audio).all(axis=0))
    frame = first_frame + int(bad[0])
    raise AudioFileError(
        path,
        f"contains NaN or infinite samples ({bad.size} bad frame(s) in this stretch, "
        f"first at frame {frame}, {frame / sample_rate:.3f} s)",
    )


# ----------------------------------------------------------------------------- downmix
_G = float(np.sqrt(0.5))  # -3 dB
# ITU-R BS.775 / ATSC A/52 "LoRo" coefficients for the WAVE_FORMAT_EXTENSIBLE default
# channel orders; each row is (left gains, right gains) per input channel.
_ITU_MATRICES: dict[int, tuple[tuple[float, ...], tuple[float, ...]]] = {
    3: ((1, 0, _G), (0, 1, _G)),  # L R C
    4: ((1, 0, _G, 0), (0, 1, 0, _G)),  # L R Ls Rs (quad)
    5: ((1, 0, _G, _G, 0), (0, 1, _G, 0, _G)),  # L R C Ls Rs
    6: ((1, 0, _G, 0, _G, 0), (0, 1, _G, 0, 0, _G)),  # L R C LFE Ls Rs (5.1, LFE dropped)
    7: ((1, 0, _G, 0, 0.5, _G, 0), (0, 1, _G, 0, 0.5, 0, _G)),  # L R C LFE Cs Ls Rs (6.1)
    8: ((1, 0, _G, 0, _G, 0, _G, 0), (0, 1, _G, 0, 0, _G, 0, _G)),  # L R C LFE Lb Rb Ls Rs (7.1)
}


def downmix_matrix(channels: int) -> np.ndarray:
    """The ``(2, channels)`` gain matrix :func:`downmix_to_stereo` applies.

    3 to 8 channels: ITU-R BS.775 coefficients (centre and surrounds at -3 dB, LFE
    dropped) in the standard WAV channel order (L R C LFE Ls Rs ...); each output row
    is then normalised to sum to 1 (as FFmpeg's libswresample does), so full-scale
    input never exceeds full scale. More than 8 channels: an equal-weight mono mix
    (each channel at ``1/channels``) to both sides, since no layout is known.

    Raises:
        ValueError: ``channels`` < 3.
    """
    if channels < 3:
        raise ValueError(f"downmix needs 3 or more channels, got {channels}")
    if channels in _ITU_MATRICES:
        m = np.asarray(_ITU_MATRICES[channels], dtype=np.float64)
        m /= m.sum(axis=1, keepdims=True)
    else:
        m = np.full((2, channels), 1.0 / channels)
    return m.astype(np.float32)


def downmix_to_stereo(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mix ``(channels, frames)`` audio with 3+ channels down to ``(2, frames)`` float32.

    See :func:`downmix_matrix` for the coefficients (ITU-R BS.775 for 3-8 channels,
    normalised; equal weight above). Mono and stereo pass through unchanged.

    Args:
        audio: ``(channels, frames)`` float32.
        sample_rate: Hz (unused by the maths; part of the audio convention).
    """
    del sample_rate
    if audio.shape[0] <= 2:
        return audio
    return (downmix_matrix(audio.shape[0]) @ audio).astype(np.float32, copy=False)


# ----------------------------------------------------------------------------- resampling
def resampled_length(frames: int, sr_in: int, sr_out: int) -> int:
    """Frames after resampling: ``round(frames * sr_out / sr_in)`` (half up), exact integer maths."""
    return (2 * frames * sr_out + sr_in) // (2 * sr_in)


def _fit_length(audio: np.ndarray, frames: int) -> np.ndarray:
    if audio.shape[1] == frames:
        return audio
    if audio.shape[1] > frames:
        return audio[:, :frames]
    return np.pad(audio, ((0, 0), (0, frames - audio.shape[1])))


def resample(audio: np.ndarray, sr_in: int, sr_out: int, *, quality: str = "VHQ") -> np.ndarray:
    """Resample ``(channels, frames)`` audio with libsoxr.

    Method: libsoxr via python-soxr (``soxr.resample``), "VHQ" preset by default
    (linear phase, ~170 dB stop band). The output has exactly
    :func:`resampled_length` frames, trimmed or zero-padded by at most a sample.

    Args:
        audio: ``(channels, frames)`` float array.
        sr_in: its sample rate, Hz.
        sr_out: the wanted sample rate, Hz.
        quality: soxr preset ("VHQ", "HQ", "MQ", "LQ", "QQ").

    Returns:
        float32 ``(channels, round(frames * sr_out / sr_in))``; the input itself
        (as float32) when the rates are equal.

    Raises:
        ValueError: non-2-D audio or non-positive rates.
    """
    if audio.ndim != 2:
        raise ValueError(f"audio must be (channels, frames), got shape {audio.shape}")
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    audio = np.asarray(audio, dtype=np.float32)
    if sr_in == sr_out:
        return audio
    out_frames = resampled_length(audio.shape[1], sr_in, sr_out)
    if audio.shape[1] == 0:
        return np.zeros((audio.shape[0], 0), np.float32)
    y = soxr.resample(np.ascontiguousarray(audio.T), sr_in, sr_out, quality=quality)
    return _fit_length(np.asarray(y, dtype=np.float32).reshape(-1, audio.shape[0]).T, out_frames)


class StreamResampler:
    """Block-wise resampling with the same result length as :func:`resample`.

    Wraps ``soxr.ResampleStream`` (libsoxr, "VHQ" by default). Feed consecutive
    ``(channels, n)`` blocks to :meth:`process`, then call :meth:`finish` once; the
    concatenated outputs hold exactly ``round(total_in * sr_out / sr_in)`` frames.
    Passes blocks through untouched when the rates are equal.
    """

    def __init__(self, sr_in: int, sr_out: int, channels: int, *, quality: str = "VHQ"):
        if sr_in <= 0 or sr_out <= 0:
            raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
        self.sr_in, self.sr_out, self.channels = sr_in, sr_out, channels
        self._stream = None if sr_in == sr_out else soxr.ResampleStream(sr_in, sr_out, channels, dtype="float32", quality=quality)
        self._in = 0
        self._out = 0
        self._held: np.ndarray | None = None  # newest output, kept back so the end can be trimmed

    def process(self, block: np.ndarray) -> np.ndarray:
        """Resample one ``(channels, n)`` block; returns ``(channels, m)`` float32 (m may be 0)."""
        self._in += block.shape[1]
        if self._stream is None:
            self._out += block.shape[1]
            return block
        y = self._stream.resample_chunk(np.ascontiguousarray(block.T, dtype=np.float32), last=False)
        y = np.asarray(y, dtype=np.float32).reshape(-1, self.channels).T
        ready, self._held = self._held, y
        if ready is None:
            return np.zeros((self.channels, 0), np.float32)
        self._out += ready.shape[1]
        return ready

    def finish(self) -> np.ndarray:
        """Flush the filter; returns the last ``(channels, m)`` block, fitted to the exact length."""
        if self._stream is None:
            return np.zeros((self.channels, 0), np.float32)
        tail = self._stream.resample_chunk(np.zeros((0, self.channels), np.float32), last=True)
        tail = np.asarray(tail, dtype=np.float32).reshape(-1, self.channels).T
        parts = [p for p in (self._held, tail) if p is not None]
        rest = np.concatenate(parts, axis=1) if parts else np.zeros((self.channels, 0), np.float32)
        self._held = None
        want = max(0, resampled_length(self._in, self.sr_in, self.sr_out) - self._out)
        rest = _fit_length(rest, want)
        self._out += rest.shape[1]
        return rest


# ----------------------------------------------------------------------------- writing
_FORMAT_BY_SUFFIX = {".wav": "WAV", ".wave": "WAV", ".rf64": "RF64", ".flac": "FLAC", ".aif": "AIFF", ".aiff": "AIFF"}


def open_wav_writer(path: str | Path, sample_rate: int, channels: int, subtype: str, frames_hint: int) -> sf.SoundFile:
    """Open a WAV for writing: RF64 when ``frames_hint`` frames would pass the 4 GiB RIFF limit.

    The PEAK chunk libsndfile adds to float WAVs is switched off, so identical audio
    gives identical bytes (needed for content addressing).
    """
    bytes_per_sample = {"PCM_16": 2, "PCM_24": 3, "FLOAT": 4}[subtype]
    fmt = "RF64" if frames_hint * channels * bytes_per_sample > _WAV_LIMIT_BYTES else "WAV"
    f = sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=channels, subtype=subtype, format=fmt)
    from soundfile import _ffi, _snd  # libsndfile command interface, stable since soundfile 0.9

    _snd.sf_command(f._file, _SFC_SET_ADD_PEAK_CHUNK, _ffi.NULL, 0)  # returns the new state; 0 = off
    return f


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_24") -> None:
    """Write ``(channels, frames)`` audio to WAV, FLAC or AIFF atomically.

    The container comes from the extension (``.wav``, ``.flac``, ``.aif``/``.aiff``,
    ``.rf64``); a WAV whose data would pass 4 GiB is written as RF64. Integer
    subtypes clip to [-1, 1) as libsndfile does. The write goes to a temp file in the
    same folder, is fsynced and renamed over ``path``.

    Args:
        path: destination file.
        audio: float ``(channels, frames)``; 1-D is taken as mono.
        sample_rate: Hz.
        subtype: ``"PCM_16"``, ``"PCM_24"`` (default) or ``"FLOAT"`` (32-bit float;
            not for FLAC).

    Raises:
        ValueError: bad shape, subtype, extension or sample rate, or NaN/Inf samples.
    """
    path = Path(path)
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.ndim != 2 or audio.shape[0] < 1:
        raise ValueError(f"audio must be (channels, frames), got shape {audio.shape}")
    if subtype not in WRITE_SUBTYPES:
        raise ValueError(f"subtype must be one of {WRITE_SUBTYPES}, got {subtype!r}")
    fmt = _FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: can't tell the format from the extension (use .wav, .flac or .aiff)")
    if fmt == "FLAC" and subtype == "FLOAT":
        raise ValueError(f"{path}: FLAC stores integer PCM only; use PCM_16 or PCM_24")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample rate must be a positive integer, got {sample_rate}")
    try:
        check_finite(audio, int(sample_rate), path=path)
    except AudioFileError as exc:
        raise ValueError(str(exc)) from None
    channels, frames = audio.shape
    with atomic_output(path) as tmp:
        if fmt in ("WAV", "RF64"):
            out = open_wav_writer(tmp, int(sample_rate), channels, subtype, frames if fmt == "WAV" else 1 << 62)
        else:
            out = sf.SoundFile(str(tmp), "w", samplerate=int(sample_rate), channels=channels, subtype=subtype, format=fmt)
        with out:
            for a in range(0, frames, DEFAULT_BLOCK_FRAMES):
                out.write(np.ascontiguousarray(audio[:, a : a + DEFAULT_BLOCK_FRAMES].T))


def check_output_path(path: str | Path, subtype: str = "PCM_24") -> str:
    """Check an audio output path before any work: its folder exists, it is not a folder,
    its extension names a format :func:`write_audio` writes, and the format holds ``subtype``.

    Returns:
        The container (``"WAV"``, ``"RF64"``, ``"FLAC"``, ``"AIFF"``).

    Raises:
        ValueError: naming the path and the problem in plain words.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"'{path}' is a folder; give a file name")
    fmt = _FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"'{path}': can't write '{path.suffix or '(no extension)'}' files; "
                         "use .wav, .flac or .aiff")
    if subtype not in WRITE_SUBTYPES:
        raise ValueError(f"'{path}': sample format must be one of {WRITE_SUBTYPES}, got {subtype!r}")
    if fmt == "FLAC" and subtype == "FLOAT":
        raise ValueError(f"'{path}': FLAC stores integer PCM only; use 16 or 24 bits, or a .wav file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"'{path}': the folder '{parent}' does not exist")
    return fmt


def write_audio_blocks(path: str | Path, blocks: Iterable[np.ndarray], sample_rate: int, channels: int,
                       frames: int, subtype: str = "PCM_24") -> int:
    """Stream ``(channels, n)`` float blocks into a WAV/FLAC/AIFF file atomically (memory stays
    bounded however long the audio is).

    Args:
        path: destination (format from the extension, see :func:`check_output_path`).
        blocks: consecutive blocks; NaN/Inf samples are refused.
        sample_rate: Hz. channels: 1 or 2. frames: expected total (a WAV past 4 GiB becomes RF64).
        subtype: ``"PCM_16"``, ``"PCM_24"`` or ``"FLOAT"``.

    Returns:
        Frames written.

    Raises:
        ValueError: bad path/format (see :func:`check_output_path`) or NaN/Inf samples.
        engines.files.DiskFullError: the disk filled up; ``path`` is untouched.
        OSError: other file-system errors; ``path`` is untouched.
    """
    path = Path(path)
    fmt = check_output_path(path, subtype)
    written = 0
    with atomic_output(path) as tmp:
        if fmt in ("WAV", "RF64"):
            out = open_wav_writer(tmp, int(sample_rate), channels, subtype, frames if fmt == "WAV" else 1 << 62)
        else:
            out = sf.SoundFile(str(tmp), "w", samplerate=int(sample_rate), channels=channels, subtype=subtype,
                               format=fmt)
        with out:
            for block in blocks:
                block = np.asarray(block, dtype=np.float32)
                try:
                    check_finite(block, int(sample_rate), path=path, first_frame=written)
                except AudioFileError as exc:
                    raise ValueError(str(exc)) from None
                out.write(np.ascontiguousarray(block.T))
                written += block.shape[1]
    return written


# ----------------------------------------------------------------------------- hashing
def file_sha256(path: str | Path, progress: Callable[[int], None] | None = None) -> str:
    """sha256 hex digest of a file's bytes (hashlib, streamed in 1 MiB chunks).

    Args:
        path: the file.
        progress: optional callback with the bytes hashed so far.

    Raises:
        AudioFileError: the file can't be read.
    """
    from engines.files import sha256_file

    try:
        return sha256_file(path, progress=progress)
    except OSError as exc:
        raise AudioFileError(path, f"can't be read ({exc.strerror})") from exc
