"""Thin adapter over the ``demucs`` library: build and load HT-Demucs models safely.

* :data:`MODELS` - the three supported pretrained models (htdemucs, htdemucs_ft,
  htdemucs_6s): their sources, bag signatures and weight files.
* :func:`full_size_htdemucs` - the published htdemucs architecture (41.98 M parameters)
  with random weights, for speed measurements.
* :func:`tiny_htdemucs` - a tiny random-weight instance of the real class, for tests.
* :func:`load_pretrained` - load an installed model (or the fine-tuned bag) from exactly
  the files its record names (``<signature>-<sha256[:8]>.th``, checked by the model
  manager's sha256), with the bag definition built in: nothing in the folder (a stray
  ``*.th``, a ``.yaml``) chooses what is loaded.
* :func:`load_model_path` - what the musician points at with ``--model-path``: one
  ``.th``/``.safetensors`` file or a folder with a bag ``.yaml`` whose members are plain
  file names inside that folder.

Loading never unpickles arbitrary objects and never imports a module named in a file:
``.th`` packages go through ``torch.load(weights_only=True)`` with an allow-list of the
demucs model classes; ``.safetensors`` files are read by our own loader, which accepts
only the allow-listed class names and a plain tensor layout (a metadata ``structure``
naming a ``_class`` is refused). Every failure (unsafe content, wrong tensor shapes,
bad init arguments, unreadable file) is one :class:`~engines.base.InvalidJob` naming the
file and what to do.

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


def _bad_file(path: Path, problem: str) -> InvalidJob:
    return InvalidJob(f"model file '{path}': {problem}",
                      "download the model again (`seed-studio models download ID`), or point --model-path "
                      "at a demucs model saved by demucs or by Seed Studio")


def _build(path: Path, klass: type, args: Any, kwargs: Any, state: Any) -> Any:
    """Instantiate an allow-listed demucs class and load its weights strictly.

    Raises:
        InvalidJob: bad init arguments or weights that don't fit the model (names ``path``).
    """
    from demucs.states import set_state

    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
        raise _bad_file(path, "its init arguments are not a list and a mapping")
    if not isinstance(state, dict) or not state:
        raise _bad_file(path, "it holds no weights")
    try:
        model = klass(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any constructor failure is a bad file
        raise _bad_file(path, f"its settings don't build a {klass.__name__} ({type(exc).__name__}: {exc})") from None
    try:
        set_state(model, {k: v.float() for k, v in state.items()})
    except Exception as exc:  # noqa: BLE001 - load_state_dict: size mismatch, missing keys...
        first = str(exc).strip().splitlines()
        detail = next((line.strip() for line in first if "size mismatch" in line or "Missing" in line
                       or "Unexpected" in line), first[0] if first else type(exc).__name__)
        raise _bad_file(path, f"its weights don't fit the model ({detail[:300]}); the file is damaged "
                              "or belongs to another model") from None
    return model.eval()


def load_th(path: str | Path) -> Any:
    """Load a legacy demucs ``.th`` package with ``torch.load(weights_only=True)``.

    Only the demucs model classes and ``fractions.Fraction`` are allow-listed; any
    other pickled global makes loading fail instead of executing code.

    Raises:
        InvalidJob: the file is not a demucs model package, contains other globals, or its
            weights don't fit its model (every message names the file).
    """
    import torch

    classes = _model_classes()
    path = Path(path)
    try:
        with torch.serialization.safe_globals([*classes, Fraction]):
            package = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InvalidJob(f"model file '{path}': can't be loaded safely ({str(exc)[:300]})") from exc
    if not isinstance(package, dict) or package.get("klass") not in classes:
        raise InvalidJob(f"model file '{path}': not a demucs model package")
    state = package.get("state")
    if isinstance(state, dict) and state.get("__quantized"):
        raise InvalidJob(f"model file '{path}': quantized (diffq) models are not supported")
    return _build(path, package["klass"], package.get("args", ()), package.get("kwargs", {}), state)


def _decode_json(value: Any) -> Any:
    """demucs' JSON encoding of init arguments: ``{"_type": "fraction", ...}`` -> Fraction."""
    if isinstance(value, dict):
        if value.get("_type") == "fraction":
            return Fraction(int(value["numerator"]), int(value["denominator"]))
        return {str(k): _decode_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_json(v) for v in value]
    return value


