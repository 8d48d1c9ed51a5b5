"""Content features for RVC: ContentVec through transformers' ``HubertModel``.

ContentVec (Qian et al., "ContentVec: An Improved Self-Supervised Speech Representation
by Disentangling Speakers", ICML 2022; weights MIT) is a HuBERT-Base model trained to drop
speaker identity. RVC reads it as (``infer/hubert.py`` of the official RVC, which now uses
transformers instead of fairseq):

* v1 voices: ``final_proj(hidden_states[9])``, 256-d;
* v2 voices: ``hidden_states[12]`` (the last layer), 768-d.

A converted checkpoint is a transformers folder (``config.json`` + ``model.safetensors``
or ``pytorch_model.bin``) of ``HubertModel`` with an extra ``final_proj`` linear layer
(``HubertModelWithFinalProj``), e.g. ``lengyue233/content-vec-best`` or the official RVC's
``hubert_base/``. ``.bin`` weights are read by transformers with
``torch.load(weights_only=True)`` (a weights file that carries code is refused), and no
remote code is trusted. Embedders with fewer layers than 9 or 12 (test models)
use their last layer.

Input: mono 16 kHz audio; output: one frame per 320 samples (20 ms),
``floor((samples - 400) / 320) + 1`` frames.
"""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

from engines.base.errors import ModelNotInstalled

__all__ = ["ContentVec", "find_embedder_folder", "SAMPLE_RATE", "HOP", "V1_LAYER", "V2_LAYER"]

SAMPLE_RATE = 16000
HOP = 320
V1_LAYER = 9
V2_LAYER = 12


def find_embedder_folder(path: str | os.PathLike) -> Path:
    """The transformers folder of an embedder: ``path`` itself, or ``path/hubert_base``.

    Raises:
        ModelNotInstalled: no ``config.json`` there.
    """
    p = Path(path)
    for cand in (p, p / "hubert_base"):
        if (cand / "config.json").is_file():
            return cand
    raise ModelNotInstalled(f"no ContentVec embedder in '{p}' (no config.json)",
                            "give the folder of a transformers ContentVec checkpoint, e.g. lengyue233/content-vec-best")


def _model_class() -> type:
    from torch import nn
    from transformers import HubertModel

    class HubertModelWithFinalProj(HubertModel):
        """transformers' HubertModel plus ContentVec's ``final_proj`` (hidden -> 256)."""

        def __init__(self, config: Any):
            super().__init__(config)
            self.final_proj = nn.Linear(config.hidden_size, config.classifier_proj_size)

    return HubertModelWithFinalProj


class ContentVec:
    """A loaded ContentVec embedder.

    Args:
        folder: transformers checkpoint folder (see :func:`find_embedder_folder`).
        device: torch device string. dtype: "float32", "float16" or "bfloat16".

    Raises:
        ModelNotInstalled: the folder holds no usable checkpoint.
    """

    def __init__(self, folder: str | os.PathLike, device: str = "cpu", dtype: str = "float32"):
        import torch

        self.folder = find_embedder_folder(folder)
        cls = _model_class()
        try:
            model, info = cls.from_pretrained(str(self.folder), local_files_only=True, dtype=getattr(torch, dtype),
                                              output_loading_info=True, weights_only=True, trust_remote_code=False)
        except pickle.UnpicklingError as exc:
            raise ModelNotInstalled(f"the ContentVec embedder in '{self.folder}' was refused: its weights file holds "
                                    "Python objects other than tensors; nothing in it was run",
                                    "use the official files (seed-studio models download contentvec-rvc)") from exc
        except Exception as exc:  # transformers raises many types for a broken folder
            raise ModelNotInstalled(f"the ContentVec embedder in '{self.folder}' can't be loaded: "
                                    f"{(str(exc).splitlines() or [type(exc).__name__])[0][:300]}") from exc
        missing = set(info.get("missing_keys") or ())
        self.has_final_proj = not ({"final_proj.weight", "final_proj.bias"} & missing)
        self.model = model.to(device).eval()
        self.device, self.dtype = device, getattr(torch, dtype)
        self.n_layers = int(model.config.num_hidden_layers)
        self.hidden_size = int(model.config.hidden_size)
        self.normalize = False
        pre = self.folder / "preprocessor_config.json"
        if pre.is_file():
            try:
                self.normalize = bool(json.loads(pre.read_text()).get("do_normalize", False))
            except (ValueError, OSError):
                self.normalize = False

    def feature_dim(self, version: str) -> int:
        """Output size for a voice version: 256 (v1, ``final_proj``) or the hidden size (v2, 768)."""
        return int(self.model.final_proj.out_features) if version == "v1" else self.hidden_size

    def __call__(self, audio: Any, version: str) -> Any:
        """Content features of 16 kHz mono audio.

        Args:
            audio: ``(1, samples)`` float tensor at 16 kHz (at least 400 samples).
            version: "v1" or "v2" (the voice's).

        Returns:
            ``(1, frames, 256 | 768)`` tensor in the embedder's dtype, 20 ms frames.

        Raises:
            ModelNotInstalled: a v1 voice with an embedder that has no ``final_proj`` weights.
        """
        import torch

        if version == "v1" and not self.has_final_proj:
            raise ModelNotInstalled(f"the embedder in '{self.folder}' has no final_proj weights, which v1 voices need",
                                    "use a ContentVec checkpoint with final_proj (e.g. lengyue233/content-vec-best)")
        x = audio.to(self.device, torch.float32)
        if self.normalize:
            x = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + 1e-7)
        layer = min(V1_LAYER if version == "v1" else V2_LAYER, self.n_layers)
        with torch.inference_mode():
            out = self.model(input_values=x.to(self.dtype), output_hidden_states=layer < self.n_layers,
                             return_dict=True)
            h = out.last_hidden_state if layer == self.n_layers else out.hidden_states[layer]
            return self.model.final_proj(h) if version == "v1" else h
