"""Device and dtype policy: CUDA, then MPS, then CPU, with overrides.

Order of precedence for the device: the job's ``device`` field, then the environment
variable ``SEED_STUDIO_DEVICE``, then the first available of CUDA, MPS, CPU that the
engine supports. For the dtype: the job's ``dtype`` field, then bf16 on CUDA devices
that support it, fp16 on other GPUs, float32 on CPU, limited to the dtypes the engine
declares (``Engine.dtypes``). The chosen device and dtype go into provenance.

torch is imported only when a GPU could be chosen; CPU-only engines never import it.
"""
from __future__ import annotations

import os
import sys
from typing import Any

from engines.base import InvalidJob

ENV_DEVICE = "SEED_STUDIO_DEVICE"

GPU_KINDS = ("cuda", "mps")


def _torch() -> Any | None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return None
    return torch


def available_devices() -> list[str]:
    """Devices usable here, best first, e.g. ``["cuda:0", "cpu"]`` (imports torch)."""
    out: list[str] = []
    torch = _torch()
    if torch is not None:
        if torch.cuda.is_available():
            out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            out.append("mps")
    out.append("cpu")
    return out


def _kind(device: str) -> str:
    return device.split(":", 1)[0]


def choose_device(override: str | None = None, supported: tuple[str, ...] = ("cuda", "mps", "cpu")) -> str:
    """Pick the device for a job.

    Args:
        override: the job's device ("cpu", "cuda", "cuda:1", "mps") or None.
        supported: device kinds the engine can use (``("cpu",)`` for CPU-only engines:
            then torch is not imported).

    Returns:
        A device string such as ``"cuda:0"``, ``"mps"`` or ``"cpu"``.

    Raises:
        InvalidJob: the requested device is unknown, not supported by the engine, or
            not available on this machine.
    """
    wanted = override or os.environ.get(ENV_DEVICE) or None
    if wanted:
        wanted = wanted.strip().lower()
        if wanted == "auto":
            wanted = None
    if wanted:
        kind = _kind(wanted)
        if kind not in ("cuda", "mps", "cpu"):
            raise InvalidJob(f"unknown device {wanted!r}", "use cpu, cuda, cuda:N or mps")
        if kind not in supported:
            raise InvalidJob(f"this engine can't run on {wanted!r}", f"it supports: {', '.join(supported)}")
        if kind == "cpu":
            return "cpu"
        avail = available_devices()
        if kind == "cuda" and wanted == "cuda":
            wanted = "cuda:0"
        if wanted not in avail:
            raise InvalidJob(
                f"device {wanted!r} is not available on this machine",
                f"available: {', '.join(avail)}; unset {ENV_DEVICE} or choose another device",
            )
        return wanted
    if not any(k in supported for k in GPU_KINDS):
        return "cpu"
    for dev in available_devices():
        if _kind(dev) in supported:
            return dev
    return "cpu"


def choose_dtype(device: str, supported: tuple[str, ...] = ("float32",), override: str | None = None) -> str:
    """Pick the compute dtype for a job on ``device``.

    Args:
        device: from :func:`choose_device`.
        supported: dtypes the engine can run in (``Engine.dtypes``).
        override: the job's dtype or None.

    Returns:
        ``"bfloat16"``, ``"float16"`` or ``"float32"``.

    Raises:
        InvalidJob: ``override`` is not among ``supported``.
    """
    if override:
        if override not in supported and override != "float32":
            raise InvalidJob(f"this engine can't run in {override}", f"it supports: {', '.join(supported)}")
        return override
    kind = _kind(device)
    if kind == "cuda":
        torch = _torch()
        if "bfloat16" in supported and torch is not None and torch.cuda.is_bf16_supported():
            return "bfloat16"
        if "float16" in supported:
            return "float16"
    elif kind == "mps" and "float16" in supported:
        return "float16"
    return "float32"


def torch_dtype(name: str) -> Any:
    """``"bfloat16"`` -> ``torch.bfloat16`` (imports torch).

    Raises:
        InvalidJob: unknown dtype name.
    """
    import torch

    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise InvalidJob(f"unknown dtype {name!r}", "use float32, bfloat16 or float16") from None


def free_memory(device: str) -> int | None:
    """Free bytes on ``device`` (CUDA: ``torch.cuda.mem_get_info``; CPU: MemAvailable
    from /proc/meminfo), or None when unknown."""
    if _kind(device) == "cuda":
        torch = sys.modules.get("torch")
        if torch is None:
            return None
        try:
            free, _total = torch.cuda.mem_get_info(torch.device(device))
            return int(free)
        except Exception:
            return None
    if _kind(device) == "cpu":
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


def empty_cache(device: str) -> None:
    """Return cached allocator memory to the device (after an OOM or an unload)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if _kind(device) == "cuda" and torch.cuda.is_available():
            torch.cuda.empty_cache()
        elif _kind(device) == "mps" and hasattr(torch, "mps"):
            torch.mps.empty_cache()
    except Exception:  # pragma: no cover - best effort
        pass
