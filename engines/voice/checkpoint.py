"""Safe loading of RVC voice models (``.pth``).

Shared ``.pth`` files are Python pickles, and a pickle can run code when it is loaded
(RVC issue #2807 and so-vits-svc-fork #193 are remote-code-execution reports). Voice
models are therefore read only with ``torch.load(weights_only=True)``: torch's restricted
unpickler accepts tensors, plain containers, numbers and strings and refuses every other
global (functions, classes), before anything runs. A refused file raises
:class:`VoiceModelError`.

A checkpoint as RVC's trainer writes it (``train/process_ckpt.py``)::

    {"weight": {name: fp16 tensor, ...},   # net_g.state_dict() without enc_q.*
     "config": [spec_channels, segment_size, inter_channels, hidden_channels,
                filter_channels, n_heads, n_layers, kernel_size, p_dropout, resblock,
                resblock_kernel_sizes, resblock_dilation_sizes, upsample_rates,
                upsample_initial_channel, upsample_kernel_sizes, spk_embed_dim,
                gin_channels, sampling_rate],
     "info": "300epoch", "sr": "40k", "f0": 1, "version": "v2"}

Accepted variants: ``sr`` as "32k"/"40k"/"48k" or an int (Hz), or missing (then the
config's last value); ``version`` missing = "v1"; ``f0`` missing = 1; any key order;
``enc_q.*`` weights present or not (they are dropped); extra metadata keys (forks add
author, hashes...). The speaker count is taken from ``emb_g.weight`` (RVC overwrites the
config's value the same way). Refused: models without pitch guidance (``f0`` = 0),
other vocoders (``"vocoder"`` other than HiFi-GAN, e.g. RefineGAN or MRF HiFi-GAN from
Applio) and other embedders (``"embedder_model"`` other than ContentVec), configs that
are not RVC's 18-value list, and weights that don't match the architecture exactly
(``load_state_dict(strict=True)``).
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.base.errors import InvalidJob, register_error_type

__all__ = ["VoiceModelError", "RvcCheckpoint", "read_checkpoint", "build_synthesizer", "load_voice",
           "VoiceInfo", "voice_info"]

_SR_NAMES = {"32k": 32000, "40k": 40000, "48k": 48000}
_HIFIGAN_NAMES = {"hifi-gan", "hifigan", "hifi_gan", "nsf-hifigan", "nsf-hifi-gan"}
_CONTENTVEC_NAMES = {"contentvec", "content-vec", "content_vec", "hubert", "hubert_base", "contentvec_base"}
MAX_VOICE_BYTES = 2 * 1024 ** 3
"""Files bigger than this (2 GiB) are refused before reading; real voices are ~55 MB fp16."""


@register_error_type
class VoiceModelError(InvalidJob):
    """A voice model file can't be used: unsafe pickle, unreadable, or not an RVC model we support."""

    default_hint = "use an RVC v1 or v2 voice model (.pth) with pitch guidance, from a source you trust"


@dataclass
class RvcCheckpoint:
    """A validated RVC checkpoint, not yet built.

    Attributes:
        weights: parameter name -> tensor (``enc_q.*`` removed), as stored (usually fp16).
        config: the 18 constructor values, speaker count set from ``emb_g.weight``.
        version: "v1" (256-d features) or "v2" (768-d).
        sample_rate: model sample rate in Hz (32000, 40000 or 48000).
        n_speakers: rows of ``emb_g.weight``.
        info: the checkpoint's free-text ``info`` (e.g. "300epoch"), or "".
        metadata: the other JSON-able top-level values (str, int, float, bool).
    """

    weights: dict[str, Any]
    config: list[Any]
    version: str
    sample_rate: int
    n_speakers: int
    info: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_dim(self) -> int:
        """Content feature size: 256 (v1) or 768 (v2)."""
        return 768 if self.version == "v2" else 256

    @property
    def hop(self) -> int:
        """Output samples per 10 ms frame at :attr:`sample_rate`."""
        n = 1
        for u in self.config[12]:
            n *= int(u)
        return n


