"""A tiny random-weight MusicGen (and MusicGen-Melody) saved like a Hub download, for tests.

:func:`build_tiny_musicgen` writes a folder that loads through exactly the same code
path as a downloaded model (``JobSpec.model_path`` / ``--model-path``): the library's
``save_pretrained`` output (``config.json``, ``generation_config.json``,
``model.safetensors``) plus a tokenizer built with the ``tokenizers`` library
(``tokenizer.json``, ``tokenizer_config.json``) and, for the melody variant, a
``preprocessor_config.json`` in the format of ``MusicgenMelodyFeatureExtractor``.

The tiny model keeps the real architecture (T5 text encoder, EnCodec audio codec,
MusicGen decoder with 4 codebooks and the delay pattern) at toy sizes:

* EnCodec at 640 Hz with a hop of 128 samples: **5 codec frames per second**, so a
  30 s window is 150 decoder steps and a 70 s request stays fast on one CPU core;
* codebooks of 64 entries (special / pad token 64), decoder width 32, 2 layers;
* melody: chroma with a 512-point FFT and a 128-sample hop at 640 Hz (the real model
  uses 16384 / 4096 at 32 kHz, the same 30 s of audio per 235 chroma frames ratio is
  kept: here 151 frames per 30 s).

Weights are random (seeded), so outputs are noise-like but deterministic. Reused by the
engine tests and the task-layer tests.
"""
from __future__ import annotations

import json
from pathlib import Path

#: Sample rate of the tiny codec in Hz, and its hop in samples (5 codec frames per second).
TINY_SAMPLE_RATE = 640
TINY_HOP = 128
TINY_FRAME_RATE = TINY_SAMPLE_RATE // TINY_HOP
TINY_CODEBOOK_SIZE = 64
TINY_WORDS = ("calm", "piano", "drums", "rock", "jazz", "loud", "soft", "bass", "guitar", "ambient", "fast", "slow")


def _tokenizer(folder: Path) -> None:
    """A word-level tokenizer with T5's special tokens (``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2),
    built with the ``tokenizers`` library and saved as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for w in TINY_WORDS:
        vocab[w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=64)
    fast.save_pretrained(str(folder))


def _configs(melody: bool, stereo: bool, chroma_length: int):
    from transformers import EncodecConfig, T5Config

    text = T5Config(vocab_size=32, d_model=24, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                    relative_attention_num_buckets=8, relative_attention_max_distance=16,
                    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    # frame_rate 5 Hz, 6-bit codebooks: 0.12 kbps -> 4 quantizers
    audio = EncodecConfig(sampling_rate=TINY_SAMPLE_RATE, upsampling_ratios=[8, 4, 4], hidden_size=8,
                          num_filters=4, num_residual_layers=1, num_lstm_layers=1, codebook_size=TINY_CODEBOOK_SIZE,
                          target_bandwidths=[0.12], use_causal_conv=False, norm_type="weight_norm",
                          use_conv_shortcut=False, kernel_size=3, last_kernel_size=3, residual_kernel_size=3)
    k = 8 if stereo else 4
    dec = dict(vocab_size=TINY_CODEBOOK_SIZE, max_position_embeddings=512, num_hidden_layers=2, ffn_dim=64,
               num_attention_heads=2, hidden_size=32, num_codebooks=k, audio_channels=2 if stereo else 1,
               pad_token_id=TINY_CODEBOOK_SIZE, bos_token_id=TINY_CODEBOOK_SIZE,
               decoder_start_token_id=TINY_CODEBOOK_SIZE, dropout=0.0)
    if melody:
        from transformers import MusicgenMelodyConfig, MusicgenMelodyDecoderConfig

        return MusicgenMelodyConfig(text_encoder=text.to_dict(), audio_encoder=audio.to_dict(),
                                    decoder=MusicgenMelodyDecoderConfig(**dec).to_dict(), num_chroma=12,
                                    chroma_length=chroma_length)
    from transformers import MusicgenConfig, MusicgenDecoderConfig

    return MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=audio.to_dict(),
                          decoder=MusicgenDecoderConfig(**dec).to_dict())


def build_tiny_musicgen(folder: str | Path, *, melody: bool = False, stereo: bool = False, seed: int = 0) -> Path:
    """Write a tiny random MusicGen model folder and return its path.

    Args:
        folder: where to write (created).
        melody: a ``MusicgenMelodyForConditionalGeneration`` (chroma prefix conditioning)
            instead of ``MusicgenForConditionalGeneration`` (text cross-attention).
        stereo: 8 interleaved codebooks (left/right), like ``facebook/musicgen-stereo-*``.
        seed: torch seed of the random weights.

    Returns:
        ``Path(folder)``, loadable with ``from_pretrained`` and by the musicgen engine
        as ``spec.model_path``.
    """
    import torch
    from transformers.utils import logging as hf_logging

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n_fft, hop = 512, 128
    chroma_length = 1 + (30 * TINY_SAMPLE_RATE) // hop  # 30 s of chroma frames (151), as 235 for 32 kHz / 4096
    if melody:
        from transformers import MusicgenMelodyForConditionalGeneration as Model
    else:
        from transformers import MusicgenForConditionalGeneration as Model
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the special token (= vocab size) is outside the vocabulary on purpose
    hf_logging.disable_progress_bar()
    try:
        config = _configs(melody, stereo, chroma_length)
        torch.manual_seed(seed)
        model = Model(config).eval()
        with torch.no_grad():  # livelier logits than the 0.02-std init, so that samples and greedy paths differ
            for head in model.decoder.lm_heads:
                head.weight.mul_(25.0)
            if melody:  # a chroma prefix that matters (init std 0.02 would make it a whisper)
                model.audio_enc_to_dec_proj.weight.mul_(50.0)
            for layer in model.audio_encoder.quantizer.layers:  # EnCodec codebooks start at zero: give them entries
                book = layer.codebook
                book.embed.copy_(torch.randn_like(book.embed))
                book.embed_avg.copy_(book.embed)
                book.cluster_size.fill_(1.0)
                book.inited.fill_(True)
        model.generation_config.decoder_start_token_id = TINY_CODEBOOK_SIZE
        model.generation_config.pad_token_id = TINY_CODEBOOK_SIZE
        model.generation_config.bos_token_id = TINY_CODEBOOK_SIZE
        model.generation_config.guidance_scale = 3.0
        model.generation_config.do_sample = True
        model.generation_config.top_k = 250
        model.generation_config.max_length = 1500
        model.save_pretrained(str(folder))
        _tokenizer(folder)
        if melody:
            (folder / "preprocessor_config.json").write_text(json.dumps({
                "feature_extractor_type": "MusicgenMelodyFeatureExtractor", "feature_size": 12, "num_chroma": 12,
                "sampling_rate": TINY_SAMPLE_RATE, "n_fft": n_fft, "hop_length": hop, "chunk_length": 30,
                "padding_value": 0.0, "return_attention_mask": False, "stem_indices": [3, 2],
            }, indent=2))
    finally:
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()
    return folder
