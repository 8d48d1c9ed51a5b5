"""PyInstaller runtime hook of the Seed Studio bundle: runs in the frozen app before ui/launcher.py.

``SEED_STUDIO_BUNDLE_CHECK=1 seed-studio``: check the bundle from inside and exit
(installer/smoke_bundle.sh runs it): every engine the registry lists can be imported,
each lazily imported library in bundle_check.json imports, pyfluidsynth loads the
bundle's libfluidsynth, the bundled SoundFont is the one found, and Qt's xcb plug-in
loads with its libraries. Prints one line per check; exit code 1 if any failed.
Without that variable the hook does nothing.
"""


def _pyi_rth_seed_studio():
    import os
    import sys

    if os.environ.get("SEED_STUDIO_BUNDLE_CHECK") != "1":
        return
    if "--multiprocessing-fork" in sys.argv or "-c" in sys.argv:
        return  # a multiprocessing child: not the check's business
    os.environ.pop("SEED_STUDIO_BUNDLE_CHECK")  # children of the check run normally
    sys.exit(_check(os, sys))


def _check(os, sys):
    import ctypes
    import importlib
    import json
    import traceback
    from pathlib import Path

    base = Path(sys._MEIPASS)
    spec = json.loads((base / "bundle_check.json").read_text())
    failures = []

    def report(ok, what, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}", flush=True)
        if not ok:
            failures.append(what)

    report(bool(getattr(sys, "frozen", False)), "frozen app", str(base))
    # engines: found through the entry points of the shipped dist-info, each class imports
    from importlib.metadata import entry_points

    from engines import registry

    eps = sorted(ep.value for ep in entry_points(group=registry.ENTRY_POINT_GROUP))
    report(len(eps) > 0, "engine manifests from entry points", ", ".join(eps))
    for entry in registry.list_engines():
        try:
            registry.get_engine_class(entry.id)
            report(True, f"engine {entry.id}", entry.target)
        except Exception as exc:
            report(False, f"engine {entry.id}", f"{entry.target}: {exc}")
    report(len(registry.list_models()) > 0, "model records", str(len(registry.list_models())))
    # libraries the engines import lazily
    from engines.analysis._compat import import_without_torchaudio

    for item in spec["lazy_imports"]:
        module, _, attr = item.partition(":")
        try:
            mod = import_without_torchaudio(module[1:]) if module.startswith("~") else importlib.import_module(module)
            getattr(mod, attr)
            report(True, f"import {item}")
        except Exception as exc:
            report(False, f"import {item}", f"{type(exc).__name__}: {exc}")
            traceback.print_exc(limit=-6)
    # FluidSynth and the SoundFont shipped in the bundle
    from studio.audio import synth

    try:
        fs = synth._fluidsynth_module()
        loaded = getattr(getattr(fs, "_fl", None), "_name", "?")
        inside = Path(str(loaded)).resolve().is_relative_to(base.resolve())
        report(inside, "libfluidsynth from the bundle", str(loaded))
        if sys.platform.startswith("linux"):
            maps = [line.split()[-1] for line in open("/proc/self/maps") if "fluidsynth" in line and "/" in line]
            report(all(Path(p).resolve().is_relative_to(base.resolve()) for p in maps), "libfluidsynth mapped",
                   ", ".join(sorted(set(maps))))
    except Exception as exc:
        report(False, "libfluidsynth from the bundle", str(exc))
    try:
        sf = synth.find_soundfont()
        report(sf.resolve().is_relative_to(base.resolve()) and sf.name == spec["soundfont"], "GM SoundFont", str(sf))
    except Exception as exc:
        report(False, "GM SoundFont", str(exc))
    # Qt's xcb platform plug-in and the libraries it needs
    if sys.platform.startswith("linux"):
        import PyQt6

        plugin = next(Path(PyQt6.__file__).parent.glob("Qt6/plugins/platforms/libqxcb.so"), None)
        report(plugin is not None, "Qt xcb plug-in", str(plugin))
        if plugin is not None:
            try:
                ctypes.CDLL(str(plugin))
                report(True, "Qt xcb plug-in loads with its libraries")
            except OSError as exc:
                report(False, "Qt xcb plug-in loads with its libraries", str(exc))
        for lib in spec["qt_xcb_libraries"]:
            report((base / lib).is_file(), f"bundled {lib}")
    print(f"bundle check: {'all passed' if not failures else str(len(failures)) + ' failed: ' + ', '.join(failures)}",
          flush=True)
    return 1 if failures else 0


_pyi_rth_seed_studio()
del _pyi_rth_seed_studio
