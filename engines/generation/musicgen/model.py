"""A MusicGen model folder loaded through transformers: text conditioning, melody
conditioning, and the EnCodec codec (encode a prompt, decode tokens).

Loads ``MusicgenForConditionalGeneration`` (``model_type`` "musicgen") or
``MusicgenMelodyForConditionalGeneration`` ("musicgen_melody") with ``from_pretrained``
from a local folder (a Hub download at a pinned revision, or ``--model-path``), and the
T5 tokenizer with ``AutoTokenizer``. The decoder runs in the job's dtype; the T5 text
encoder and the EnCodec codec stay in float32 (T5 overflows in float16; the codec is a
small share of the time).

The conditioning follows transformers' ``generate`` (``_prepare_text_encoder_kwargs_for_
generation`` and, for the melody model, ``_prepare_encoder_hidden_states_kwargs_for_
generation``): text states projected to the decoder width (``enc_to_dec_proj``) and
multiplied by the attention mask; null rows for guidance are zeros (text) and the one-hot
C chroma (melody); the melody prefix is ``[projected chroma (chroma_length frames); text]``.
"""
from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engines.base import InvalidJob, ModelNotInstalled
from engines.generation.musicgen.chroma import ChromaParams, null_chroma
from engines.generation.musicgen.decode import (
    Conditioning,
    PackedWeights,
    codebook_delays,
)

__all__ = ["MusicgenModel", "quiet_transformers"]


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' info/warning logs (config notes, load bars) for a block."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        yield
        return
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


