"""Audio references of jobs: inputs as files or arrays, outputs written as float WAV."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engines.base.errors import InvalidJob
from engines.files import atomic_output, sha256_bytes, sha256_file

# --------------------------------------------------------------------------- audio helpers

def _encode_audio(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__array__": value.astype(np.float32).tolist()}
    if isinstance(value, Path):
        return str(value)
    return value


def _decode_audio(value: Any) -> Any:
    if isinstance(value, dict) and "__array__" in value:
        return np.asarray(value["__array__"], dtype=np.float32)
    return value


def load_audio(ref: str | Path | np.ndarray, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read an input audio reference into ``((channels, frames) float32, sample_rate)``.

    Args:
        ref: a path to an audio file (read with soundfile) or an array; 1-D arrays
            become one channel.
        sample_rate: required when ``ref`` is an array; for files, the file's rate wins.

    Raises:
        InvalidJob: missing file, unreadable file, or an array without a sample rate.
    """
    if isinstance(ref, np.ndarray):
        if sample_rate is None:
            raise InvalidJob("input audio array has no sample rate")
        a = np.asarray(ref, dtype=np.float32)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2:
            raise InvalidJob(f"input audio must be (channels, frames), got shape {a.shape}")
        return a, int(sample_rate)
    import soundfile as sf

    path = Path(ref)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types
        raise InvalidJob(f"input audio file '{path}': can't be read ({exc})") from exc
    return np.ascontiguousarray(data.T), int(sr)


def write_output(audio: np.ndarray, sample_rate: int, directory: str | Path, name: str) -> str:
    """Write one output as a 32-bit float WAV ``directory/name.wav`` and return its path.

    Engines use this when ``JobSpec.output_dir`` is set, so that results cross the
    process boundary as files. Float WAV keeps the samples bit-exact. The file is
    written to a temp name and renamed, so a killed job never leaves a truncated output.

    Args:
        audio: float32 ``(channels, frames)``.
        sample_rate: Hz.
    """
    import soundfile as sf

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.wav"
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    with atomic_output(path) as tmp:
        sf.write(str(tmp), a.T, int(sample_rate), subtype="FLOAT", format="WAV")
    return str(path)


def sha256_audio(ref: str | Path | np.ndarray) -> str:
    """Hex sha256 of an input: the file's bytes, or the float32 array's bytes."""
    if isinstance(ref, np.ndarray):
        return sha256_bytes(np.ascontiguousarray(ref, dtype=np.float32).tobytes())
    return sha256_file(ref)


