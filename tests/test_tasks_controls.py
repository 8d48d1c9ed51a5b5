"""Controls of generative jobs (melody, dynamics, rhythm) from a track's audio, a MIDI clip
or a drawn lane: values on the job's timeline with their own time range, checked against
the feature functions and the notes; carried through the job path to the engine."""
from __future__ import annotations

import numpy as np
import pytest

from engines.features import HOP_LENGTH, chroma, melody_argmax
from engines.host.local import LocalHost
from studio.io.session import Session
from studio.jobs.manager import JobManager
from studio.jobs.tasks import run_task
from studio.media.importing import import_files
from studio.model import edits
from studio.model.project import ControlLane, MidiClip, Note, Track
from studio.tasks import Target, TaskError
from studio.tasks.controls import control_targets

SR = 44100


@pytest.fixture
def session(tmp_path, shared):
    s = Session.create(tmp_path / "C.seedproj", sample_rate=SR, bpm=120)
    (flute,) = import_files(s, [shared / "audio" / "lmms_flute01.ogg"], start=SR)
    s.flute = flute.id
    yield s
    s.close()


def test_melody_from_a_track_follows_its_chroma_over_its_extent(session):
    s = session
    t0, t1 = 0, 4 * SR
    c = control_targets(s.project, s.pool, {"melody": {"source": f"track:{s.flute}", "strength": 2.0}}, t0, t1, None)
    m = c["melody"]
    values = np.asarray(m["values"])
    assert values.shape == (12, 1 + (t1 - t0) // HOP_LENGTH) and m["frame_rate"] == SR / HOP_LENGTH
    assert m["strength"] == 2.0 and m["source"] == f"track:{s.flute}" and m["origin"] == 0
    span = s.project.audio_track_span(s.flute)
    assert abs(m["start"] - span[0]) < SR // 20 and m["end"] <= min(span[1], t1)  # the flute's own extent
    from studio.jobs.inputs import render_tracks

    ref = melody_argmax(chroma(render_tracks(s.project, s.pool, [s.flute], t0, t1), SR))
    got = np.where(values.max(axis=0) > 0, values.argmax(axis=0), -1)
    assert np.array_equal(got, ref[: got.size])
    assert np.bincount(got[got >= 0], minlength=12).argmax() == 9  # the flute plays an A


def test_controls_from_a_midi_clip(session):
    s = session
    tm = s.project.tempo_map
    clip = MidiClip(start=tm.sample_to_tick(2 * SR, SR), length=1920 * 2,
                    notes=[Note(64, 100, 0, 960), Note(67, 50, 960, 960)], name="riff")
    s.undo_stack.push(edits.AddTracks([Track(name="keys", kind="midi", clips=[clip])]))
    c = control_targets(s.project, s.pool, {k: {"source": f"clip:{clip.id}"} for k in ("melody", "dynamics", "rhythm")},
                        SR, 5 * SR, None, origin=0)
    frame = lambda sample: int(round((sample - SR) / HOP_LENGTH))  # noqa: E731
    mel = np.asarray(c["melody"]["values"])
    assert mel[:, frame(2 * SR + 1000)].argmax() == 4 and mel[:, frame(2.5 * SR + 1000)].argmax() == 7  # E then G
    assert mel[:, frame(4 * SR)].max() == 0  # after the clip: no melody
    dyn = np.asarray(c["dynamics"]["values"])
    assert dyn[frame(2 * SR + 1000)] == pytest.approx(40 * np.log10(100 / 127), abs=1e-4)
    assert dyn[frame(2.5 * SR + 1000)] == pytest.approx(40 * np.log10(50 / 127), abs=1e-4)
    rhy = np.asarray(c["rhythm"]["values"])
    assert set(np.nonzero(rhy)[0]) == {frame(2 * SR), frame(2.5 * SR)}
    assert (c["melody"]["start"], c["melody"]["end"]) == (SR, 3 * SR)  # the clip's own range, from t0


def test_controls_from_drawn_lanes_and_errors(session):
    s = session
    s.undo_stack.push(edits.SetControlLane(s.flute, "dynamics", ControlLane("dynamics", [[SR, -40.0], [3 * SR, -10.0]])))
    s.undo_stack.push(edits.SetControlLane(s.flute, "melody", ControlLane("melody", [[SR, 2], [2 * SR, -1]])))
    c = control_targets(s.project, s.pool, {"dynamics": {"source": "lane"}, "melody": {"source": "lane"}},
                        0, 4 * SR, s.flute)
    dyn = np.asarray(c["dynamics"]["values"])
    k = round(2 * SR / HOP_LENGTH)
    assert dyn[k] == pytest.approx(-40 + 30 * (k * HOP_LENGTH - SR) / (2 * SR), abs=1e-4)  # a drawn crescendo: a line
    assert (c["dynamics"]["start"], c["dynamics"]["end"]) == (SR, 3 * SR)
    mel = np.asarray(c["melody"]["values"])
    assert mel[2, round(1.5 * SR / HOP_LENGTH)] == 1 and mel[:, round(2.5 * SR / HOP_LENGTH)].max() == 0
    with pytest.raises(TaskError, match="no drawn rhythm lane"):
        control_targets(s.project, s.pool, {"rhythm": {"source": "lane"}}, 0, SR, s.flute)
    with pytest.raises(TaskError, match="needs a track"):
        control_targets(s.project, s.pool, {"rhythm": {"source": "lane"}}, 0, SR, None)
    with pytest.raises(TaskError, match="has nothing where the result goes"):
        control_targets(s.project, s.pool, {"dynamics": {"source": "lane"}}, 5 * SR, 6 * SR, s.flute)


def test_controls_travel_with_the_job_to_the_engine(session):
    s = session
    s.undo_stack.push(edits.SetControlLane(s.flute, "dynamics", ControlLane("dynamics", [[0, -30.0], [2 * SR, -5.0]])))
    manager = JobManager(host_factory=lambda: LocalHost())
    try:
        out = run_task(s, "inpaint", Target(s.flute, 2 * SR, 3 * SR),
                       {"model": "fake-builtin", "variations": 1, "context_seconds": 1.0,
                        "controls": {"melody": {"source": f"track:{s.flute}"},
                                     "dynamics": {"source": "lane", "strength": 0.5}}}, manager=manager)
    finally:
        manager.shutdown()
    controls = out.job.spec.controls
    assert set(controls) == {"melody", "dynamics"} and controls["dynamics"]["strength"] == 0.5
    assert np.asarray(controls["melody"]["values"]).shape[0] == 12
    a, b = out.job.spec.region[0] - out.job.spec.context[0], out.job.spec.region[1] + out.job.spec.context[1]
    assert len(controls["dynamics"]["values"]) == 1 + (b - a) // HOP_LENGTH
    with pytest.raises(TaskError, match="source: 'kazoo' is not lane, lane:TRACK, track:TRACK or clip:CLIP"):
        run_task(s, "generate", Target(start=0), {"model": "fake-builtin", "prompt": "x",
                                                  "controls": {"melody": {"source": "kazoo"}}})