def _unflatten(path: Path, tensors: dict[str, Any], structure: Any) -> Any:
    """The plain nested state of demucs' ``structure`` metadata: ``_tensor``, ``_dict``,
    ``_list`` and ``_tuple`` nodes only. A ``_class`` node (which would import a module by
    name) or anything else is refused."""
    if isinstance(structure, dict):
        if set(structure) == {"_tensor"}:
            name = structure["_tensor"]
            if name not in tensors:
                raise _bad_file(path, f"its layout names a tensor {str(name)[:80]!r} that it doesn't hold")
            return tensors[name]
        if set(structure) == {"_dict"} and isinstance(structure["_dict"], list):
            return {str(k): _unflatten(path, tensors, v) for k, v in structure["_dict"]}
        if set(structure) == {"_list"} and isinstance(structure["_list"], list):
            return [_unflatten(path, tensors, v) for v in structure["_list"]]
        if set(structure) == {"_tuple"} and isinstance(structure["_tuple"], list):
            return tuple(_unflatten(path, tensors, v) for v in structure["_tuple"])
        if "_class" in structure:
            raise InvalidJob(f"model file '{path}': its metadata asks to import {str(structure['_class'])[:80]!r}; "
                             "model files may not name code to run, so it is not loaded")
        raise _bad_file(path, f"its layout holds an unknown node {str(structure)[:80]}")
    if isinstance(structure, (str, int, float, bool)) or structure is None:
        return structure
    raise _bad_file(path, "its layout is not plain data")


def load_safetensors(path: str | Path) -> Any:
    """Load one model exported as safetensors by demucs (class and init arguments in the
    metadata) with our own loader: the class must be an allow-listed demucs class (looked
    up in the allow-list, never imported by name), the state a plain layout, the weights
    must fit the model exactly.

    Raises:
        InvalidJob: unreadable file, a class outside the allow-list, metadata that names code
            (``_class``), quantized weights, bad init arguments or wrong tensor shapes.
    """
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as exc:
        raise InvalidJob(f"model file '{path}': not a readable safetensors file ({str(exc)[:200]})") from exc
    classes = {f"{c.__module__}.{c.__name__}": c for c in _model_classes()}
    klass = classes.get(meta.get("klass", ""))
    if klass is None:
        raise InvalidJob(f"model file '{path}': model class {meta.get('klass')!r} is not a demucs model")
    try:
        structure = json.loads(meta["structure"]) if "structure" in meta else None
        args = _decode_json(json.loads(meta.get("args", "[]")))
        kwargs = _decode_json(json.loads(meta.get("kwargs", "{}")))
    except (ValueError, TypeError, KeyError, ZeroDivisionError, RecursionError) as exc:
        raise _bad_file(path, f"its metadata is not valid ({type(exc).__name__}: {str(exc)[:200]})") from None
    if structure is not None and "__quantized" in json.dumps(structure):
        raise InvalidJob(f"model file '{path}': quantized (diffq) models are not supported")
    state = _unflatten(path, tensors, structure) if structure is not None else tensors
    return _build(path, klass, args, kwargs, state)


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


MAX_BAG_FILE_BYTES = 64 * 1024
"""A bag ``.yaml`` larger than this is refused (a real one is a few hundred bytes)."""


def _read_bag(path: Path) -> dict[str, Any]:
    """A bag file: ``models`` (plain names), optional ``weights`` (list of lists of numbers)
    and ``segment`` (seconds). Raises InvalidJob naming the file."""
    import yaml

    try:
        if path.stat().st_size > MAX_BAG_FILE_BYTES:
            raise InvalidJob(f"bag file '{path}': larger than {MAX_BAG_FILE_BYTES // 1024} KiB; not a demucs bag")
        bag = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except InvalidJob:
        raise
    except Exception as exc:  # noqa: BLE001 - yaml errors, unreadable file
        raise InvalidJob(f"bag file '{path}': can't be read ({str(exc)[:200]})") from None
    if not isinstance(bag, dict) or not isinstance(bag.get("models", []), list):
        raise InvalidJob(f"bag file '{path}': not a demucs bag (no 'models' list)")
    weights, segment = bag.get("weights"), bag.get("segment")
    if weights is not None and not (isinstance(weights, list) and all(
            isinstance(w, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in w)
            for w in weights)):
        raise InvalidJob(f"bag file '{path}': 'weights' must be lists of numbers")
    if segment is not None and (isinstance(segment, bool) or not isinstance(segment, (int, float)) or segment <= 0):
        raise InvalidJob(f"bag file '{path}': 'segment' must be a positive number of seconds")
    return bag


