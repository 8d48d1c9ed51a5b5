"""MusicGen (Copet et al. 2023) through transformers: the engine entry and the model records
of the ten facebook/musicgen-* checkpoints. Torch-free: read by :mod:`engines.registry`.

Every record carries the CC-BY-NC-4.0 licence of the weights (shown before download and
recorded in every take). Hub files are pinned to a revision; the sha256 values are the Git
LFS object ids shown by the Hub for those files. Where a value could not be looked up
offline it is left empty (``""``) and listed in :data:`MISSING_FACTS`, never guessed.
"""
from __future__ import annotations

from typing import Any

from engines.base.tasks import EXTEND, GENERATE
from engines.records import EngineEntry, ModelFile, ModelRecord

LICENCE = "CC-BY-NC-4.0"
HOMEPAGE = "https://github.com/facebookresearch/audiocraft/blob/main/docs/MUSICGEN.md"
PAPER = "Copet et al., Simple and Controllable Music Generation, NeurIPS 2023 (arXiv:2306.05284)."

_P = {
    "temperature": {"type": "number", "default": 1.0, "minimum": 0.0, "maximum": 3.0, "title": "Temperature",
                    "description": "Randomness of each token choice: lower is safer and more repetitive, "
                                   "0 always takes the most likely token (greedy)."},
    "top_k": {"type": "integer", "default": 250, "minimum": 0, "maximum": 2048, "title": "Top-k",
              "description": "Choose each token among the k most likely ones (audiocraft's default 250); 0 = no limit."},
    "top_p": {"type": "number", "default": 0.0, "minimum": 0.0, "maximum": 1.0, "title": "Top-p",
              "description": "Choose among the most likely tokens that together reach this probability; "
                             "0 = off (top-k is used instead)."},
    "cfg_coef": {"type": "number", "default": 3.0, "minimum": 1.0, "maximum": 15.0, "title": "Prompt strength",
                 "description": "Classifier-free guidance: how strongly the music follows the description "
                                "(and melody); 1 = no guidance (faster), 3 = the paper's setting."},
    "window": {"type": "number", "default": 30.0, "minimum": 5.0, "maximum": 30.0, "title": "Window (s)",
               "description": "Seconds the model writes at once; it was trained on 30 s."},
    "extend_stride": {"type": "number", "default": 18.0, "minimum": 1.0, "maximum": 29.0, "title": "Window step (s)",
                      "description": "For music longer than one window: each new window starts this many seconds "
                                     "after the previous one and keeps the rest (12 s by default) as its starting point."},
    "prompt_seconds": {"type": "number", "default": 12.0, "minimum": 1.0, "maximum": 29.0, "title": "Clip context (s)",
                       "description": "Extend: how many seconds at the end of the clip the model continues from."},
    "crossfade_ms": {"type": "number", "default": 80.0, "minimum": 0.0, "maximum": 500.0, "title": "Join crossfade (ms)",
                     "description": "Extend: over this many milliseconds at the start of the new material, the clip's "
                                    "own detail fades into the generated sound so that the join has no click."},
    "metadata_in_prompt": {"type": "boolean", "default": True, "title": "Tempo and key in the description",
                           "description": "Add the song's tempo and key to the description the way MusicGen saw them "
                                          "in training (\"bpm: 120. key: C major\")."},
    "cpu_bfloat16": {"type": "boolean", "default": True, "title": "Fast CPU maths",
                     "description": "On a CPU with bfloat16 support, run the decoder in bfloat16 (about twice as fast, "
                                    "tiny numerical differences)."},
    "cuda_graph": {"type": "boolean", "default": True, "title": "CUDA graph",
                   "description": "On NVIDIA GPUs, replay the one-token step as a captured CUDA graph (faster)."},
}
PARAMS: dict[str, Any] = {"type": "object", "properties": _P}

# Model ids, default first.
MODEL_IDS = ("musicgen-small", "musicgen-medium", "musicgen-large", "musicgen-melody", "musicgen-melody-large",
             "musicgen-stereo-small", "musicgen-stereo-medium", "musicgen-stereo-large",
             "musicgen-stereo-melody", "musicgen-stereo-melody-large")

