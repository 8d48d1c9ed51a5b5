"""ACE-Step 1.5 engines and models. Torch-free: read by :mod:`engines.registry`.

* ``acestep``: generate, extend, inpaint (repaint), add a stem (lego / complete) and
  restyle (cover) with ACE-Step 1.5 through diffusers' ``AceStepPipeline`` modules and our
  own sampling loop (:mod:`engines.generation.acestep.sampler`).
* ``acestep-extract``: ACE-Step's ``extract`` task as a separation engine, one named stem
  per run (the stems are the model record's ``outputs``).

Models (Hub, MIT licence): ``ACE-Step/acestep-v15-xl-turbo-diffusers`` (default; 8 steps,
guidance distilled), ``ACE-Step/acestep-v15-base`` and ``ACE-Step/acestep-v15-sft`` (CFG with
APG, 30-60 steps; lego, complete and extract are trained on base). They are whole-repository
snapshots (diffusers folders, :mod:`engines.hub`): the Hub gives the file list, sizes and
sha256 at download time and the lock record pins the commit, which the engine writes into
provenance. The records do not pin a revision yet (the commits were not findable offline): a
download resolves ``main`` and its lock record pins the commit.
"""
from __future__ import annotations

from typing import Any

from engines.base.tasks import ADD_STEM, EXTEND, GENERATE, INPAINT, RESTYLE, SEPARATE
from engines.records import EngineEntry, ModelRecord

MODEL_RATE = 48000
"""ACE-Step 1.5's VAE sample rate in Hz (``vae/config.json``: ``sampling_rate``)."""

TRACK_NAMES: tuple[str, ...] = (
    "vocals", "backing_vocals", "drums", "bass", "guitar", "keyboard", "percussion", "strings", "synth", "fx",
    "brass", "woodwinds",
)
"""The stems ACE-Step 1.5 was trained to extract and add (``acestep/constants.py``: ``TRACK_NAMES``)."""

DEFAULT_MODEL = "acestep-v15-xl-turbo"
BASE_MODEL = "acestep-v15-base"

_SAMPLING: dict[str, Any] = {
    "steps": {"type": ["integer", "null"], "default": None, "minimum": 1, "maximum": 200, "title": "Steps",
              "description": "Diffusion steps; empty = the model's own (8 for turbo, 32 for base and sft). "
                             "More steps: slower, usually cleaner (base/sft only)."},
    "guidance": {"type": ["number", "null"], "default": None, "minimum": 1.0, "maximum": 15.0,
                 "title": "Guidance (CFG)",
                 "description": "How strictly to follow the prompt (adaptive projected guidance); empty = 7 on "
                                "base and sft. Turbo models have guidance built in and ignore it."},
    "guidance_start": {"type": "number", "default": 0.0, "minimum": 0.0, "maximum": 1.0, "title": "Guidance from",
                       "description": "Fraction of the schedule where guidance starts (0 = first step)."},
    "guidance_end": {"type": "number", "default": 1.0, "minimum": 0.0, "maximum": 1.0, "title": "Guidance until",
                     "description": "Fraction of the schedule where guidance stops (1 = last step)."},
    "shift": {"type": "number", "default": 3.0, "exclusiveMinimum": 0.0, "maximum": 10.0, "title": "Schedule shift",
              "description": "Timestep shift of the flow-matching schedule (1, 2 or 3 as trained; 3 = more time "
                             "on the coarse structure)."},
    "decode_tile_seconds": {"type": "number", "default": 20.0, "minimum": 2.0, "maximum": 600.0,
                            "title": "Decode tile (s)",
                            "description": "Length of the pieces the audio decoder works on; smaller uses less "
                                           "GPU memory. Halved automatically after an out-of-memory error."},
    "encode_tile_seconds": {"type": "number", "default": 30.0, "minimum": 4.0, "maximum": 600.0,
                            "title": "Encode tile (s)",
                            "description": "Length of the pieces the audio encoder reads the source in."},
}

