"""The app's actions: names, menu texts, shortcuts and menus, in one table.

:func:`create_actions` turns the table into QActions connected to methods
``on_<name>`` of the main window, so menus, the toolbar, context menus and tests
all trigger the same code (``window.actions_by_name["undo"].trigger()``).
"""
from __future__ import annotations

from PyQt6.QtGui import QAction, QKeySequence

# (name, menu, text, shortcut, tooltip)
ACTIONS: list[tuple[str, str, str, str, str]] = [
    ("new", "File", "&New Project…", "Ctrl+N", "Create a new project bundle"),
    ("open", "File", "&Open Project…", "Ctrl+O", "Open a .seedproj bundle"),
    ("save", "File", "&Save", "Ctrl+S", "Save the project"),
    ("save_as", "File", "Save &As…", "Ctrl+Alt+S", "Save the project as a new project folder and go on there"),
    ("import_files", "File", "&Import Audio/MIDI…", "Ctrl+I", "Import audio or MIDI files as new tracks"),
    ("export_ableton", "File", "Export Stems for &Ableton…", "Ctrl+Shift+E",
     "Write aligned stems, MIDI and the mix for Ableton Live (options, progress, cancel)"),
    ("export_mix", "File", "Export &Mix…", "Ctrl+E", "Render the mix to an audio file (options, progress, cancel)"),
    ("clean_media", "File", "Clean &Up Unused Media…", "",
     "Remove media files that the project, its autosaves and its undo history no longer use"),
    ("preferences", "File", "&Preferences…", "Ctrl+,", "Audio device, models folder, GPU"),
    ("quit", "File", "&Quit", "Ctrl+Q", "Quit Seed Studio"),
    ("undo", "Edit", "&Undo", "Ctrl+Z", "Undo"),
    ("redo", "Edit", "&Redo", "Ctrl+Shift+Z", "Redo"),
    ("cut", "Edit", "Cu&t", "Ctrl+X", "Cut the selected clips"),
    ("copy", "Edit", "&Copy", "Ctrl+C", "Copy the selected clips (MIDI as a Standard MIDI File)"),
    ("paste", "Edit", "&Paste", "Ctrl+V", "Paste clips or MIDI from the clipboard at the playhead"),
    ("delete", "Edit", "&Delete", "Delete", "Delete the selected clips"),
    ("split", "Edit", "&Split at Playhead", "Ctrl+T", "Split the selected clips at the playhead"),
    ("select_all", "Edit", "Select &All", "Ctrl+A", "Select the whole song on every track"),
    ("snap", "Edit", "S&nap to Grid", "Ctrl+G", "Snap edits to the grid"),
    ("zoom_in", "View", "Zoom &In", "Ctrl+=", "Zoom in"),
    ("zoom_out", "View", "Zoom &Out", "Ctrl+-", "Zoom out"),
    ("zoom_fit", "View", "Zoom to &Fit", "Ctrl+0", "Show the whole song"),
    ("taller", "View", "&Taller Tracks", "Ctrl+Up", "Taller tracks"),
    ("shorter", "View", "&Shorter Tracks", "Ctrl+Down", "Shorter tracks"),
    ("mixer", "View", "Mi&xer", "Ctrl+Alt+M", "Show or hide the mixer: faders, pan, mute/solo and meters"),
    ("models", "View", "&Models…", "", "Installed and downloadable models, with licences"),
    ("add_audio_track", "Track", "Add &Audio Track", "Ctrl+Shift+T", "Add an empty audio track"),
    ("add_midi_track", "Track", "Add &MIDI Track", "Ctrl+Shift+M", "Add an empty MIDI track"),
    ("open_piano_roll", "Track", "Open &Piano Roll", "Ctrl+P", "Edit the selected MIDI clip"),
    ("add_control_melody", "Track", "Add Melody Control Lane", "", "Pitch class per time"),
    ("add_control_dynamics", "Track", "Add Dynamics Control Lane", "", "Loudness curve (dB)"),
    ("add_control_rhythm", "Track", "Add Rhythm Control Lane", "", "Beat and onset markers"),
    ("fill_controls", "Track", "Fill Control Lanes from Track…", "",
     "Compute melody, dynamics and rhythm of a track or MIDI clip"),
    ("generate", "Engines", "&Generate…", "Ctrl+Shift+G", "Make new music from a prompt at the playhead or selection"),
    ("extend", "Engines", "E&xtend Clip…", "", "Continue the selected clip (or track) by N bars"),
    ("inpaint", "Engines", "&Inpaint Region…", "", "Regenerate the selected range of a track"),
    ("add_stem", "Engines", "Add S&tem…", "", "Generate a new instrument that fits the selected tracks"),
    ("restyle", "Engines", "&Restyle…", "", "Re-render the selected track or range in a new style"),
    ("convert_voice", "Engines", "Convert &Voice…", "", "Sing the selected vocal again in another voice"),
    ("separate", "Engines", "&Separate…", "Ctrl+Shift+S", "Split the selected track or region into stems"),
    ("transcribe", "Engines", "&Transcribe to MIDI…", "", "Transcribe the selected audio to notes"),
    ("analyze", "Engines", "&Analyze Tempo and Key…", "", "Find tempo, beats, meter and key (optionally set the grid)"),
    ("take_activate", "Takes", "&Play Selected Take", "Ctrl+Return", "Make the selected take the one that plays"),
    ("take_audition", "Takes", "&Audition Selected Take", "Ctrl+Shift+Return",
     "Play the selected take over its range"),
    ("take_original", "Takes", "Play &Original", "", "Play the track's own clips in this range"),
    ("take_comp", "Takes", "&Comp: Split Take Group at Playhead", "", "Split a take group so parts can use different takes"),
    ("take_delete", "Takes", "&Delete Take", "", "Delete the selected take"),
    ("play", "Transport", "&Play/Stop", "Space", "Start or stop playback"),
    ("loop", "Transport", "&Loop", "L", "Loop the loop range"),
    ("to_start", "Transport", "Go to &Start", "Home", "Move the playhead to the start"),
    ("metronome", "Transport", "&Metronome", "C", "Click on every beat while playing (not in exports)"),
    ("tempo", "Transport", "&Tempo and Meter…", "", "Set the tempo (BPM) and meter, for the song or from a bar on"),
    ("about", "Help", "&About Seed Studio", "", "About"),
]