MUSICGEN = EngineEntry(
    id="musicgen", target="engines.generation.musicgen.engine:MusicgenEngine", tasks=(GENERATE, EXTEND),
    title="MusicGen",
    description="Meta's MusicGen: instrumental music from a description, longer than 30 s by sliding windows, "
                "continuation of a clip, melody from a reference (melody models). Weights CC-BY-NC 4.0.",
    models=MODEL_IDS, param_schema=PARAMS, accepts_model_path=True,
)

# Files each record downloads: configs, the fast tokenizer (T5's tokenizer.json; the slow
# spiece.model is not needed) and the weights. The melody models add the chroma settings
# (preprocessor_config.json). Sizes are 0 where the exact byte count was not published in a
# source reachable offline; sha256 values are the Hub's Git LFS oids where found (the source is
# noted per record), "" otherwise. See MISSING_FACTS.
_TEXT_FILES = ("config.json", "generation_config.json", "special_tokens_map.json", "tokenizer.json",
               "tokenizer_config.json")

_RECORDS: list[dict[str, Any]] = [
    {"id": "musicgen-small", "title": "MusicGen small (300M, mono)", "rev": "3e02990f9775c87efd8f8af10faa8bf78294b338",
     "weights": {"model.safetensors": "1bdc99d43eb6c775967df24b65b0a9f847c0907e95664698d93b5a1c35f5090d"},
     "source": "revision: Hub tree page (28 commits, 'Some typos in README'); model.safetensors oid: Hub LFS details "
               "of two duplicates of this repo made after the safetensors upload (#13)"},
    {"id": "musicgen-medium", "title": "MusicGen medium (1.5B, mono)", "rev": "f910df651fc7fb070ae3d4ecb8edb8a74c932807",
     "weights": {"pytorch_model.bin": ""},
     "source": "revision: Hub tree page (14 commits); this repo's main has no safetensors weights "
               "(pytorch_model.bin, loaded by transformers with weights_only=True)"},
    {"id": "musicgen-large", "title": "MusicGen large (3.3B, mono)", "rev": "037a9f5a2a8a44bd6eaa38b1171f6fdfb1b0b1a9",
     "weights": {"model-00001-of-00002.safetensors": "", "model-00002-of-00002.safetensors": "",
                 "model.safetensors.index.json": ""},
     "source": "revision: the safetensors conversion commit (SFconvertbot, Hub PR #18) on top of main, chosen so "
               "that no pickle is downloaded"},
    {"id": "musicgen-melody", "title": "MusicGen melody (1.5B, mono, text + melody)",
     "rev": "6eb8539b8f58210b68673406f403bb0e63ba730e", "melody": True,
     "weights": {"model-00001-of-00002.safetensors": "3deb583fd977128b24f59c86d6706f01b35b4ab8553e8355cca6969a9b7440b4",
                 "model-00002-of-00002.safetensors": "01268b3a5f9819026a9ee6b76df35574e7dd521de3e6431c7fad16b44ce5a9c0",
                 "model.safetensors.index.json": ""},
     "source": "revision: Hub tree page (18 commits); shard 2 oid: Hub LFS details at this revision; shard 1 oid: "
               "Hub LFS details on main (68d653a, the merge of this upload, same 4.97 GB shard)"},
    {"id": "musicgen-melody-large", "title": "MusicGen melody large (3.3B, mono, text + melody)",
     "rev": "29faf8b9ee41b5c0bc4ce8b95f0427147ddfdf64", "melody": True,
     "weights": {"model-00001-of-00003.safetensors": "", "model-00002-of-00003.safetensors": "",
                 "model-00003-of-00003.safetensors": "", "model.safetensors.index.json": ""},
     "source": "revision: head of Hub PR #7 (processor re-upload over main 6fdf8d3, whose full sha was not found "
               "offline); its tree lists the weights, configs and tokenizer"},
    {"id": "musicgen-stereo-small", "title": "MusicGen stereo small (300M, stereo)",
     "rev": "9520631640f24f25ae1dc16e42de5c6b83c32843", "weights": {"model.safetensors": ""},
     "source": "revision: Hub tree page (9 commits); model.safetensors holds float16 weights (1.22 GB)"},
    {"id": "musicgen-stereo-medium", "title": "MusicGen stereo medium (1.5B, stereo)",
     "rev": "6fd994568047ae22eff300408c49bbdb5a812577", "weights": {"model.safetensors": ""},
     "source": "revision: a main commit after 'Add HF Weights (#1)' (Hub blob page of tokenizer.json); "
               "model.safetensors holds float16 weights (4.07 GB)"},
    {"id": "musicgen-stereo-large", "title": "MusicGen stereo large (3.3B, stereo)",
     "rev": "2be1dd44de5d8ec3097a2144dbc5922039e67fd0",
     "weights": {"model-00001-of-00002.safetensors": "2cdfc42b238184fe9b0d9690cc9681e5f4b06826c90ff533ba6e7031fb7cb25d",
                 "model-00002-of-00002.safetensors": "e011bbf8f4e0729f47f4bdaac10e3398fb59bb0833c02a5707ef618ccdeb1173",
                 "model.safetensors.index.json": ""},
     "source": "revision: Hub tree page (8 commits); shard 1 oid: Hub LFS details of the weights commit (7f233ff); "
               "shard 2 oid: a duplicate of this repo (same 1.93 GB shard, unchanged since 'Add HF Weights (#1)')"},
    {"id": "musicgen-stereo-melody", "title": "MusicGen stereo melody (1.5B, stereo, text + melody)",
     "rev": "022c3bd20a7d77e7c014082f0391bcbcd3940a7a", "melody": True,
     "weights": {"model-00001-of-00002.safetensors": "",
                 "model-00002-of-00002.safetensors": "95932e81bf5b2b02777a245a42dc65b9ab13362460ae77f7a1c3c0b50737e3c6",
                 "model.safetensors.index.json": ""},
     "source": "revision: main head 'Upload MusicgenMelodyForConditionalGeneration (#4)'; shard 2 oid: Hub LFS "
               "details on main at this commit"},
    {"id": "musicgen-stereo-melody-large", "title": "MusicGen stereo melody large (3.3B, stereo, text + melody)",
     "rev": "695b0f6bbdd736edea7dc0fbafcf2fdd4d6cc9d2", "melody": True,
     "weights": {"model-00001-of-00003.safetensors": "", "model-00002-of-00003.safetensors": "",
                 "model-00003-of-00003.safetensors": "", "model.safetensors.index.json": ""},
     "source": "revision: Hub tree page (5 commits: weights #2 and processor #3 merged)"},
]

