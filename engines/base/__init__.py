"""Job types shared by the studio core, the engine host and every engine.

This package is the whole contract between ``studio/`` and the engines. It imports
nothing heavier than numpy: no torch, no Qt, no model library.

* :class:`Engine` - the protocol every engine implements (``load``/``unload``/``run``).
* :class:`JobSpec` and one subclass per task (:class:`SeparateSpec`, :class:`GenerateSpec`,
  :class:`ExtendSpec`, :class:`InpaintSpec`, :class:`ConvertVoiceSpec`,
  :class:`TranscribeSpec`, :class:`AnalyzeSpec`) - what to do.
* :class:`JobResult` and :class:`Provenance` - what came out, and where it came from.
* :class:`ProgressReporter` / :data:`ProgressCallback` - fraction, stage and ETA.
* :class:`CancelToken` - cooperative cancel, checked by engines at chunk boundaries.
* :class:`EngineError` and subclasses - typed errors with a user-facing ``hint``.

Conventions: audio is numpy float32 shaped ``(channels, frames)`` and always travels
with its sample rate; positions are integer samples. Specs and results are
JSON-serialisable through ``to_dict()``/``from_dict()`` so they can cross the process
boundary to the engine host; large audio should cross as WAV file paths, not arrays
(arrays are allowed in-process and are encoded as nested lists when they must cross).
"""
from engines.base.audio import load_audio, sha256_audio, write_output
from engines.base.engine import Engine, EngineBase, resolve_params
from engines.base.errors import (ChecksumMismatch, EngineError, EngineNotFound, HostCrashed, HostNotResponding,
                                 InvalidJob,
                                 JobCancelled, ModelDownloadError, ModelNotInstalled, OutOfMemory, UserError,
                                 error_from_dict, is_out_of_memory, register_error_type)
from engines.base.progress import CancelToken, ProgressCallback, ProgressReporter
from engines.base.results import JobResult, Provenance
from engines.base.specs import (AddStemSpec, AnalyzeSpec, ControlTarget, ConvertVoiceSpec, ExtendSpec, GenerateSpec,
                                InpaintSpec, JobSpec, MusicSpec, RestyleSpec, SeparateSpec, TranscribeSpec, spec_class)
from engines.base.tasks import (ADD_STEM, ANALYZE, CONVERT_VOICE, EXTEND, GENERATE, GENERATIVE_TASKS, INPAINT, RESTYLE,
                                SEPARATE, TASKS, TRANSCRIBE)
from engines.files import sha256_file

__all__ = [
    "load_audio",
    "sha256_audio",
    "write_output",
    "Engine",
    "EngineBase",
    "resolve_params",
    "ChecksumMismatch",
    "EngineError",
    "EngineNotFound",
    "HostCrashed",
    "HostNotResponding",
    "InvalidJob",
    "JobCancelled",
    "ModelDownloadError",
    "ModelNotInstalled",
    "OutOfMemory",
    "UserError",
    "error_from_dict",
    "is_out_of_memory",
    "register_error_type",
    "CancelToken",
    "ProgressCallback",
    "ProgressReporter",
    "JobResult",
    "Provenance",
    "AddStemSpec",
    "AnalyzeSpec",
    "ControlTarget",
    "ConvertVoiceSpec",
    "ExtendSpec",
    "GenerateSpec",
    "InpaintSpec",
    "JobSpec",
    "MusicSpec",
    "RestyleSpec",
    "SeparateSpec",
    "TranscribeSpec",
    "spec_class",
    "ADD_STEM",
    "ANALYZE",
    "CONVERT_VOICE",
    "EXTEND",
    "GENERATE",
    "GENERATIVE_TASKS",
    "INPAINT",
    "RESTYLE",
    "SEPARATE",
    "TASKS",
    "TRANSCRIBE",
    "sha256_file",
]
