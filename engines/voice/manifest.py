"""Voice conversion engines and their models: RVC v1/v2 voice models with ContentVec features
and FCPE or RMVPE pitch. Torch-free: read by :mod:`engines.registry` to list engines and models.

The voice models themselves (``.pth`` + ``.index``) are not model records: musicians bring
them, and the voices library (``studio/voices.py``) keeps them. The records here are the
shared parts every voice needs: the ContentVec embedder and the optional RMVPE weights
(the FCPE pitch tracker ships inside the torchfcpe wheel).
"""
from __future__ import annotations

from typing import Any

from engines.base.tasks import CONVERT_VOICE
from engines.records import EngineEntry, ModelFile, ModelRecord

RVC_ASSETS_REPO = "lj1995/VoiceConversionWebUI"
RVC_ASSETS_REVISION = "e6d0c1a17da07c33557852f9dfa2bd44cc75737d"
CONTENTVEC_MODEL_ID = "contentvec-rvc"
RMVPE_MODEL_ID = "rmvpe"
CONTENTVEC_SUBFOLDER = "hubert_base"
RMVPE_FILENAME = "rmvpe.pt"

RVC_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pitch_method": {
            "type": "string", "enum": ["fcpe", "rmvpe"], "default": "fcpe", "title": "Pitch tracker",
            "description": "How the singer's pitch is followed: FCPE works offline; RMVPE is steadier on "
                           "breathy or noisy vocals but needs a 181 MB download."},
        "index_rate": {
            "type": "number", "default": 0.75, "minimum": 0.0, "maximum": 1.0, "title": "Voice index strength",
            "description": "How much the sound leans on the voice's index file (its training recordings): higher "
                           "sounds more like the target voice, lower keeps more of the singer's articulation. "
                           "Ignored when the voice has no index."},
        "protect": {
            "type": "number", "default": 0.33, "minimum": 0.0, "maximum": 0.5, "title": "Protect consonants",
            "description": "Keeps breaths and consonants (unpitched sounds) closer to the original to avoid "
                           "artefacts; 0.5 turns the protection off, lower protects more."},
        "filter_radius": {
            "type": "integer", "default": 3, "minimum": 0, "maximum": 7, "title": "Pitch smoothing",
            "description": "Length in 10 ms steps of a median filter on the pitch curve, which removes short "
                           "pitch glitches; below 3 = off."},
        "rms_mix_rate": {
            "type": "number", "default": 0.25, "minimum": 0.0, "maximum": 1.0, "title": "Loudness from the model",
            "description": "0 = the result follows the loudness of the original vocal moment by moment; "
                           "1 = it keeps the loudness the voice model produces."},
        "speaker_id": {
            "type": "integer", "default": 0, "minimum": 0, "title": "Speaker",
            "description": "Which speaker of a multi-speaker voice model to use (most voices have one: 0)."},
    },
    "additionalProperties": False,
}

RVC = EngineEntry(
    id="rvc", target="engines.voice.engine:RvcEngine", tasks=(CONVERT_VOICE,),
    title="RVC voice conversion",
    description="Converts a vocal to a target voice with an RVC v1/v2 voice model (.pth, optional .index); "
                "ContentVec features, FCPE or RMVPE pitch.",
    models=(CONTENTVEC_MODEL_ID, RMVPE_MODEL_ID), param_schema=RVC_PARAMS, accepts_model_path=True,
)

ENGINES: list[EngineEntry] = [RVC]
MODELS: list[ModelRecord] = [
    ModelRecord(
        id=CONTENTVEC_MODEL_ID, engine="rvc", title="ContentVec (HuBERT-Base) for RVC, transformers format",
        licence="MIT",
        files=(
            ModelFile(f"{CONTENTVEC_SUBFOLDER}/config.json",
                      "0346950779dfb7f9316fa74ed846e2b8a22a08eedfdc5387b73f327cb1a4a7cf", 1492),
            ModelFile(f"{CONTENTVEC_SUBFOLDER}/preprocessor_config.json",
                      "7c1976a680fb7acc757cd36fb08eef878fa36c70b4c9d2d595df9c608bbbbf0e", 225),
            ModelFile(f"{CONTENTVEC_SUBFOLDER}/pytorch_model.bin",
                      "cc8c20f4b90a520757260197a3ff2505705a7adbd20ad9eeaa4e1a9b38442ef5", 189206711),
        ),
        hf_repo=RVC_ASSETS_REPO, revision=RVC_ASSETS_REVISION,
        homepage="https://github.com/auspicious3000/contentvec",
        notes="Qian et al., ContentVec, ICML 2022: the official RVC's transformers conversion (HubertModel + "
              "final_proj). lengyue233/content-vec-best (MIT) works too, as a local folder (model path).",
        sample_rate=16000,
    ),
    ModelRecord(
        id=RMVPE_MODEL_ID, engine="rvc", title="RMVPE vocal pitch tracker (optional)", licence="MIT",
        files=(ModelFile(RMVPE_FILENAME, "6d62215f4306e3ca278246188607209f09af3dc77ed4232efdd069798c4ec193",
                         181184272),),
        hf_repo=RVC_ASSETS_REPO, revision=RVC_ASSETS_REVISION,
        homepage="https://github.com/Dream-High/RMVPE",
        notes="Wei et al., RMVPE, Interspeech 2023 (code Apache-2.0; RVC's weights, MIT repository). Optional: "
              "the FCPE tracker in the torchfcpe wheel works offline.",
        sample_rate=16000,
    ),
]
