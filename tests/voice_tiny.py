"""Test material for the voice engine, built on the fly (no downloads, nothing committed).

* :func:`write_checkpoint`: a random-weight RVC voice ``.pth`` in the real schema: the
  full-size config list RVC's trainer writes for 32/40/48 kHz (``configs/v1|v2/*.json`` of
  RVC, ``train/process_ckpt.py``), fp16 weights, ``enc_q`` dropped, metadata keys
  ``info``/``sr``/``f0``/``version``.
* :func:`write_embedder`: a tiny random ContentVec (``HubertModel`` + ``final_proj``) with
  the real 768-d hidden size and the real convolutional front end (strides 5,2,2,2,2,2,2,
  one frame per 320 samples), but 2 layers and narrow convolutions, saved with
  ``save_pretrained`` as a transformers folder.
* :data:`SCHEMA_DIGESTS`: the state-dict schema (sorted ``name:[shape]`` lines, sha256,
  first 16 hex) of RVC's own ``SynthesizerTrnMs768NSFsid``/``256NSFsid`` without ``enc_q``,
  computed from the RVC source (commit 4338f12 of RVC-Project/Retrieval-based-Voice-
  Conversion-WebUI) for each config: the in-project classes must produce the same.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

_MRF = ["1", [3, 7, 11], [[1, 3, 5], [1, 3, 5], [1, 3, 5]]]
CONFIGS: dict[tuple[str, str], list[Any]] = {
    ("v2", "32k"): [513, 32, 192, 192, 768, 2, 6, 3, 0, *_MRF, [10, 8, 2, 2], 512, [20, 16, 4, 4], 109, 256, 32000],
    ("v2", "40k"): [1025, 32, 192, 192, 768, 2, 6, 3, 0, *_MRF, [10, 10, 2, 2], 512, [16, 16, 4, 4], 109, 256, 40000],
    ("v2", "48k"): [1025, 32, 192, 192, 768, 2, 6, 3, 0, *_MRF, [12, 10, 2, 2], 512, [24, 20, 4, 4], 109, 256, 48000],
    ("v1", "32k"): [513, 32, 192, 192, 768, 2, 6, 3, 0, *_MRF, [10, 4, 2, 2, 2], 512, [16, 16, 4, 4, 4], 109, 256,
                    32000],
    ("v1", "40k"): [1025, 32, 192, 192, 768, 2, 6, 3, 0, *_MRF, [10, 10, 2, 2], 512, [16, 16, 4, 4], 109, 256, 40000],
    ("v1", "48k"): [1025, 32, 192, 192, 768, 2, 6, 3, 0, *_MRF, [10, 6, 2, 2, 2], 512, [16, 16, 4, 4, 4], 109, 256,
                    48000],
}
"""The config lists RVC's trainer writes (``[filter_length // 2 + 1, 32, ...model values, sampling_rate]``)."""

SCHEMA_DIGESTS = {
    ("v2", "32k"): (457, "0748027283e20773"),
    ("v2", "40k"): (457, "a2d11a388be52b7e"),
    ("v2", "48k"): (457, "d62c7fe9b415482f"),
    ("v1", "32k"): (516, "082dbcad9d4c68a0"),
    ("v1", "40k"): (457, "637c03fc6095561c"),
    ("v1", "48k"): (516, "4a4468da6c5d24c0"),
}
"""(number of keys, schema digest) of RVC's synthesizer state dicts without ``enc_q``."""


def schema_digest(state: dict[str, Any]) -> tuple[int, str]:
    """``(len, sha256[:16])`` of the sorted ``name:[shape]`` lines of a state dict."""
    text = "\n".join(f"{k}:{list(v.shape)}" for k, v in sorted(state.items()))
    return len(state), hashlib.sha256(text.encode()).hexdigest()[:16]


def random_weights(version: str = "v2", sr: str = "40k", seed: int = 0, n_speakers: int = 4) -> OrderedDict:
    """A random state dict of the real schema (float32), as a freshly initialised model has.

    The decoder's upsampling and MRF convolutions get N(0, 0.01) weights as in RVC's
    ``init_weights``; the rest keeps torch's default init; ``emb_g`` has ``n_speakers`` rows.
    """
    import torch

    from engines.voice.rvc_models import (
        SynthesizerTrnMs256NSFsid,
        SynthesizerTrnMs768NSFsid,
    )

    torch.manual_seed(seed)
    cfg = list(CONFIGS[(version, sr)])
    cfg[15] = n_speakers
    cls = SynthesizerTrnMs768NSFsid if version == "v2" else SynthesizerTrnMs256NSFsid
    net = cls(*cfg)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.startswith(("dec.ups.", "dec.resblocks.")) and name.endswith("weight_v"):
                p.normal_(0.0, 0.01)
                g = net.get_parameter(name[:-1] + "g")
                g.copy_(p.pow(2).sum(dim=tuple(range(1, p.dim())), keepdim=True).sqrt())
    return OrderedDict(net.state_dict())


def checkpoint_dict(version: str = "v2", sr: str = "40k", seed: int = 0, n_speakers: int = 4,
                    weights: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dict RVC's ``savee``/``extract_small_model`` writes: fp16 ``weight`` without ``enc_q``,
    ``config`` (speaker count as trained), ``info``, ``sr``, ``f0``, ``version``."""
    w = random_weights(version, sr, seed, n_speakers) if weights is None else weights
    opt: dict[str, Any] = OrderedDict()
    opt["weight"] = OrderedDict((k, v.half()) for k, v in w.items() if "enc_q" not in k)
    opt["config"] = list(CONFIGS[(version, sr)])
    opt["info"] = "300epoch"
    opt["sr"] = sr
    opt["f0"] = 1
    opt["version"] = version
    return opt


def write_checkpoint(path: str | Path, version: str = "v2", sr: str = "40k", seed: int = 0, n_speakers: int = 4,
                     changes: dict[str, Any] | None = None, ckpt: dict[str, Any] | None = None) -> Path:
    """Write a random-weight voice ``.pth`` (see :func:`checkpoint_dict`), or ``ckpt`` when given;
    ``changes`` replace top-level keys or, with value ``None``, remove them."""
    import torch

    ckpt = dict(ckpt) if ckpt is not None else checkpoint_dict(version, sr, seed, n_speakers)
    for k, v in (changes or {}).items():
        if v is None:
            ckpt.pop(k, None)
        else:
            ckpt[k] = v
    path = Path(path)
    torch.save(ckpt, str(path))
    return path


def write_embedder(folder: str | Path, seed: int = 0, layers: int = 2) -> Path:
    """A tiny random ContentVec (768-d hidden, 256-d ``final_proj``) saved with ``save_pretrained``."""
    import torch
    from transformers import HubertConfig

    from engines.voice.embedder import _model_class

    torch.manual_seed(seed)
    config = HubertConfig(hidden_size=768, num_hidden_layers=layers, num_attention_heads=12, intermediate_size=256,
                          conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=16,
                          classifier_proj_size=256)
    model = _model_class()(config).eval()
    folder = Path(folder)
    model.save_pretrained(str(folder))
    return folder
