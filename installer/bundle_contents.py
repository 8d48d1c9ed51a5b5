"""What the desktop bundle must contain beyond what PyInstaller finds by itself.

Read by ``installer/seed-studio.spec`` (to collect) and, as ``bundle_check.json`` inside the
bundle, by ``installer/rthooks/pyi_rth_seed_studio.py`` (to prove, from inside the bundle,
that each item imports). Plain data; no imports.

Engines import their libraries lazily (inside functions) and those libraries load their
own modules by name at run time (``transformers`` and ``diffusers`` are lazy modules, a
Hub checkpoint names its classes in a JSON file, ``import_without_torchaudio`` imports by
string), so static analysis misses them.
"""

# Our own packages, every module (engines are imported by the names in their manifests).
OWN_PACKAGES = ["studio", "engines", "ui"]
OWN_EXCLUDED_PREFIXES = ["engines.testing", "tests"]

# Shipped as .py files (with byte-code) instead of inside the archive: transformers'
# @auto_docstring splits each function's source path and fails on the archive's relative
# paths (IndexError at import of any model class); diffusers' loaders import those models.
SOURCE_PACKAGES = ["transformers", "diffusers"]

# Sub-packages of transformers' ``models`` that the engines reach: MusicGen (+ melody: T5
# text encoder, EnCodec audio codec), RVC's ContentVec (HuBERT), ACE-Step's text encoder
# and tokenizer (Qwen3 / Qwen2 tokenizer), AutoTokenizer/AutoConfig (auto), and what
# diffusers' own modules import from transformers at import time.
TRANSFORMERS_MODELS = [
    "auto", "encodec", "encoder_decoder", "hubert", "musicgen", "musicgen_melody", "t5", "qwen2", "qwen3",
    "siglip", "dinov2_with_registers", "vit_mae", "clip", "umt5", "wav2vec2",
]

# diffusers: everything except the pipelines, of which only ACE-Step's and the loaders.
DIFFUSERS_PIPELINES = ["ace_step", "pipeline_utils", "pipeline_loading_utils", "onnx_utils", "auto_pipeline"]

# Packages collected whole (every module on disk), and packages whose data files are
# collected (model weights shipped in wheels, dependency tables read at run time).
WHOLE_PACKAGES = ["basic_pitch", "torchfcpe", "beat_this", "essentia", "librosa", "pretty_midi", "mir_eval",
                  "pyloudnorm", "soxr", "resampy", "pedalboard", "mido", "jsonschema_specifications"]
DATA_PACKAGES = ["basic_pitch", "torchfcpe", "beat_this", "librosa", "pretty_midi", "jsonschema_specifications",
                 "kernels"]
# Single modules (and what they import): demucs' model classes, not its command line, API
# or training code (demucs.api would pull sphn, 80 MB, that the app never uses).
MODULES = ["demucs.htdemucs", "demucs.hdemucs", "demucs.demucs", "demucs.apply", "demucs.states"]

# "module:attribute" that must import inside the bundle (the bundle check imports each;
# an attribute of a lazy module is the way to make it load the real submodule). A leading
# "~" imports the module as the engines do, through
# engines.analysis._compat.import_without_torchaudio (the app ships no torchaudio).
LAZY_IMPORTS = [
    "transformers:MusicgenForConditionalGeneration",
    "transformers:MusicgenMelodyForConditionalGeneration",
    "transformers:HubertModel",
    "transformers:AutoTokenizer",
    "transformers:AutoConfig",
    "transformers:T5EncoderModel",
    "transformers:T5TokenizerFast",
    "transformers:EncodecModel",
    "transformers:Qwen3Model",
    "transformers:Qwen2TokenizerFast",
    "transformers.audio_utils:chroma_filter_bank",
    "transformers.utils.logging:set_verbosity_error",
    "diffusers:AceStepPipeline",
    "diffusers:AutoencoderOobleck",
    "diffusers:FlowMatchEulerDiscreteScheduler",
    "diffusers.utils.torch_utils:randn_tensor",
    "diffusers.guiders.adaptive_projected_guidance:MomentumBuffer",
    "demucs.htdemucs:HTDemucs",
    "demucs.hdemucs:HDemucs",
    "demucs.demucs:Demucs",
    "demucs.apply:BagOfModels",
    "demucs.states:set_state",
    "basic_pitch.inference:predict",
    "basic_pitch.note_creation:model_output_to_notes",
    "basic_pitch:ICASSP_2022_MODEL_PATH",
    "~torchfcpe.models_infer:InferCFNaiveMelPE",
    "~torchfcpe.tools:DotDict",
    "~beat_this.model.beat_tracker:BeatThis",
    "~beat_this.model.postprocessor:Postprocessor",
    "~beat_this.inference:split_predict_aggregate",
    "~beat_this.utils:replace_state_dict_key",
    "essentia.standard:RhythmExtractor2013",
    "librosa:load",
    "librosa.feature:chroma_cqt",
    "onnxruntime:InferenceSession",
    "safetensors:safe_open",
    "huggingface_hub:hf_hub_download",
    "mir_eval.melody:raw_pitch_accuracy",
    "pedalboard.io:AudioFile",
    "pedalboard.io:AudioStream",
    "pyloudnorm:Meter",
]

# Never in the bundle: test tools and what only the tests or benchmarks use.
EXCLUDES = ["tkinter", "_tkinter", "pytest", "_pytest", "xdist", "pytestqt", "pytest_timeout", "faiss", "museval",
            "musdb", "stempeg", "IPython", "matplotlib", "tensorboard", "torch.utils.tensorboard", "tensorflow",
            "engines.testing", "tests", "sphn", "demucs.api", "demucs.separate", "demucs.train",
            "PyQt6.QtWebEngineCore", "PyQt6.QtWebEngineWidgets", "PyQt6.QtQuick", "PyQt6.QtQml",
            "PyQt6.QtMultimedia", "PyQt6.Qt3DCore", "PyQt6.QtDesigner"]

# Where the build looks for the GM SoundFont it ships (first found; SEED_STUDIO_BUNDLE_SOUNDFONT wins).
SOUNDFONT_CANDIDATES = [
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",       # Debian/Ubuntu fluid-soundfont-gm
    "/usr/share/soundfonts/FluidR3_GM.sf2",       # Fedora fluid-soundfont-gm, Arch soundfont-fluid
    "/opt/homebrew/share/soundfonts/FluidR3_GM.sf2",
    "/usr/local/share/soundfonts/FluidR3_GM.sf2",
]

# The libraries Qt's xcb platform plugin needs beyond a base X11 desktop (install.sh installs
# them on the build machine; the bundle ships them so a musician's desktop needs none of them).
QT_XCB_LIBRARIES = ["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-image.so.0",
                    "libxcb-render-util.so.0", "libxkbcommon-x11.so.0", "libxkbcommon.so.0"]
