"""Analysis engines and their models: basic-pitch (audio to MIDI), tempo/beats/key, FCPE melody.
Torch-free: read by :mod:`engines.registry` to list engines and models.
"""
from __future__ import annotations

from typing import Any

from engines.base.tasks import ANALYZE, TRANSCRIBE
from engines.records import EngineEntry, ModelFile, ModelRecord


BEAT_THIS_MODEL_ID = "beat-this-final0"

BASIC_PITCH_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "onset_threshold": {"type": "number", "default": 0.5, "minimum": 0.0, "maximum": 1.0,
                            "title": "Onset threshold",
                            "description": "Minimum onset activation to start a note; higher = fewer notes."},
        "frame_threshold": {"type": "number", "default": 0.3, "minimum": 0.0, "maximum": 1.0,
                            "title": "Frame threshold",
                            "description": "Minimum frame activation to sustain a note; higher = shorter notes."},
        "minimum_note_length_ms": {"type": "number", "default": 127.7, "minimum": 0.0,
                                   "title": "Minimum note length (ms)",
                                   "description": "Notes shorter than this are dropped."},
        "minimum_frequency": {"type": ["number", "null"], "default": None, "exclusiveMinimum": 0,
                              "title": "Lowest frequency (Hz)", "description": "Ignore notes below; empty = no limit."},
        "maximum_frequency": {"type": ["number", "null"], "default": None, "exclusiveMinimum": 0,
                              "title": "Highest frequency (Hz)", "description": "Ignore notes above; empty = no limit."},
        "pitch_bends": {"type": "boolean", "default": True, "title": "Pitch bends",
                        "description": "Estimate pitch bends for each note."},
        "melodia_trick": {"type": "boolean", "default": True, "title": "Melodia post-processing",
                          "description": "basic-pitch's post-processing that completes faint notes."},
    },
    "additionalProperties": False,
}

ANALYSIS_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "beat_tracker": {"type": "string", "enum": ["auto", "beat_this", "dsp"], "default": "auto",
                         "title": "Beat tracker",
                         "description": "auto = Beat This! when its model is installed, else the offline DSP tracker."},
        "tempo_estimator": {"type": "string", "enum": ["ensemble", "acf"], "default": "ensemble",
                            "title": "Tempo estimator (DSP tracker)",
                            "description": "ensemble = the tempo most of several estimators agree on (onset "
                                           "autocorrelation, Percival, multi-feature), with a confidence value; "
                                           "acf = the onset autocorrelation alone (the earlier estimator)."},
        "min_bpm": {"type": "number", "default": 70.0, "exclusiveMinimum": 0, "title": "Lowest tempo (BPM)",
                    "description": "DSP tracker: lowest tempo considered."},
        "max_bpm": {"type": "number", "default": 180.0, "exclusiveMinimum": 0, "title": "Highest tempo (BPM)",
                    "description": "DSP tracker: highest tempo considered."},
        "key_profile": {"type": "string", "enum": ["krumhansl", "temperley"], "default": "krumhansl",
                        "title": "Key profile", "description": "Key profiles for the Krumhansl-Schmuckler method."},
    },
    "additionalProperties": False,
}

MELODY_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "f0_min": {"type": "number", "default": 32.7, "exclusiveMinimum": 0, "title": "Lowest F0 (Hz)",
                   "description": "Frames below are unvoiced."},
        "f0_max": {"type": "number", "default": 1975.5, "exclusiveMinimum": 0, "title": "Highest F0 (Hz)",
                   "description": "Frames above are unvoiced."},
        "threshold": {"type": "number", "default": 0.006, "minimum": 0.0, "maximum": 1.0,
                      "title": "Voicing threshold", "description": "FCPE salience threshold for voiced frames."},
        "min_note_seconds": {"type": "number", "default": 0.06, "minimum": 0.0, "title": "Minimum note (s)",
                             "description": "Shorter pitch runs merge into the previous note."},
        "pitch_bends": {"type": "boolean", "default": False, "title": "Pitch bends",
                        "description": "Attach the F0 deviation from each note's pitch as pitch bends."},
    },
    "additionalProperties": False,
}

BASIC_PITCH = EngineEntry(id="basic-pitch", target="engines.analysis.engine:BasicPitchEngine", tasks=(TRANSCRIBE,),
    title="basic-pitch (audio to MIDI)",
    description="Polyphonic note transcription with Spotify's basic-pitch model (ONNX, CPU).",
    models=("basic-pitch-icassp2022",), param_schema=BASIC_PITCH_PARAMS, offline=True)
MUSIC_ANALYSIS = EngineEntry(id="music-analysis", target="engines.analysis.engine:MusicAnalysisEngine", tasks=(ANALYZE,),
    title="Tempo, beats and key",
    description="Tempo, beats, downbeats, time signature (Beat This! or DSP) and key (Krumhansl-Schmuckler).",
    models=(BEAT_THIS_MODEL_ID,), param_schema=ANALYSIS_PARAMS, offline=True)
FCPE_MELODY = EngineEntry(id="fcpe-melody", target="engines.analysis.engine:MelodyEngine", tasks=(ANALYZE, TRANSCRIBE),
    title="Melody F0 (FCPE)",
    description="Monophonic F0 with FCPE; as a pitch curve (analyze) or as notes (transcribe).",
    models=("fcpe-bundled",), param_schema=MELODY_PARAMS, offline=True)


ENGINES: list[EngineEntry] = [BASIC_PITCH, MUSIC_ANALYSIS, FCPE_MELODY]

MODELS: list[ModelRecord] = [
    ModelRecord(id="basic-pitch-icassp2022", engine="basic-pitch", title="basic-pitch ICASSP 2022 (ONNX)",
                licence="Apache-2.0", files=(), homepage="https://github.com/spotify/basic-pitch",
                notes="Ships inside the basic-pitch wheel (saved_models/icassp_2022/nmp.onnx); no download."),
    ModelRecord(id=BEAT_THIS_MODEL_ID, engine="music-analysis", title="Beat This! final0", licence="MIT",
                files=(ModelFile(filename="final0.ckpt",
                                 sha256="8c328b45f59d8dd3dff219253ff6a8d6482be57d0133a29140e2febbf8eb8331",
                                 size=81_058_141,
                                 url="https://cloud.cp.jku.at/public.php/dav/files/7ik4RrBKTS273gp/final0.ckpt"),),
                homepage="https://github.com/CPJKU/beat_this",
                notes="Foscarin, Schlueter, Widmer, ISMIR 2024. Optional: without it the offline DSP tracker runs."),
    ModelRecord(id="fcpe-bundled", engine="fcpe-melody", title="FCPE fcpe_c_v001", licence="MIT", files=(),
                homepage="https://github.com/CNChTu/FCPE",
                notes="Ships inside the torchfcpe wheel (assets/fcpe_c_v001.pt); no download."),
]