MENUS = ["File", "Edit", "View", "Track", "Engines", "Takes", "Transport", "Help"]
CHECKABLE = {"snap", "loop", "metronome", "mixer"}
TOOLBAR = ["new", "open", "save", None, "undo", "redo", None, "play", "loop", "metronome", "to_start", None,
           "zoom_in", "zoom_out", "zoom_fit", "snap", "mixer", None, "generate", "separate", "transcribe", "analyze"]


TOOLBAR_TEXT = {"undo": "Undo", "redo": "Redo", "new": "New", "open": "Open", "save": "Save", "play": "▶ Play", "loop": "⟳ Loop",
                "to_start": "|◀", "metronome": "Click", "mixer": "Mixer", "zoom_in": "+", "zoom_out": "−", "zoom_fit": "Fit", "snap": "Snap",
                "generate": "Generate", "separate": "Separate", "transcribe": "Transcribe", "analyze": "Analyze"}


def create_actions(window) -> dict[str, QAction]:
    """QActions for :data:`ACTIONS`, triggered into ``window.on_<name>()``; added to
    ``window`` so their shortcuts work without a visible menu."""
    out: dict[str, QAction] = {}
    for name, _menu, text, shortcut, tip in ACTIONS:
        act = QAction(text, window)
        act.setObjectName(name)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
        act.setToolTip(tip + (f" ({shortcut})" if shortcut else ""))
        act.setStatusTip(tip)
        if name in TOOLBAR_TEXT:
            act.setIconText(TOOLBAR_TEXT[name])
        if name in CHECKABLE:
            act.setCheckable(True)
        handler = getattr(window, f"on_{name}", None)
        if handler is not None:
            act.triggered.connect(lambda _checked=False, h=handler: h())
        else:
            act.setEnabled(False)
        window.addAction(act)
        out[name] = act
    return out
