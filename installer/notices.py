"""THIRD-PARTY-NOTICES.txt of the desktop bundle, written by installer/seed-studio.spec.

For every Python distribution whose code or data is in the bundle: its name, version,
licence (as its metadata declares it), home page and the licence files it ships. For
every native library copied from the system (libfluidsynth and the libraries it and Qt's
xcb plug-in load): the library, its system package and that package's copyright file
(Debian/Ubuntu: /usr/share/doc/PACKAGE/copyright). And the GM SoundFont.
"""
from __future__ import annotations

import importlib.metadata as md
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

LICENCE_FILE = re.compile(r"(^|/)(licen[cs]e|copying|notice|authors|copyright)[^/]*$", re.IGNORECASE)
MAX_TEXT = 400_000  # characters of licence text kept per distribution (torch's runs to ~0.5 MB)

HEADER = """\
Seed Studio desktop bundle: third-party notices
================================================

Seed Studio is free software under the GNU General Public License, version 3 or later
(LICENSE.txt). The bundle also contains the Python runtime, the Python libraries and the
native libraries listed below, each under its own licence; their licence texts follow.
AI model weights are not in the bundle: the Models window shows each model's licence
before it is downloaded.

Where a component's licence requires it (GPL, LGPL, AGPL, MPL), its source code is
available from the project page given for it, or from the Seed Studio maintainers on
request for three years from the date of this build.
"""


def in_python_tree(path: str) -> bool:
    """True when ``path`` comes from a Python installation or environment (a wheel), not the system."""
    p = str(Path(path).resolve())
    roots = {sys.prefix, sys.base_prefix, sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    return any(p.startswith(str(Path(r).resolve()) + "/") for r in roots if r)


def _licence(dist: md.Distribution) -> str:
    meta = dist.metadata
    expr = meta.get("License-Expression")
    if expr:
        return expr
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    lic = (meta.get("License") or "").strip()
    if lic and len(lic) < 120 and "\n" not in lic:
        return lic + (f" ({', '.join(classifiers)})" if classifiers else "")
    return ", ".join(classifiers) or ("see licence text" if lic else "not declared")


def _homepage(dist: md.Distribution) -> str:
    meta = dist.metadata
    if meta.get("Home-page"):
        return meta["Home-page"]
    for url in meta.get_all("Project-URL") or []:
        label, _, link = url.partition(",")
        if label.strip().lower() in ("homepage", "home", "source", "repository", "source code"):
            return link.strip()
    return ""


def _licence_texts(dist: md.Distribution) -> list[tuple[str, str]]:
    out, used = [], 0
    for f in dist.files or []:
        name = str(f)
        if ".dist-info/" not in name and "/" in name.rstrip("/"):
            continue  # licence files inside the package itself are covered by its dist-info copy
        if not LICENCE_FILE.search(name) or name.endswith((".py", ".pyc")):
            continue
        try:
            text = Path(dist.locate_file(f)).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if used + len(text) > MAX_TEXT:
            text = text[: max(0, MAX_TEXT - used)] + "\n[... shortened; the full text is in the dist-info folder]\n"
        used += len(text)
        out.append((name, text))
        if used >= MAX_TEXT:
            break
    return out


def _debian_package(path: str) -> str | None:
    if not shutil.which("dpkg"):
        return None
    for cand in (path, str(Path(path).resolve())):
        r = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
        if r.returncode == 0 and ":" in r.stdout:
            return r.stdout.split(":")[0].strip()
    return None


def render(dists: list[str], *, system_files: list[str], soundfont: str) -> str:
    """The notices text for the distributions ``dists``, system libraries ``system_files``
    and the SoundFont at ``soundfont``."""
    parts = [HEADER]
    py_licence = Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "LICENSE.txt"
    summary, texts = [], []
    for name in dists:
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        summary.append(f"  {dist.metadata['Name']} {dist.version}: {_licence(dist)}  {_homepage(dist)}".rstrip())
        for fname, text in _licence_texts(dist):
            texts.append(f"\n---- {dist.metadata['Name']} {dist.version}: {fname}\n\n{text.strip()}\n")
    parts.append(f"Python {sys.version.split()[0]} (Python Software Foundation License)")
    parts.append("\nPython libraries (name, version, licence, home page):\n")
    parts += summary
    packages: dict[str, list[str]] = {}
    for f in sorted(set(system_files)):
        packages.setdefault(_debian_package(f) or "(no system package found)", []).append(Path(f).name)
    sf_pkg = _debian_package(soundfont)
    parts.append("\nNative libraries copied from the build machine's system (package: files):\n")
    for pkg, files in sorted(packages.items()):
        parts.append(f"  {pkg}: {', '.join(files)}")
    parts.append(f"\nGeneral MIDI SoundFont: soundfonts/{Path(soundfont).name}"
                 f"{f' (Debian package {sf_pkg})' if sf_pkg else ''}: FluidR3_GM by Frank Wen, MIT licence.")
    parts.append("\n\n==== Licence texts of the Python libraries\n")
    parts += texts
    parts.append("\n\n==== Copyright files of the system packages\n")
    for pkg in sorted(set(packages) | ({sf_pkg} if sf_pkg else set())):
        copyright_file = Path("/usr/share/doc") / pkg / "copyright"
        if copyright_file.is_file():
            parts.append(f"\n---- {pkg}\n\n{copyright_file.read_text(encoding='utf-8', errors='replace').strip()}\n")
    if py_licence.is_file():
        parts.append(f"\n\n==== Python\n\n{py_licence.read_text(encoding='utf-8', errors='replace').strip()}\n")
    return "\n".join(parts) + "\n"
