"""User settings (preferences), stored as JSON in the platform's config folder.

The folder comes from platformdirs (``user_config_dir("seed-studio")``) unless the
environment variable ``SEED_STUDIO_CONFIG_DIR`` points elsewhere (tests, portable
installs). Unknown keys are kept; bad values fall back to defaults, so a damaged
settings file never stops the app from starting.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import platformdirs

from engines.files import atomic_write_text

APP_NAME = "seed-studio"


def config_dir() -> Path:
    """Folder of ``settings.json``: ``$SEED_STUDIO_CONFIG_DIR`` or the platform config dir."""
    env = os.environ.get("SEED_STUDIO_CONFIG_DIR")
    return Path(env) if env else Path(platformdirs.user_config_dir(APP_NAME))


@dataclass
class Settings:
    """Preferences.

    Attributes:
        soundfont: path of a General MIDI SoundFont (.sf2/.sf3), or None to search.
        models_dir: folder of downloaded models, or None for the user cache dir.
        audio_device: output device name, or None for the system default.
        device: engine device: ``"auto"`` (CUDA, then MPS, then CPU), ``"cuda"``, ``"mps"``, ``"cpu"``.
        autosave_interval_s: seconds between autosaves of a dirty project (0 = off).
        recent_projects: most recent first, at most 10.
        default_sample_rate: Hz, for new projects.
        render_tail_s: seconds the app's exports (mix, stems for Ableton) run past the
            end of the song so that reverbs and delays ring out; the clips still stop at
            the end (see :func:`studio.audio.render.iter_render`). 0 = cut exactly at the
            end. Starts at :data:`studio.audio.render.DEFAULT_TAIL_S`, the CLI's default; an
            export given its own end (loop, selection, from/to) gets no tail unless the
            Export dialog's Tail field asks (:func:`studio.audio.render.default_tail_s`).
    """

    soundfont: str | None = None
    models_dir: str | None = None
    audio_device: str | None = None
    device: str = "auto"
    autosave_interval_s: int = 60
    recent_projects: list[str] = field(default_factory=list)
    default_sample_rate: int = 44100
    render_tail_s: float = 2.0

    def add_recent(self, path: str | Path) -> None:
        """Put ``path`` first in the recent projects list (deduplicated, max 10)."""
        p = str(Path(path).resolve())
        self.recent_projects = [p] + [r for r in self.recent_projects if r != p][:9]


def load_settings() -> Settings:
    """Read the settings file; missing or damaged -> defaults (never raises)."""
    path = config_dir() / "settings.json"
    s = Settings()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return s
    if not isinstance(data, dict):
        return s
    for f in fields(Settings):
        if f.name in data:
            value = data[f.name]
            default = getattr(s, f.name)
            ok = (value is None and default is None) or isinstance(value, type(default)) or (
                default is None and isinstance(value, str))
            if f.name == "recent_projects":
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            if ok:
                setattr(s, f.name, value)
    return s


def save_settings(settings: Settings) -> Path:
    """Write the settings atomically. Returns the file path. Raises OSError."""
    path = config_dir() / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(asdict(settings), indent=2))
    return path