@dataclass(frozen=True)
class VoiceInfo:
    """What the voices library shows about a voice model (no torch objects).

    Attributes:
        version: "v1" or "v2". sample_rate: Hz. n_speakers: speaker count.
        info: the checkpoint's ``info`` text. parameters: number of weights.
    """

    version: str
    sample_rate: int
    n_speakers: int
    info: str
    parameters: int


def _safe_torch_load(path: Path) -> Any:
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if found or "Unsupported class" in text:
            what = f" ({found.group(1)})" if found else ""
            raise VoiceModelError(
                f"the voice model '{path.name}' was refused: it holds Python code or objects{what}, not just weights "
                f"(such a pickle can run code when loaded); nothing in it was run",
                "only use voice models from sources you trust; ask for a .pth saved by RVC itself",
            ) from exc
        raise VoiceModelError(f"the voice model '{path.name}' is not a readable PyTorch file "
                              f"({_short(exc.__cause__ or exc) if 'WeightsUnpickler' not in text else 'bad pickle data'})",
                              "the file may be damaged or not a voice model") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise VoiceModelError(f"the voice model '{path.name}' can't be read ({_short(exc)})",
                              "the file may be truncated or not a PyTorch file") from exc
    except Exception as exc:  # the restricted unpickler on garbage (KeyError, IndexError...): nothing ran
        raise VoiceModelError(f"the voice model '{path.name}' is not a readable PyTorch file (bad pickle data)",
                              "the file may be damaged or not a voice model") from exc


def _short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    first = lines[0]
    end = first.find(". ")
    return (first[:end] if end > 0 else first)[:200]