_ACESTEP_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {
        **_SAMPLING,
        "keep_context": {"x-tasks": [EXTEND, INPAINT], "type": "number", "default": 0.5, "minimum": 0.0, "maximum": 1.0,
                         "title": "Hold the surrounding audio",
                         "description": "Extend and inpaint: the fraction of steps during which the audio around "
                                        "the new material is re-imposed (noised to each step's level), so the new "
                                        "part grows out of it. 0 = free, 1 = held to the end (ACE-Step 1.5 "
                                        "repaint injection)."},
        "latent_crossfade_frames": {"x-tasks": [EXTEND, INPAINT], "type": "integer", "default": 12, "minimum": 0, "maximum": 50,
                                    "title": "Seam blend (frames)",
                                    "description": "Extend and inpaint: width of the blend between the new and the "
                                                   "original material in the model's latent space, in 40 ms frames "
                                                   "(ACE-Step 1.5 repaint boundary blend)."},
        "crossfade_ms": {"x-tasks": [EXTEND, INPAINT], "type": "number", "default": 25.0, "minimum": 0.0, "maximum": 2000.0, "title": "Crossfade (ms)",
                         "description": "Extend and inpaint: crossfade inside the new material where it meets the "
                                        "original audio (the original itself is never changed)."},
        "match_loudness": {"x-tasks": [EXTEND, RESTYLE], "type": "boolean", "default": True, "title": "Match loudness",
                           "description": "Extend and restyle: match the new audio's loudness (ITU-R BS.1770) to "
                                          "the source. Inpaint follows the job's own 'match loudness' choice."},
        "context_seconds": {"x-tasks": [], "type": "number", "default": 30.0, "minimum": 1.0, "maximum": 570.0,
                            "title": "Context (s)",
                            "description": "Extend: how much of the clip the model hears next to the new material."},
        "stem_mode": {"x-tasks": [ADD_STEM], "type": "string", "default": "lego", "enum": ["lego", "complete"], "title": "Add-stem mode",
                      "description": "lego: generate only the chosen instrument over the context; complete: let the "
                                     "model complete the arrangement with it."},
        "cover_conditioning": {"x-tasks": [RESTYLE], "type": "number", "default": 1.0, "minimum": 0.0, "maximum": 1.0,
                               "title": "Keep melody and rhythm",
                               "description": "Restyle: how much the source's melody and rhythm (its semantic "
                                              "codes) steer the result; 0 = prompt only."},
    },
}

_CONTROLS: dict[str, Any] = {
    "control_from": {"type": "number", "default": 0.5, "minimum": 0.0, "maximum": 1.0, "title": "Controls steer from",
                     "description": "Melody, dynamics and rhythm controls: the point of the generation (0 = the "
                                    "first step, 1 = the end) from which they steer the music. The middle of the "
                                    "generation is where steering works best."},
    "control_until": {"type": "number", "default": 0.75, "minimum": 0.0, "maximum": 1.0,
                      "title": "Controls steer until",
                      "description": "Controls: the point of the generation after which they stop steering."},
    "control_every": {"type": "integer", "default": 2, "minimum": 1, "maximum": 50, "title": "Steer every N steps",
                      "description": "Controls: steer on every N-th step between those points (1 = every step: "
                                     "follows the controls more closely, slower)."},
    "control_nudges": {"type": "integer", "default": 1, "minimum": 0, "maximum": 10, "title": "Nudges per step",
                       "description": "Controls: how many small corrections each steering step makes. Each one "
                                      "costs about five decodes of the controlled part of the audio: 2 or 3 follow "
                                      "the controls more closely, slower; 0 = measure only."},
    "control_step_size": {"type": "number", "default": 0.3, "minimum": 0.0, "maximum": 2.0,
                          "title": "Nudge size",
                          "description": "Controls: how far one correction moves the music. Each control's own "
                                         "strength scales it."},
    "control_precise": {"type": "boolean", "default": False, "title": "Precise controls (slower)",
                        "description": "Controls: also reshape the starting noise to fit the controls before "
                                       "generating (DITTO). Follows the controls more closely; each refinement "
                                       "costs about three generation steps."},
    "control_precise_steps": {"type": "integer", "default": 4, "minimum": 1, "maximum": 50,
                              "title": "Precise refinements",
                              "description": "Precise controls: how many times the starting noise is refined."},
    "control_rhythm_loss": {"type": "string", "default": "mse", "enum": ["mse", "bce"], "title": "Rhythm match",
                            "description": "How the rhythm control compares onsets: mse (squared error of the "
                                           "onset curve) or bce (cross-entropy: harder on missing onsets)."},
    "compare_unguided": {"type": "boolean", "default": False, "title": "Compare with an unguided take",
                         "description": "With controls: also generate each take without them (same seed) and "
                                        "report how closely both follow the controls. Takes twice as long."},
}

