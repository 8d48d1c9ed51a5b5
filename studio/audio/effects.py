"""Track effect chains: pedalboard plug-ins built from an allow-list, never from arbitrary names.

A track stores its chain as :class:`studio.model.project.Effect` items (a plug-in class name and
its parameters). :func:`build_chain` turns them into a :class:`pedalboard.Pedalboard`
(Spotify's pedalboard library, JUCE DSP underneath). Only the classes named in
:data:`ALLOWED_EFFECTS` can ever be instantiated, and every parameter is checked by
name, type and range first, so a project file can't run code or load files
(``Convolution``, ``VST3Plugin`` and ``ExternalPlugin`` are deliberately absent).
Plug-ins that add latency (``PitchShift``) are absent too, so an effect chain never
shifts audio in time and rendering stays sample-accurate.

Audio convention: pedalboard processes float32 ``(channels, frames)`` arrays at a given
sample rate, the project's own convention.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import pedalboard

from studio.errors import RenderError


@dataclass(frozen=True)
class ParamSpec:
    """One plug-in parameter: default, inclusive range and unit (for forms in the UI).

    ``choices`` (when not empty) makes the parameter a string enum instead of a number.
    """

    default: float | str
    minimum: float = 0.0
    maximum: float = 1.0
    unit: str = ""
    choices: tuple[str, ...] = ()


_FREQ = dict(minimum=10.0, maximum=96000.0, unit="Hz")
_Q = ParamSpec(0.7071067690849304, 0.05, 20.0)
_LADDER_MODES = ("LPF12", "HPF12", "BPF12", "LPF24", "HPF24", "BPF24")

ALLOWED_EFFECTS: dict[str, dict[str, ParamSpec]] = {
    "Gain": {"gain_db": ParamSpec(0.0, -96.0, 48.0, "dB")},
    "Invert": {},
    "Compressor": {
        "threshold_db": ParamSpec(0.0, -96.0, 0.0, "dB"),
        "ratio": ParamSpec(1.0, 1.0, 100.0),
        "attack_ms": ParamSpec(1.0, 0.0, 1000.0, "ms"),
        "release_ms": ParamSpec(100.0, 0.0, 5000.0, "ms"),
    },
    "Limiter": {
        "threshold_db": ParamSpec(-10.0, -96.0, 0.0, "dB"),
        "release_ms": ParamSpec(100.0, 0.0, 5000.0, "ms"),
    },
    "NoiseGate": {
        "threshold_db": ParamSpec(-100.0, -120.0, 0.0, "dB"),
        "ratio": ParamSpec(10.0, 1.0, 100.0),
        "attack_ms": ParamSpec(1.0, 0.0, 1000.0, "ms"),
        "release_ms": ParamSpec(100.0, 0.0, 5000.0, "ms"),
    },
    "HighpassFilter": {"cutoff_frequency_hz": ParamSpec(50.0, **_FREQ)},
    "LowpassFilter": {"cutoff_frequency_hz": ParamSpec(18000.0, **_FREQ)},
    "HighShelfFilter": {"cutoff_frequency_hz": ParamSpec(440.0, **_FREQ),
                        "gain_db": ParamSpec(0.0, -48.0, 48.0, "dB"), "q": _Q},
    "LowShelfFilter": {"cutoff_frequency_hz": ParamSpec(440.0, **_FREQ),
                       "gain_db": ParamSpec(0.0, -48.0, 48.0, "dB"), "q": _Q},
    "PeakFilter": {"cutoff_frequency_hz": ParamSpec(440.0, **_FREQ),
                   "gain_db": ParamSpec(0.0, -48.0, 48.0, "dB"), "q": _Q},
    "LadderFilter": {
        "mode": ParamSpec("LPF12", choices=_LADDER_MODES),
        "cutoff_hz": ParamSpec(200.0, **_FREQ),
        "resonance": ParamSpec(0.0, 0.0, 1.0),
        "drive": ParamSpec(1.0, 1.0, 100.0),
    },
    "Reverb": {
        "room_size": ParamSpec(0.5), "damping": ParamSpec(0.5), "wet_level": ParamSpec(0.33),
        "dry_level": ParamSpec(0.4), "width": ParamSpec(1.0), "freeze_mode": ParamSpec(0.0),
    },
    "Delay": {
        "delay_seconds": ParamSpec(0.5, 0.0, 10.0, "s"), "feedback": ParamSpec(0.0),
        "mix": ParamSpec(0.5),
    },
    "Chorus": {
        "rate_hz": ParamSpec(1.0, 0.0, 100.0, "Hz"), "depth": ParamSpec(0.25),
        "centre_delay_ms": ParamSpec(7.0, 0.0, 100.0, "ms"), "feedback": ParamSpec(0.0, -1.0, 1.0),
        "mix": ParamSpec(0.5),
    },
    "Phaser": {
        "rate_hz": ParamSpec(1.0, 0.0, 100.0, "Hz"), "depth": ParamSpec(0.5),
        "centre_frequency_hz": ParamSpec(1300.0, **_FREQ), "feedback": ParamSpec(0.0, -1.0, 1.0),
        "mix": ParamSpec(0.5),
    },
    "Distortion": {"drive_db": ParamSpec(25.0, 0.0, 100.0, "dB")},
    "Clipping": {"threshold_db": ParamSpec(-6.0, -96.0, 0.0, "dB")},
    "Bitcrush": {"bit_depth": ParamSpec(8.0, 1.0, 32.0, "bits")},
}
"""Plug-in class name -> its parameters. The only plug-ins a project can use."""

_NYQUIST_PARAMS = {"cutoff_frequency_hz", "cutoff_hz", "centre_frequency_hz"}


def validate_effect(name: str, params: dict[str, Any], sample_rate: int | None = None) -> dict[str, Any]:
    """Check one effect's class name and parameters against :data:`ALLOWED_EFFECTS`.

    Args:
        name: pedalboard class name, e.g. ``"Compressor"``.
        params: parameter name -> value (numbers; a string for enum parameters).
        sample_rate: Hz; when given, frequency parameters must lie below Nyquist.

    Returns:
        The parameters with defaults filled in, numbers as float.

    Raises:
        RenderError: unknown plug-in, unknown parameter, wrong type, NaN/Inf or out of range.
    """
    spec = ALLOWED_EFFECTS.get(name)
    if spec is None:
        raise RenderError(
            f"effect {name!r} is not allowed; allowed effects: {', '.join(sorted(ALLOWED_EFFECTS))}")
    if not isinstance(params, dict):
        raise RenderError(f"effect {name}: parameters must be a mapping, got {type(params).__name__}")
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise RenderError(
            f"effect {name}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(spec) or 'none'}")
    out: dict[str, Any] = {}
    for key, ps in spec.items():
        value = params.get(key, ps.default)
        if ps.choices:
            if value not in ps.choices:
                raise RenderError(f"effect {name}: {key} must be one of {', '.join(ps.choices)}, got {value!r}")
            out[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RenderError(f"effect {name}: {key} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value) or not ps.minimum <= value <= ps.maximum:
            raise RenderError(
                f"effect {name}: {key} = {value} is outside {ps.minimum}..{ps.maximum} {ps.unit}".rstrip())
        if sample_rate is not None and key in _NYQUIST_PARAMS and value >= sample_rate / 2:
            raise RenderError(
                f"effect {name}: {key} = {value} Hz is not below Nyquist ({sample_rate / 2} Hz)")
        out[key] = value
    return out


def build_plugin(name: str, params: dict[str, Any], sample_rate: int | None = None) -> pedalboard.Plugin:
    """Instantiate one allow-listed pedalboard plug-in after :func:`validate_effect`.

    Raises:
        RenderError: see :func:`validate_effect`.
    """
    checked = validate_effect(name, params, sample_rate)
    cls = getattr(pedalboard, name)  # name is a key of ALLOWED_EFFECTS, never user text
    if name == "LadderFilter":
        checked["mode"] = getattr(pedalboard.LadderFilter.Mode, checked["mode"])
    return cls(**checked)


def build_chain(effects: Iterable[Any], sample_rate: int | None = None) -> pedalboard.Pedalboard:
    """A :class:`pedalboard.Pedalboard` from a track's effects, in order, skipping disabled ones.

    Args:
        effects: :class:`studio.model.project.Effect` items (``name``, ``params``, ``enabled``).
        sample_rate: Hz, for the Nyquist check of frequency parameters.

    Raises:
        RenderError: an effect with an unknown name or bad parameters (the message names it).
    """
    plugins = [build_plugin(e.name, e.params, sample_rate) for e in effects if getattr(e, "enabled", True)]
    return pedalboard.Pedalboard(plugins)


def chain_signature(effects: Iterable[Any]) -> tuple:
    """A hashable summary of an effect chain, to notice edits and rebuild a live chain."""
    return tuple(
        (e.name, tuple(sorted((k, repr(v)) for k, v in e.params.items())), bool(getattr(e, "enabled", True)))
        for e in effects
    )