ENGINES: list[EngineEntry] = [MUSICGEN]
MODELS: list[ModelRecord] = []
MISSING_FACTS: dict[str, list[str]] = {}
"""model id -> what could not be looked up offline: files without a published byte size
(size 0) or without a sha256 (``""``). The model manager cannot verify such files; fill
them in (``huggingface_hub.HfApi().get_paths_info(repo, paths, revision=...)`` gives both)
before shipping."""

for _r in _RECORDS:
    _names = list(_TEXT_FILES) + (["preprocessor_config.json"] if _r.get("melody") else []) + list(_r["weights"])
    _files = tuple(ModelFile(n, _r["weights"].get(n, ""), 0) for n in _names)
    MODELS.append(ModelRecord(
        id=_r["id"], engine=MUSICGEN.id, title=_r["title"], licence=LICENCE, files=_files,
        hf_repo=f"facebook/{_r['id']}", revision=_r["rev"], homepage=f"https://huggingface.co/facebook/{_r['id']}",
        notes=f"{PAPER} Weights CC-BY-NC 4.0 (non-commercial). Facts: {_r['source']}.", sample_rate=32000,
    ))
    MISSING_FACTS[_r["id"]] = ([f"{f.filename}: size" for f in _files if not f.size]
                               + [f"{f.filename}: sha256" for f in _files if not f.sha256])