_ACESTEP_PARAMS["properties"].update(_CONTROLS)

_EXTRACT_PARAMS: dict[str, Any] = {"type": "object", "properties": dict(_SAMPLING)}

ACESTEP = EngineEntry(
    id="acestep", target="engines.generation.acestep.engine:AceStepEngine",
    tasks=(GENERATE, EXTEND, INPAINT, ADD_STEM, RESTYLE),
    title="ACE-Step 1.5",
    description="Music generation at 48 kHz (MIT): generate with lyrics, extend, inpaint, add a stem, restyle.",
    models=(DEFAULT_MODEL, BASE_MODEL, "acestep-v15-sft"), param_schema=_ACESTEP_PARAMS, accepts_model_path=True,
)
ACESTEP_EXTRACT = EngineEntry(
    id="acestep-extract", target="engines.generation.acestep.engine:AceStepExtractEngine", tasks=(SEPARATE,),
    title="ACE-Step 1.5 extract",
    description="Generative stem extraction with ACE-Step 1.5 base (MIT): one named stem per run.",
    models=(BASE_MODEL,), param_schema=_EXTRACT_PARAMS, accepts_model_path=True,
)

ENGINES: list[EngineEntry] = [ACESTEP, ACESTEP_EXTRACT]

_HOME = "https://github.com/ace-step/ACE-Step-1.5"
_PAPER = "ACE-Step Team, ACE-Step 1.5: Pushing the Boundaries of Open-Source Music Generation, arXiv:2602.00744."
MODELS: list[ModelRecord] = [
    ModelRecord(
        id=DEFAULT_MODEL, engine="acestep", title="ACE-Step 1.5 XL turbo (8 steps)", licence="MIT",
        hf_repo="ACE-Step/acestep-v15-xl-turbo-diffusers", revision=None, homepage=_HOME,
        notes=f"{_PAPER} Guidance-distilled 4.7B DiT, 8 steps.", sample_rate=MODEL_RATE,
    ),
    ModelRecord(
        id=BASE_MODEL, engine="acestep", title="ACE-Step 1.5 base (CFG, lego/complete/extract)", licence="MIT",
        hf_repo="ACE-Step/acestep-v15-base", revision=None, homepage=_HOME,
        notes=f"{_PAPER} Base DiT with CFG/APG; needed for add-stem (lego, complete) and extract.",
        outputs=TRACK_NAMES, sample_rate=MODEL_RATE,
    ),
    ModelRecord(
        id="acestep-v15-sft", engine="acestep", title="ACE-Step 1.5 SFT (CFG, 30-60 steps)", licence="MIT",
        hf_repo="ACE-Step/acestep-v15-sft", revision=None, homepage=_HOME,
        notes=f"{_PAPER} Supervised fine-tune of base; strongest lyric adherence.",
        sample_rate=MODEL_RATE,
    ),
]
