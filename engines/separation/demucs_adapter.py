"""Thin adapter over the ``demucs`` library: build and load HT-Demucs models safely.

* :data:`MODELS` - the three supported pretrained models (htdemucs, htdemucs_ft,
  htdemucs_6s): their sources, bag signatures and weight files.
* :func:`full_size_htdemucs` - the published htdemucs architecture (41.98 M parameters)
  with random weights, for speed measurements.
* :func:`tiny_htdemucs` - a tiny random-weight instance of the real class, for tests.
* :func:`load_pretrained` - load a model (or the fine-tuned bag) from a folder of model
  files without ever unpickling arbitrary objects: safetensors files (the layout of the
  models on the HuggingFace hub used by demucs >= 4.1) or the legacy ``.th`` packages via
  ``torch.load(weights_only=True)`` with an allow-list of the demucs model classes.

The model classes are the library's (``demucs.htdemucs.HTDemucs``,
``demucs.apply.BagOfModels``); nothing of the model is reimplemented here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from engines.base import InvalidJob, ModelNotInstalled

SOURCES_4 = ["drums", "bass", "other", "vocals"]
SOURCES_6 = ["drums", "bass", "other", "vocals", "guitar", "piano"]

HTDEMUCS_SEGMENT = Fraction(39, 5)
"""Training segment of the released HT-Demucs models: 7.8 s."""

FULL_SIZE_KWARGS: dict[str, Any] = {
    "audio_channels": 2,
    "channels": 48,
    "depth": 4,
    "nfft": 4096,
    "dconv_mode": 3,
    "dconv_comp": 8,
    "bottom_channels": 512,
    "t_layers": 5,
    "t_heads": 8,
    "samplerate": 44100,
    "segment": HTDEMUCS_SEGMENT,
}
"""Hyper-parameters of the released htdemucs (Défossez 2023, demucs ``grids/mmi.py``:
depth 4, dconv_mode 3, 5 transformer layers, 512 bottom channels, 7.8 s segment)."""


@dataclass(frozen=True)
class DemucsModelInfo:
    """One pretrained HT-Demucs model.

    Attributes:
        name: demucs model name (``htdemucs``...).
        sources: stem names in model order.
        signatures: bag member signatures (demucs ``remote/<name>.yaml``).
        weights: per-member, per-source bag weights (None = equal).
        files: legacy weight file names ``<signature>-<sha256[:8]>.th``.
        hf_repo: HuggingFace repository holding the safetensors export.
    """

    name: str
    sources: tuple[str, ...]
    signatures: tuple[str, ...]
    weights: tuple[tuple[float, ...], ...] | None
    files: tuple[str, ...]
    hf_repo: str


MODELS: dict[str, DemucsModelInfo] = {
    "htdemucs": DemucsModelInfo(
        "htdemucs", tuple(SOURCES_4), ("955717e8",), None, ("955717e8-8726e21a.th",), "adefossez/HTDemucs"
    ),
    "htdemucs_ft": DemucsModelInfo(
        "htdemucs_ft",
        tuple(SOURCES_4),
        ("f7e0c4bc", "d12395a8", "92cfc3b6", "04573f0d"),
        ((1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, 0.0, 0.0, 1.0)),
        ("f7e0c4bc-ba3fe64a.th", "d12395a8-e57c48e6.th", "92cfc3b6-ef3bcb9c.th", "04573f0d-f3cf25b2.th"),
        "adefossez/HTDemucs-ft",
    ),
    "htdemucs_6s": DemucsModelInfo(
        "htdemucs_6s", tuple(SOURCES_6), ("5c90dfd2",), None, ("5c90dfd2-34c22ccb.th",), "adefossez/HTDemucs-6s"
    ),
}


def full_size_htdemucs(sources: list[str] | None = None, seed: int = 0) -> Any:
    """The released htdemucs architecture with random weights (speed is weight-independent).

    Args:
        sources: stem names; default the 4 MUSDB stems.
        seed: torch seed for the random weights.

    Returns:
        ``demucs.htdemucs.HTDemucs`` in eval mode, 41.98 M parameters for 4 sources.
    """
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(seed)
    return HTDemucs(list(sources or SOURCES_4), **FULL_SIZE_KWARGS).eval()


def tiny_htdemucs(
    sources: list[str] | None = None, samplerate: int = 44100, segment: float = 1.0, seed: int = 0
) -> Any:
    """A tiny random-weight ``HTDemucs`` (about 8 k parameters) for fast tests.

    Args:
        sources: stem names; default the 4 MUSDB stems.
        samplerate: model rate in Hz.
        segment: model segment (training length) in seconds.
        seed: torch seed.

    Returns:
        ``demucs.htdemucs.HTDemucs`` in eval mode (channels 4, depth 2, nfft 256, one
        transformer layer).
    """
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(seed)
    return HTDemucs(
        list(sources or SOURCES_4),
        channels=4,
        depth=2,
        nfft=256,
        t_layers=1,
        t_heads=1,
        bottom_channels=0,
        dconv_comp=2,
        samplerate=samplerate,
        segment=Fraction(segment).limit_denominator(1000),
    ).eval()


def _model_classes() -> list[type]:
    from demucs.demucs import Demucs
    from demucs.hdemucs import HDemucs
    from demucs.htdemucs import HTDemucs

    return [HTDemucs, HDemucs, Demucs]


def load_th(path: str | Path) -> Any:
    """Load a legacy demucs ``.th`` package with ``torch.load(weights_only=True)``.

    Only the demucs model classes and ``fractions.Fraction`` are allow-listed; any
    other pickled global makes loading fail instead of executing code.

    Raises:
        InvalidJob: the file is not a demucs model package or contains other globals.
    """
    import torch
    from demucs.states import set_state

    classes = _model_classes()
    path = Path(path)
    try:
        with torch.serialization.safe_globals([*classes, Fraction]):
            package = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InvalidJob(f"model file '{path}': can't be loaded safely ({exc})") from exc
    if not isinstance(package, dict) or package.get("klass") not in classes:
        raise InvalidJob(f"model file '{path}': not a demucs model package")
    if package["state"].get("__quantized"):
        raise InvalidJob(f"model file '{path}': quantized (diffq) models are not supported")
    model = package["klass"](*package.get("args", ()), **package.get("kwargs", {}))
    set_state(model, {k: v.float() for k, v in package["state"].items()})
    return model.eval()


def load_safetensors(path: str | Path) -> Any:
    """Load one model exported as safetensors by demucs (class and init arguments in the
    metadata), through ``demucs.hf.load_safetensors_model`` after checking that the
    class named in the metadata is a demucs model class.

    Raises:
        InvalidJob: unreadable file or a class outside the allow-list.
    """
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:
        raise InvalidJob(f"model file '{path}': not a readable safetensors file ({exc})") from exc
    allowed = {f"{c.__module__}.{c.__name__}" for c in _model_classes()}
    if meta.get("klass") not in allowed:
        raise InvalidJob(f"model file '{path}': model class {meta.get('klass')!r} is not a demucs model")
    if "structure" in meta and "__quantized" in json.dumps(meta.get("structure")):
        raise InvalidJob(f"model file '{path}': quantized (diffq) models are not supported")
    from demucs.hf import load_safetensors_model

    return load_safetensors_model(path).eval()


def save_th(model: Any, path: str | Path) -> Path:
    """Write ``model`` (a demucs model built with its ``capture_init`` arguments, e.g.
    :func:`tiny_htdemucs`) as a legacy demucs ``.th`` package (class, init arguments,
    float32 state), the layout :func:`load_th` reads. For tests and for users who keep
    a fine-tune as one file. Returns ``path``."""
    import torch

    args, kwargs = model._init_args_kwargs
    package = {"klass": model.__class__, "args": args, "kwargs": kwargs,
               "state": {k: v.detach().float().cpu() for k, v in model.state_dict().items()}}
    path = Path(path)
    torch.save(package, str(path))
    return path


def load_model_path(path: str | Path) -> Any:
    """Load a model the musician points at with ``--model-path``: one ``.th`` or
    ``.safetensors`` file, or a folder holding one (or a bag: a ``.yaml`` naming its
    members, each as ``<signature>.safetensors`` or ``<signature>-*.th`` in the folder).

    Raises:
        InvalidJob: nothing loadable there, several candidates without a bag file, a
            bag member missing, or a file that can't be loaded safely.
    """
    p = Path(path)
    if p.is_file():
        if p.suffix == ".th":
            return load_th(p)
        if p.suffix == ".safetensors":
            return load_safetensors(p)
        raise InvalidJob(f"model file '{p}': not a demucs model (.th or .safetensors)")
    if not p.is_dir():
        raise InvalidJob(f"model folder '{p}' does not exist")
    yamls = sorted(p.glob("*.yaml"))
    if yamls:
        import yaml

        bag = yaml.safe_load(yamls[0].read_text()) or {}
        models = []
        for sig in [str(s) for s in bag.get("models", [])]:
            if "/" in sig or "\\" in sig or sig.startswith("."):
                raise InvalidJob(f"bag file '{yamls[0]}': member {sig!r} is not a plain file name")
            st, th = p / f"{sig}.safetensors", sorted(p.glob(f"{sig}-*.th"))
            if st.is_file():
                models.append(load_safetensors(st))
            elif th:
                models.append(load_th(th[0]))
            else:
                raise InvalidJob(f"bag file '{yamls[0]}': member {sig} has no weight file in '{p}'")
        if not models:
            raise InvalidJob(f"bag file '{yamls[0]}' names no models")
        from demucs.apply import BagOfModels

        return BagOfModels(models, bag.get("weights"), bag.get("segment")).eval()
    files = sorted([*p.glob("*.th"), *p.glob("*.safetensors")])
    if len(files) != 1:
        raise InvalidJob(f"model folder '{p}' holds {len(files)} model files; give one file, or add a bag .yaml")
    return load_model_path(files[0])


def load_pretrained(name: str, folder: str | Path) -> Any:
    """Load a pretrained model from ``folder`` (as installed by the model manager).

    ``folder`` holds, per bag member, ``<signature>.safetensors`` (HuggingFace layout)
    or ``<signature>-<hash>.th`` (legacy layout); a ``<name>.yaml`` bag file is optional
    (the known bag definition of :data:`MODELS` is used otherwise).

    Returns:
        One ``HTDemucs`` for a single-member model, else a ``demucs.apply.BagOfModels``.

    Raises:
        InvalidJob: unknown model name or a file that can't be loaded safely.
        ModelNotInstalled: a member's weight file is missing.
    """
    if name not in MODELS:
        raise InvalidJob(f"unknown separation model {name!r}; known: {', '.join(MODELS)}")
    info = MODELS[name]
    folder = Path(folder)
    signatures = list(info.signatures)
    weights = [list(w) for w in info.weights] if info.weights else None
    segment = None
    bag_file = folder / f"{name}.yaml"
    if bag_file.is_file():
        import yaml

        bag = yaml.safe_load(bag_file.read_text()) or {}
        signatures = [str(s) for s in bag.get("models", signatures)]
        weights = bag.get("weights", weights)
        segment = bag.get("segment")
    models = []
    for sig in signatures:
        st = folder / f"{sig}.safetensors"
        th = sorted(folder.glob(f"{sig}-*.th"))
        if st.is_file():
            models.append(load_safetensors(st))
        elif th:
            models.append(load_th(th[0]))
        else:
            raise ModelNotInstalled(f"model {name}: weight file for member {sig} is missing in '{folder}'")
    if len(models) == 1 and weights is None and segment is None:
        return models[0]
    from demucs.apply import BagOfModels

    return BagOfModels(models, weights, segment).eval()
