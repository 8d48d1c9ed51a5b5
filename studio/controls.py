"""Fill a track's control lanes (melody, dynamics, rhythm) from another track or a MIDI clip.

Audio sources go through :mod:`engines.features` (Music ControlNet controls: chroma argmax
for melody, A-weighted smoothed loudness in dB for dynamics, onset strength peaks for
rhythm) on the source track's pre-fader render (:func:`studio.audio.render.render_track_raw`).
MIDI clips give melody as the pitch class of the highest sounding note, dynamics from
note velocities (``40 * log10(velocity / 127)`` dB, the usual MIDI volume curve) and
rhythm as note onsets. Beats and downbeats of the project's tempo map are added to the
rhythm lane in both cases. Lanes enter the project with ``SetControlLane`` in one step.

Qt-free, so the app (Track -> Fill Control Lanes…) and scripts use the same code.
"""
from __future__ import annotations

import numpy as np

from studio.model.project import ControlLane, MidiClip

POINT_HOP = 2048
"""Samples between control points (about 46 ms at 44.1 kHz)."""


def _beat_points(project, start: int, end: int) -> list[list[float]]:
    tm, sr = project.tempo_map, project.sample_rate
    out = []
    t0, t1 = tm.sample_to_tick(start, sr), tm.sample_to_tick(end, sr)
    for tick in tm.grid_ticks(t0, t1, tm.signatures[0].ticks_per_beat):
        _, beat, _ = tm.bar_beat_at(tick)
        out.append([tm.tick_to_sample(tick, sr), 2.0 if beat == 0 else 1.0])
    return out


def lanes_from_audio(project, audio: np.ndarray, sample_rate: int, start: int) -> dict[str, list]:
    """Control points (``[sample, value]``, timeline samples) from ``(channels, frames)`` audio
    that starts at timeline sample ``start``.

    Returns:
        ``{"melody": ..., "dynamics": ..., "rhythm": ...}``.
    """
    from engines.features import chroma, loudness_db, melody_argmax, onset_strength

    hop = POINT_HOP
    mel = melody_argmax(chroma(audio, sample_rate, hop_length=hop), silence=1e-3)
    db = loudness_db(audio, sample_rate, hop_length=hop)
    quiet = db < -60
    mel = np.where(quiet[: mel.size], -1, mel[: quiet.size])
    melody = [[int(start + i * hop), float(v)] for i, v in enumerate(mel)]
    # keep only changes of the step curve
    melody = [p for k, p in enumerate(melody) if k == 0 or p[1] != melody[k - 1][1]]
    dynamics = [[int(start + i * hop), float(round(max(-60.0, v), 2))] for i, v in enumerate(db)]
    onset = onset_strength(audio, sample_rate, hop_length=512)
    peaks = []
    if onset.size > 2:
        thr = float(np.mean(onset) + np.std(onset))
        is_peak = (onset[1:-1] > onset[:-2]) & (onset[1:-1] >= onset[2:]) & (onset[1:-1] > thr)
        peaks = [[int(start + (i + 1) * 512), 0.5] for i in np.nonzero(is_peak)[0]]
    end = start + audio.shape[-1]
    rhythm = sorted(_beat_points(project, start, end) + peaks, key=lambda p: p[0])
    return {"melody": melody, "dynamics": dynamics, "rhythm": rhythm}


def lanes_from_midi(project, clip: MidiClip) -> dict[str, list]:
    """Control points from a MIDI clip's notes (see the module docstring)."""
    tm, sr = project.tempo_map, project.sample_rate
    events = []
    for n in clip.notes:
        a = tm.tick_to_sample(clip.start + n.start, sr)
        b = tm.tick_to_sample(clip.start + n.end, sr)
        events.append((a, b, n.pitch, n.velocity))
    events.sort()
    s0, s1 = project.clip_span(clip)
    melody, dynamics = [], []
    for t in range(s0, s1, POINT_HOP):
        sounding = [e for e in events if e[0] <= t < e[1]]
        if sounding:
            top = max(sounding, key=lambda e: e[2])
            melody.append([t, float(top[2] % 12)])
            vel = max(e[3] for e in sounding)
            dynamics.append([t, float(round(40 * np.log10(max(1, vel) / 127.0), 2))])
        else:
            melody.append([t, -1.0])
            dynamics.append([t, -60.0])
    melody = [p for k, p in enumerate(melody) if k == 0 or p[1] != melody[k - 1][1]]
    onsets = [[a, 0.5] for a in sorted({e[0] for e in events})]
    rhythm = sorted(_beat_points(project, s0, s1) + onsets, key=lambda p: p[0])
    return {"melody": melody, "dynamics": dynamics, "rhythm": rhythm}


def fill_lanes(session, target_track_id: str, source: str, kinds=("melody", "dynamics", "rhythm")) -> list[str]:
    """Compute and set control lanes of ``target_track_id`` from ``source`` (``"track:<id>"``
    or ``"clip:<id>"``) as one undo step. Returns the kinds set.

    Args:
        session: anything with ``project``, ``pool`` and ``undo_stack`` (a Session or the
            app's Document).

    Raises:
        StudioError / RenderError: the source can't be rendered; KeyError: unknown source.
    """
    from studio.model import edits
    from studio.model.commands import MacroCommand

    lanes = compute_lanes(session.project, session.pool, source)
    cmds = [edits.SetControlLane(target_track_id, k, ControlLane(k, lanes[k], source)) for k in kinds]
    session.undo_stack.push(MacroCommand("Fill control lanes", cmds))
    return list(kinds)


def compute_lanes(proj, pool, source: str) -> dict[str, list]:
    """Control points of every kind from ``source`` (``"track:<id>"`` or ``"clip:<id>"``).

    Raises:
        StudioError / RenderError: the source can't be rendered; KeyError: unknown source.
    """
    from studio.errors import StudioError
    from studio.audio.render import render_track_raw

    what, _, sid = source.partition(":")
    if what == "clip":
        _, clip, _ = proj.find_clip(sid)
        if not isinstance(clip, MidiClip):
            raise StudioError("only MIDI clips can be a control source; pick the audio clip's track instead")
        lanes = lanes_from_midi(proj, clip)
    else:
        try:
            a, b = proj.track_span(sid)
        except ValueError as exc:
            raise StudioError(str(exc)) from None
        audio = render_track_raw(proj, pool, sid, a, b)
        lanes = lanes_from_audio(proj, audio, proj.sample_rate, a)
    return lanes