def _as_int(value: Any, what: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise VoiceModelError(f"the voice model '{name}' has an invalid {what}: {value!r}")
    return int(value)


def _int_list(value: Any, what: str, name: str) -> list[int]:
    if not isinstance(value, (list, tuple)) or not value:
        raise VoiceModelError(f"the voice model '{name}' has an invalid {what}: {value!r}")
    return [_as_int(v, what, name) for v in value]


def _check_config(cfg: Any, name: str) -> list[Any]:
    if isinstance(cfg, tuple):
        cfg = list(cfg)
    if not isinstance(cfg, list) or len(cfg) != 18:
        raise VoiceModelError(
            f"the voice model '{name}' has no RVC 'config' list of 18 values "
            f"(got {type(cfg).__name__}{' of ' + str(len(cfg)) if isinstance(cfg, (list, tuple)) else ''})",
            "this is not an RVC voice model, or it comes from a fork with another architecture")
    out = list(cfg)
    for i in (0, 1, 2, 3, 4, 5, 6, 7, 13, 15, 16):
        out[i] = _as_int(cfg[i], f"config value #{i}", name)
    if not isinstance(cfg[8], (int, float)):
        raise VoiceModelError(f"the voice model '{name}' has an invalid dropout value {cfg[8]!r}")
    out[9] = str(cfg[9])
    if out[9] not in ("1", "2"):
        raise VoiceModelError(f"the voice model '{name}' has an unknown resblock type {cfg[9]!r}")
    out[10] = _int_list(cfg[10], "resblock kernel sizes", name)
    if not isinstance(cfg[11], (list, tuple)) or len(cfg[11]) != len(out[10]):
        raise VoiceModelError(f"the voice model '{name}' has invalid resblock dilations {cfg[11]!r}")
    out[11] = [_int_list(d, "resblock dilations", name) for d in cfg[11]]
    out[12] = _int_list(cfg[12], "upsample rates", name)
    out[14] = _int_list(cfg[14], "upsample kernel sizes", name)
    if len(out[14]) != len(out[12]):
        raise VoiceModelError(f"the voice model '{name}' has {len(out[12])} upsample rates but "
                              f"{len(out[14])} kernel sizes")
    sr = cfg[17]
    out[17] = _SR_NAMES[sr] if isinstance(sr, str) and sr in _SR_NAMES else _as_int(sr, "sample rate", name)
    return out


def read_checkpoint(path: str | os.PathLike) -> RvcCheckpoint:
    """Read and validate an RVC voice model file, safely.

    Args:
        path: the ``.pth`` file.

    Returns:
        :class:`RvcCheckpoint` (weights still as stored; nothing built).

    Raises:
        VoiceModelError: missing, too big, unreadable or truncated file; a pickle that
            holds anything but weights (refused before any of it runs); not an RVC
            checkpoint; no pitch guidance; another vocoder or embedder; a sample rate
            that disagrees with the config's upsampling.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise VoiceModelError(f"the voice model '{path}' does not exist", "check the path")
    if path.stat().st_size > MAX_VOICE_BYTES:
        raise VoiceModelError(f"the voice model '{name}' is {path.stat().st_size} bytes, too big for an RVC voice")
    ckpt = _safe_torch_load(path)
    if not isinstance(ckpt, dict):
        raise VoiceModelError(f"the voice model '{name}' is not an RVC checkpoint (top level is "
                              f"{type(ckpt).__name__}, not a dict)")
    if "weight" not in ckpt or "config" not in ckpt:
        if "model" in ckpt or "state_dict" in ckpt:
            raise VoiceModelError(f"'{name}' looks like a training checkpoint (G_*.pth), not an exported voice",
                                  "use the small voice .pth that RVC writes into its weights folder")
        raise VoiceModelError(f"the voice model '{name}' is not an RVC checkpoint (no 'weight' and 'config')")
    import torch

    weights = ckpt["weight"]
    if not isinstance(weights, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in weights.items()):
        raise VoiceModelError(f"the voice model '{name}' has a 'weight' entry that is not a dict of tensors")
    vocoder = ckpt.get("vocoder")
    if vocoder is not None and str(vocoder).strip().lower() not in _HIFIGAN_NAMES:
        raise VoiceModelError(f"the voice model '{name}' uses the {vocoder!r} vocoder; only RVC's NSF-HiFiGAN "
                              "is supported", "choose a voice trained with the HiFi-GAN vocoder")
    embedder = ckpt.get("embedder_model")
    if embedder is not None and str(embedder).strip().lower() not in _CONTENTVEC_NAMES:
        raise VoiceModelError(f"the voice model '{name}' was trained on {embedder!r} features; only ContentVec "
                              "features are supported", "choose a voice trained with the ContentVec embedder")
    f0 = ckpt.get("f0", 1)
    if _as_int(f0, "'f0' flag", name) != 1:
        raise VoiceModelError(f"the voice model '{name}' has no pitch guidance (f0 = {f0}); only voices trained "
                              "with pitch guidance are supported", "retrain or choose a voice with pitch guidance")
    version = ckpt.get("version", "v1")
    if version not in ("v1", "v2"):
        raise VoiceModelError(f"the voice model '{name}' has an unknown RVC version {version!r}")
    config = _check_config(ckpt["config"], name)
    sr = ckpt.get("sr")
    if sr is not None:
        sr_hz = _SR_NAMES.get(sr) if isinstance(sr, str) else (_as_int(sr, "sample rate", name))
        if sr_hz is None:
            raise VoiceModelError(f"the voice model '{name}' has an unknown sample rate {sr!r}")
        if sr_hz != config[17]:
            raise VoiceModelError(f"the voice model '{name}' says {sr} but its config says {config[17]} Hz")
    sample_rate = config[17]
    hop = 1
    for u in config[12]:
        hop *= u
    if hop * 100 != sample_rate:
        raise VoiceModelError(f"the voice model '{name}' upsamples by {hop}, which does not give 10 ms frames "
                              f"at {sample_rate} Hz")
    weights = {k: v for k, v in weights.items() if not k.startswith("enc_q.")}
    emb = weights.get("emb_g.weight")
    if emb is None or emb.dim() != 2:
        raise VoiceModelError(f"the voice model '{name}' has no speaker embedding (emb_g.weight)")
    config[15] = int(emb.shape[0])
    phone = weights.get("enc_p.emb_phone.weight")
    want = 768 if version == "v2" else 256
    if phone is not None and phone.dim() == 2 and phone.shape[1] != want:
        raise VoiceModelError(f"the voice model '{name}' says {version} ({want}-d features) but its weights take "
                              f"{phone.shape[1]}-d features")
    meta = {k: v for k, v in ckpt.items() if k not in ("weight", "config") and isinstance(v, (str, int, float, bool))}
    return RvcCheckpoint(weights=weights, config=config, version=version, sample_rate=sample_rate,
                         n_speakers=config[15], info=str(ckpt.get("info", "") or ""), metadata=meta)


def build_synthesizer(ckpt: RvcCheckpoint, device: str = "cpu", dtype: str = "float32") -> Any:
    """Build the synthesizer for a checkpoint and load its weights with ``strict=True``.

    Args:
        ckpt: from :func:`read_checkpoint`.
        device: torch device string. dtype: "float32", "float16" or "bfloat16".

    Returns:
        :class:`~engines.voice.rvc_models.SynthesizerTrnMs768NSFsid` (v2) or
        ``...256NSFsid`` (v1) in eval mode.

    Raises:
        VoiceModelError: the weights don't match the architecture (names missing, extra
            or of another shape): the message names the first few.
    """
    import torch

    from engines.voice.rvc_models import SynthesizerTrnMs256NSFsid, SynthesizerTrnMs768NSFsid

    cls = SynthesizerTrnMs768NSFsid if ckpt.version == "v2" else SynthesizerTrnMs256NSFsid
    try:
        with torch.device("meta"):
            net = cls(*ckpt.config)
    except Exception as exc:  # config values that make no network
        raise VoiceModelError(f"the voice model's config can't build an RVC synthesizer ({_short(exc)})") from exc
    expected = net.state_dict()
    missing = [k for k in expected if k not in ckpt.weights]
    extra = [k for k in ckpt.weights if k not in expected]
    shapes = [k for k in expected if k in ckpt.weights and tuple(ckpt.weights[k].shape) != tuple(expected[k].shape)]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:3])}{'...' if len(extra) > 3 else ''}")
        if shapes:
            parts.append(f"wrong shape for {', '.join(shapes[:3])}{'...' if len(shapes) > 3 else ''}")
        raise VoiceModelError(f"the voice model's weights don't fit an RVC {ckpt.version} synthesizer: "
                              + "; ".join(parts))
    net = net.to_empty(device="cpu")
    net.load_state_dict({k: v.float() for k, v in ckpt.weights.items()}, strict=True)
    return net.eval().to(device=device, dtype=getattr(torch, dtype))


def load_voice(path: str | os.PathLike, device: str = "cpu", dtype: str = "float32") -> tuple[Any, RvcCheckpoint]:
    """:func:`read_checkpoint` then :func:`build_synthesizer`. Returns ``(net, checkpoint)``.

    Raises:
        VoiceModelError: see both.
    """
    ckpt = read_checkpoint(path)
    return build_synthesizer(ckpt, device, dtype), ckpt


def voice_info(path: str | os.PathLike) -> VoiceInfo:
    """Validate a voice model completely (safe read, build, strict load) and describe it.

    Raises:
        VoiceModelError: as :func:`load_voice`.
    """
    net, ckpt = load_voice(path)
    n = sum(p.numel() for p in net.parameters())
    return VoiceInfo(version=ckpt.version, sample_rate=ckpt.sample_rate, n_speakers=ckpt.n_speakers,
                     info=ckpt.info, parameters=int(n))
