"""A tiny random-weight ACE-Step 1.5 pipeline for tests (no download).

Shapes follow diffusers' own fast tests (``tests/pipelines/ace_step/test_ace_step.py`` in
huggingface/diffusers: hidden size 32, 2 layers, 4 heads of 8, 8 latent channels), with two
changes so that engine tests exercise the real geometry:

* the VAE is an ``AutoencoderOobleck`` at **48 kHz with the real hop of 1920 samples**
  (``downsampling_ratios=[2, 4, 4, 6, 10]``, 25 latent frames per second, as
  ``ACE-Step/Ace-Step1.5/vae/config.json``) but only a few channels wide;
* the tokenizer is a byte-level BPE built with the ``tokenizers`` library (256 byte symbols,
  no merges, plus ``<|endoftext|>``), wrapped in ``transformers.PreTrainedTokenizerFast``,
  instead of downloading ``Qwen/Qwen3-Embedding-0.6B``'s tokenizer.

:func:`build_tiny_pipeline` returns the pipeline; :func:`save_tiny_model` writes it with
``save_pretrained`` so tests load it through the engine's normal code path
(``spec.model_path`` -> ``AceStepPipeline.from_pretrained``). Reused by the task-layer and
app tests.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

SAMPLE_RATE = 48000
HOP = 1920  # samples per latent frame (25 Hz at 48 kHz)
LATENT_CHANNELS = 8


def build_tokenizer() -> Any:
    """A byte-level BPE tokenizer (258 tokens) as a ``PreTrainedTokenizerFast``.

    Every text is encodable (byte fallback by construction); ``<|endoftext|>`` is the end
    and padding token, as in Qwen3's tokenizer.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    vocab["<|endoftext|>"] = len(vocab)
    vocab["<|im_start|>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>", "<|im_start|>"])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   model_max_length=4096)


def build_tiny_vae(seed: int = 6) -> Any:
    """The tiny pipeline's ``AutoencoderOobleck`` alone (48 kHz, hop 1920, 8 latent channels,
    a few channels wide), initialised after ``torch.manual_seed(seed)``."""
    import torch
    from diffusers import AutoencoderOobleck

    torch.manual_seed(seed)
    return AutoencoderOobleck(
        encoder_hidden_size=2 * LATENT_CHANNELS, downsampling_ratios=[2, 4, 4, 6, 10],
        channel_multiples=[1, 1, 2, 2, 2], decoder_channels=4, decoder_input_channels=LATENT_CHANNELS,
        audio_channels=2, sampling_rate=SAMPLE_RATE,
    )


def build_tiny_pipeline(seed: int = 0, *, turbo: bool = True, num_layers: int = 2) -> Any:
    """A random-weight ``AceStepPipeline`` (fp32, CPU), deterministic for a given ``seed``.

    Args:
        seed: torch seed for every module's initialisation.
        turbo: True = guidance-distilled variant (``is_turbo``, no CFG); False = base
            variant (``null_condition_emb`` CFG/APG path).
        num_layers: DiT layers.
    """
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.models.transformers.ace_step_transformer import AceStepTransformer1DModel
    from diffusers.pipelines.ace_step import (AceStepAudioTokenDetokenizer, AceStepAudioTokenizer,
                                              AceStepConditionEncoder, AceStepPipeline)
    from transformers import Qwen3Config, Qwen3Model

    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    transformer = AceStepTransformer1DModel(
        hidden_size=32, intermediate_size=64, num_hidden_layers=num_layers, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, in_channels=3 * LATENT_CHANNELS, audio_acoustic_hidden_dim=LATENT_CHANNELS,
        patch_size=2, rope_theta=10000.0, sliding_window=16, is_turbo=turbo,
        model_version="turbo" if turbo else "base",
    )
    torch.manual_seed(seed + 1)
    text_encoder = Qwen3Model(Qwen3Config(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=8, vocab_size=len(tokenizer), max_position_embeddings=4096,
    ))
    torch.manual_seed(seed + 2)
    condition_encoder = AceStepConditionEncoder(
        hidden_size=32, intermediate_size=64, text_hidden_dim=32, timbre_hidden_dim=LATENT_CHANNELS,
        num_lyric_encoder_hidden_layers=2, num_timbre_encoder_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, rope_theta=10000.0, sliding_window=16,
    )
    # The real checkpoints ship the VAE encoding of silence here; any fixed latent will do.
    g = torch.Generator().manual_seed(seed + 3)
    condition_encoder.silence_latent.copy_(0.1 * torch.randn(condition_encoder.silence_latent.shape, generator=g))
    common = dict(hidden_size=32, intermediate_size=64, audio_acoustic_hidden_dim=LATENT_CHANNELS,
                  pool_window_size=5, num_attention_pooler_hidden_layers=1, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=8, rope_theta=10000.0, sliding_window=16)
    torch.manual_seed(seed + 4)
    audio_tokenizer = AceStepAudioTokenizer(fsq_dim=32, fsq_input_levels=[4, 4, 4], fsq_input_num_quantizers=1,
                                            **common)
    torch.manual_seed(seed + 5)
    audio_token_detokenizer = AceStepAudioTokenDetokenizer(**common)
    vae = build_tiny_vae(seed + 6)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0)
    pipe = AceStepPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
        condition_encoder=condition_encoder, scheduler=scheduler, audio_tokenizer=audio_tokenizer,
        audio_token_detokenizer=audio_token_detokenizer,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to("cpu")


def save_tiny_model(folder: str | Path, seed: int = 0, *, turbo: bool = True) -> Path:
    """Build the tiny pipeline and ``save_pretrained`` it (safetensors) into ``folder``.

    Returns:
        The folder, loadable with ``AceStepPipeline.from_pretrained`` like a downloaded model.
    """
    folder = Path(folder)
    build_tiny_pipeline(seed, turbo=turbo).save_pretrained(str(folder), safe_serialization=True)
    return folder