class MusicgenModel:
    """One loaded MusicGen / MusicGen-Melody model.

    Args:
        folder: the model folder (``config.json``, weights, tokenizer files; for the
            melody model optionally ``preprocessor_config.json`` with the chroma settings).
        device: torch device string.
        decoder_dtype: dtype of the decoder (the text encoder and codec stay float32).

    Attributes:
        model: the transformers model (eval mode).
        melody: True for MusicGen-Melody.
        sample_rate: codec rate in Hz (32000).
        hop: codec hop in samples (640); ``frame_rate = sample_rate / hop`` (50 Hz).
        channels: audio channels (1, or 2 for the stereo models).
        num_codebooks: K (4 mono, 8 stereo).
        delays: per-codebook delays; special: the special token id (``vocab_size``).
        chroma: :class:`ChromaParams` (melody models only, else None).

    Raises:
        ModelNotInstalled: the folder or its config is missing or unreadable.
        InvalidJob: the folder holds another kind of model.
    """

    def __init__(self, folder: str | Path, device: str, decoder_dtype: torch.dtype):
        folder = Path(folder)
        cfg_path = folder / "config.json"
        if not cfg_path.is_file():
            raise ModelNotInstalled(f"no MusicGen model in '{folder}' (config.json is missing)",
                                    "give a folder holding a transformers MusicGen model (config.json, weights, tokenizer)")
        try:
            model_type = json.loads(cfg_path.read_text()).get("model_type")
        except (OSError, ValueError) as exc:
            raise ModelNotInstalled(f"'{cfg_path}' can't be read: {exc}", "download or import the model again") from exc
        if model_type not in ("musicgen", "musicgen_melody"):
            raise InvalidJob(f"'{folder}' holds a {model_type!r} model, not MusicGen",
                             "use a facebook/musicgen-* model or a fine-tune of one")
        from transformers import AutoTokenizer

        if model_type == "musicgen_melody":
            from transformers import MusicgenMelodyForConditionalGeneration as cls
        else:
            from transformers import MusicgenForConditionalGeneration as cls
        with quiet_transformers():
            try:
                model = cls.from_pretrained(str(folder), dtype=torch.float32, local_files_only=True)
                self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            except OSError as exc:
                raise ModelNotInstalled(f"the MusicGen model in '{folder}' can't be loaded: {exc}",
                                        "download or import the model again") from exc
        self.folder = folder
        self.melody = model_type == "musicgen_melody"
        self.device = torch.device(device)
        self.decoder_dtype = decoder_dtype
        model.eval().to(self.device)
        model.decoder.to(decoder_dtype)
        self.model = model
        dcfg = model.config.decoder
        acfg = model.config.audio_encoder
        self.sample_rate = int(acfg.sampling_rate)
        self.hop = int(np.prod(acfg.upsampling_ratios))
        self.channels = int(dcfg.audio_channels)
        self.num_codebooks = int(dcfg.num_codebooks)
        self.delays = codebook_delays(self.num_codebooks, self.channels)
        gen = model.generation_config
        special = gen.decoder_start_token_id if gen.decoder_start_token_id is not None else dcfg.pad_token_id
        self.special = int(special if special is not None else dcfg.vocab_size)
        self.max_positions = int(dcfg.max_position_embeddings)
        self.chroma = self._chroma_params() if self.melody else None
        self._packed: PackedWeights | None | bool = False  # False = not decided yet

    # ------------------------------------------------------------------ facts

    @property
    def frame_rate(self) -> float:
        """Codec frames per second (Hz): 50 for the 32 kHz EnCodec."""
        return self.sample_rate / self.hop

    @property
    def max_delay(self) -> int:
        """Largest codebook delay (3 mono, 3 stereo)."""
        return max(self.delays)

    #: Largest decoder (parameters) whose weights get a packed CPU copy (doubles their memory).
    PACK_MAX_PARAMS = 2_000_000_000

    @property
    def packed(self) -> PackedWeights | None:
        """:class:`PackedWeights` of the decoder on CPU in bfloat16 (built on first use), else None."""
        if self._packed is False:
            lm = self.model.decoder
            n = sum(p.numel() for p in lm.parameters())
            self._packed = PackedWeights(lm) if PackedWeights.available(lm) and n <= self.PACK_MAX_PARAMS else None
        return self._packed or None

    def memory_bytes(self) -> int:
        """Bytes held by the weights, plus the packed CPU copy once built."""
        n = sum(p.numel() * p.element_size() for p in self.model.parameters())
        if self._packed:
            n += sum(p.numel() * p.element_size() for p in self.model.decoder.parameters())
        return n

    def _chroma_params(self) -> ChromaParams:
        pre = self.folder / "preprocessor_config.json"
        conf: dict[str, Any] = {}
        if pre.is_file():
            try:
                conf = json.loads(pre.read_text())
            except (OSError, ValueError):
                conf = {}
        scale = self.sample_rate / 32000.0  # defaults of MusicgenMelodyFeatureExtractor, scaled to the codec rate
        return ChromaParams(sample_rate=int(conf.get("sampling_rate", self.sample_rate)),
                            n_fft=int(conf.get("n_fft", round(16384 * scale))),
                            hop_length=int(conf.get("hop_length", round(4096 * scale))),
                            chroma_length=int(getattr(self.model.config, "chroma_length", 235)))

    # ------------------------------------------------------------------ conditioning

    @torch.no_grad()
    def text_states(self, description: str) -> tuple[torch.Tensor, torch.Tensor]:
        """T5 states of a description, projected to the decoder width and masked.

        Returns:
            ``(states (1, L, D) float32, mask (1, L) bool)`` on the model's device.
        """
        enc = self.tokenizer([description], return_tensors="pt", padding=True)
        ids = enc["input_ids"].to(self.device)
        mask = enc["attention_mask"].to(self.device)
        h = self.model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        proj = getattr(self.model, "enc_to_dec_proj", None)
        if proj is not None:
            h = proj(h)
        return h * mask[..., None].to(h.dtype), mask.bool()

    @torch.no_grad()
    def conditioning(self, text: tuple[torch.Tensor, torch.Tensor], batch: int, guided: bool,
                     chroma: torch.Tensor | None = None) -> Conditioning:
        """The decoder's :class:`Conditioning` for ``batch`` variations.

        Args:
            text: from :meth:`text_states`.
            batch: B variations (the same description repeated in the batch).
            guided: add the null rows for classifier-free guidance (``N = 2B``).
            chroma: melody models: ``(1, F, 12)`` one-hot chroma of this window (None =
                no melody: the null chroma); must be None for MusicGen.

        Returns:
            MusicGen: cross-attention states and mask; MusicGen-Melody: the prefix
            ``[projected chroma; text]`` (chroma repeated/truncated to ``chroma_length``).
        """
        states, mask = text
        n = 2 * batch if guided else batch
        if not self.melody:
            cs = states.repeat(batch, 1, 1)
            cm = mask.repeat(batch, 1)
            if guided:
                cs = torch.cat([cs, torch.zeros_like(cs)])
                cm = torch.cat([cm, torch.zeros_like(cm)])
            return Conditioning(cross_states=cs.to(self.decoder_dtype), cross_mask=cm)
        length = self.chroma.chroma_length
        cond_c = (chroma if chroma is not None else null_chroma(1)).to(self.device, torch.float32)
        rows_c = [cond_c.expand(batch, -1, -1)]
        rows_t = [states.expand(batch, -1, -1)]
        if guided:
            rows_c.append(null_chroma(cond_c.shape[1], batch).to(self.device))
            rows_t.append(torch.zeros_like(states).expand(batch, -1, -1))
        c = torch.cat(rows_c)
        proj = getattr(self.model, "audio_enc_to_dec_proj", None)
        if proj is not None:
            c = proj(c)
        if c.shape[1] < length:
            c = c.repeat(1, int(math.ceil(length / c.shape[1])), 1)
        c = c[:, :length]
        prefix = torch.cat([c, torch.cat(rows_t)], dim=1)
        assert prefix.shape[0] == n
        return Conditioning(prefix=prefix.to(self.decoder_dtype))

    # ------------------------------------------------------------------ codec

    @torch.no_grad()
    def encode(self, audio: np.ndarray) -> torch.Tensor:
        """EnCodec codes of audio at the codec rate.

        Args:
            audio: ``(channels, samples)`` float32 at :attr:`sample_rate`; ``samples`` a
                multiple of :attr:`hop` gives exactly ``samples / hop`` frames. Mono models
                take the channel average; stereo models encode left and right separately
                and interleave their codebooks (mono input is duplicated).

        Returns:
            ``(1, K, frames)`` long codes on the model's device.
        """
        a = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(self.device)
        enc = self.model.audio_encoder
        if self.channels == 1:
            return enc.encode(a.mean(dim=0)[None, None]).audio_codes[0]
        if a.shape[0] == 1:
            a = a.repeat(2, 1)
        left = enc.encode(a[0][None, None]).audio_codes[0]
        right = enc.encode(a[1][None, None]).audio_codes[0]
        out = torch.empty((1, 2 * left.shape[1], left.shape[2]), dtype=left.dtype, device=left.device)
        out[:, ::2], out[:, 1::2] = left, right
        return out

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """Audio of one variation's codes.

        Args:
            codes: ``(1, K, frames)`` long.

        Returns:
            ``(channels, frames * hop)`` float32 numpy at :attr:`sample_rate`.
        """
        enc = self.model.audio_encoder
        codes = codes.to(self.device)
        if self.channels == 1:
            out = enc.decode(codes[None], [None]).audio_values[0]
        else:
            left = enc.decode(codes[None, :, ::2], [None]).audio_values[0]
            right = enc.decode(codes[None, :, 1::2], [None]).audio_values[0]
            out = torch.cat([left, right], dim=0)
        return out.float().cpu().numpy()