def load_model_path(path: str | Path) -> Any:
    """Load a model the musician points at with ``--model-path``: one ``.th`` or
    ``.safetensors`` file, or a folder holding one (or a bag: a ``.yaml`` naming its
    members, each as ``<signature>.safetensors`` or ``<signature>-*.th`` in the folder).

    Member names must be plain file names, and every file loaded must lie inside the folder
    (a link pointing elsewhere is refused).

    Raises:
        InvalidJob: nothing loadable there, several candidates without a bag file, a
            bag member missing or outside the folder, or a file that can't be loaded safely.
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
    root = p.resolve()
    yamls = sorted(p.glob("*.yaml"))
    if len(yamls) > 1:
        raise InvalidJob(f"model folder '{p}' holds {len(yamls)} bag files; keep one")
    if yamls:
        bag = _read_bag(yamls[0])
        models = []
        for sig in [str(s) for s in bag.get("models", [])]:
            if "/" in sig or "\\" in sig or sig.startswith(".") or not sig or "\x00" in sig:
                raise InvalidJob(f"bag file '{yamls[0]}': member {sig[:80]!r} is not a plain file name")
            st, th = p / f"{sig}.safetensors", sorted(p.glob(f"{sig}-*.th"))
            if len(th) > 1:
                raise InvalidJob(f"bag file '{yamls[0]}': member {sig} matches {len(th)} .th files in '{p}'; keep one")
            chosen = st if st.is_file() else (th[0] if th else None)
            if chosen is None:
                raise InvalidJob(f"bag file '{yamls[0]}': member {sig} has no weight file in '{p}'")
            if not chosen.resolve().is_relative_to(root):
                raise InvalidJob(f"bag file '{yamls[0]}': member file '{chosen}' points outside '{p}'; refusing it")
            models.append(load_safetensors(chosen) if chosen.suffix == ".safetensors" else load_th(chosen))
        if not models:
            raise InvalidJob(f"bag file '{yamls[0]}' names no models")
        return _bag(yamls[0], models, bag.get("weights"), bag.get("segment"))
    files = sorted([*p.glob("*.th"), *p.glob("*.safetensors")])
    if len(files) != 1:
        raise InvalidJob(f"model folder '{p}' holds {len(files)} model files; give one file, or add a bag .yaml")
    if not files[0].resolve().is_relative_to(root):
        raise InvalidJob(f"model file '{files[0]}' points outside '{p}'; refusing it")
    return load_model_path(files[0])


def _bag(where: Path, models: list[Any], weights: Any, segment: Any) -> Any:
    from demucs.apply import BagOfModels

    try:
        return BagOfModels(models, weights, segment).eval()
    except Exception as exc:  # noqa: BLE001 - members with different sources/rates, wrong weights
        raise InvalidJob(f"bag '{where}': its members don't form a bag ({str(exc)[:200]})",
                         "every member must separate the same stems at the same rate") from None


def load_pretrained(name: str, folder: str | Path) -> Any:
    """Load an installed pretrained model from ``folder`` (as installed by the model manager).

    Loads exactly the files of :data:`MODELS` (the model record's file names,
    ``<signature>-<sha256[:8]>.th``), with the built-in bag definition; other files in the
    folder (a stray ``<signature>-*.th``, a ``.yaml``, ``.safetensors``) are never read.
    The model manager's :meth:`~engines.models.ModelManager.require` checks their sha256.

    Returns:
        One ``HTDemucs`` for a single-member model, else a ``demucs.apply.BagOfModels``.

    Raises:
        InvalidJob: unknown model name or a file that can't be loaded safely (names the file).
        ModelNotInstalled: a member's weight file is missing.
    """
    if name not in MODELS:
        raise InvalidJob(f"unknown separation model {name!r}; known: {', '.join(MODELS)}")
    info = MODELS[name]
    folder = Path(folder)
    models = []
    for sig, filename in zip(info.signatures, info.files):
        path = folder / filename
        if not path.is_file():
            raise ModelNotInstalled(f"model {name}: weight file '{filename}' (member {sig}) is missing in '{folder}'")
        models.append(load_th(path))
    weights = [list(w) for w in info.weights] if info.weights else None
    if len(models) == 1 and weights is None:
        return models[0]
    return _bag(folder, models, weights, None)
