"""Separation in the project through the task path: stem tracks grouped under the source,
undo, null tests. An identity separator (stem k = weight k x mixture) runs in this
process through :class:`engines.host.local.LocalHost` (the host's own job loop), so every
sample can be checked; the last test runs the DSP fallback in the real host process."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("torch")
pytest.importorskip("demucs")

from engines.registry import get_engine_class  # noqa: E402
from engines.separation.identity import identity_model  # noqa: E402
from studio.media.importing import import_audio  # noqa: E402
from studio.audio.render import render_mix, render_track_raw  # noqa: E402
from studio.io.session import Session  # noqa: E402
from studio.jobs.manager import JobManager  # noqa: E402
from studio.jobs.tasks import run_task  # noqa: E402
from studio.tasks import Target, TaskError  # noqa: E402

WEIGHTS = [0.1, 0.2, 0.3, 0.4]
OFFSET = 12_345  # the source clip does not start at 0


@pytest.fixture(scope="module")
def excerpt(shared, tmp_path_factory):
    """3 s of the real multitrack mixture (44.1 kHz) as a float WAV."""
    audio, sr = sf.read(str(shared / "multitrack" / "blupi001" / "mixture.flac"), dtype="float32")
    path = tmp_path_factory.mktemp("src") / "mixture.wav"
    sf.write(str(path), audio[sr * 3: sr * 6], sr, subtype="FLOAT")
    return path


def _session(tmp_path, excerpt, sample_rate):
    session = Session.create(tmp_path / "Song.seedproj", sample_rate=sample_rate)
    (track,) = import_audio(session, [excerpt], start=OFFSET)
    return session, track


def _identity_engine(**params):
    engine = get_engine_class("htdemucs")()
    engine.use_model("htdemucs", identity_model(weights=WEIGHTS, samplerate=44100, segment=0.7))
    engine.load("cpu")
    return engine


def separate(session, track_id, *, start=None, end=None, engine=None, **request):
    """Separate through the task path; returns the new stem tracks."""
    from engines.host.local import LocalHost

    before = {t.id for t in session.project.tracks}
    request.setdefault("model", "htdemucs")
    request.setdefault("device", "cpu")
    manager = JobManager(host_factory=lambda: LocalHost(engines={"htdemucs": engine or _identity_engine()}))
    try:
        run_task(session, "separate", Target(track_id, start, end), request, manager=manager)
    finally:
        manager.shutdown()
    return [t for t in session.project.tracks if t.id not in before]


def test_null_test_stems_render_to_the_source_mix(tmp_path, excerpt):
    session, source = _session(tmp_path, excerpt, 44100)
    project, pool = session.project, session.pool
    before = render_mix(project, pool)
    stems = separate(session, source.id)
    assert [t.name for t in stems] == [f"{n} ({source.name})" for n in ("Drums", "Bass", "Other", "Vocals")]
    assert all(t.parent_id == source.id and t.kind == "audio" for t in stems)
    assert project.track(source.id).mute
    assert [t.id for t in project.tracks] == [source.id] + [t.id for t in stems]
    after = render_mix(project, pool)
    assert after.shape == before.shape
    assert np.abs(after - before).max() < 1e-6  # nulls against the source
    src = render_track_raw(project, pool, source.id)
    for track, w in zip(stems, WEIGHTS):
        (group,) = track.take_groups
        (take,) = group.takes
        (clip,) = take.clips
        assert (group.start, clip.start, clip.length) == (OFFSET, OFFSET, src.shape[1] - OFFSET)
        assert take.provenance["licence"] == "MIT" and take.provenance["stem"] in track.name.lower()
        stem = render_track_raw(project, pool, track.id, 0, src.shape[1])
        assert np.abs(stem - w * src).max() < 1e-4  # aligned: no offset, same length


def test_one_undo_removes_everything_and_redo_restores(tmp_path, excerpt):
    session, source = _session(tmp_path, excerpt, 44100)
    project = session.project
    n_tracks, n_media = len(project.tracks), len(project.media)
    separate(session, source.id, stems=["vocals"])
    assert [t.provenance["stem"] for t in project.tracks[1:]] == ["vocals", "instrumental"]
    assert len(project.media) == n_media + 2
    assert session.undo_stack.undo()
    assert len(project.tracks) == n_tracks and len(project.media) == n_media
    assert not project.track(source.id).mute
    assert session.undo_stack.redo()
    assert len(project.tracks) == n_tracks + 2 and project.track(source.id).mute


def test_region_at_48k_is_aligned_and_residual_nulls(tmp_path, excerpt):
    """A 44.1 kHz file in a 48 kHz project, a region of it, a 44.1 kHz model: the stems
    come back at 48 kHz, exactly over the region, and (residual mode) null exactly."""
    session, source = _session(tmp_path, excerpt, 48000)
    project, pool = session.project, session.pool
    start, end = OFFSET + 30_000, OFFSET + 30_000 + 48_000 + 7
    before = render_mix(project, pool, start, end)
    stems = separate(session, source.id, start=start, end=end, params={"residual": True})
    for t in stems:
        clip = t.take_groups[0].takes[0].clips[0]
        assert (clip.start, clip.length) == (start, end - start)
        assert pool.read(project.media[clip.media_id]).shape[1] == end - start
    assert np.abs(render_mix(project, pool, start, end) - before).max() < 1e-6
    # outside the region the source still plays, as it did: the whole song nulls
    assert not project.track(source.id).mute
    whole_before_after = render_mix(project, pool, OFFSET, start)
    assert np.array_equal(whole_before_after, render_track_raw(project, pool, source.id, OFFSET, start))
    assert np.abs(whole_before_after).max() > 0.01
    # the vocals stem is 0.4 x the source, through the 48k -> 44.1k -> 48k round trip
    vocals = render_track_raw(project, pool, stems[3].id, start, end)
    err = vocals - 0.4 * before
    assert 10 * np.log10(np.sum(err**2) / np.sum((0.4 * before) ** 2)) < -60


def test_dsp_fallback_in_project_records_its_provenance(tmp_path, excerpt):
    session, source = _session(tmp_path, excerpt, 44100)
    stems = separate(session, source.id, model="dsp", stems=["drums"])
    assert [t.provenance["stem"] for t in stems] == ["drums", "no_drums"]
    prov = stems[0].take_groups[0].takes[0].provenance
    assert prov["extra"]["fallback"] == "dsp" and prov["engine_id"] == "dsp-separation"
    before = render_track_raw(session.project, session.pool, source.id)
    assert np.abs(render_mix(session.project, session.pool) - before).max() < 1e-5


def test_bad_track_and_range_raise_clear_errors(tmp_path, excerpt):
    session, source = _session(tmp_path, excerpt, 44100)
    with pytest.raises(TaskError, match="no track"):
        separate(session, "nope")
    with pytest.raises(TaskError, match="empty"):
        separate(session, source.id, start=5000, end=5000)
    with pytest.raises(TaskError, match="kazoo"):
        separate(session, source.id, stems=["kazoo"])
    assert len(session.project.tracks) == 1 and not session.project.track(source.id).mute


def test_dsp_engine_through_the_engine_host_process(tmp_path, excerpt):
    """The UI path: the job manager renders the region, the engine host process runs the
    DSP fallback, stems come back as files at the region's exact length."""
    from studio.jobs.manager import SUCCEEDED
    from studio.jobs.tasks import submit_task

    session, source = _session(tmp_path, excerpt, 44100)
    start, end = OFFSET + 1000, OFFSET + 1000 + 44100 + 3
    with JobManager(work_root=tmp_path / "jobs") as manager:
        jid = submit_task(manager, session, "separate", Target(source.id, start, end),
                          {"model": "dsp", "stems": ["vocals"], "context_seconds": 2000 / 44100})
        assert manager.host().pid != __import__("os").getpid()
        job = manager.wait(jid, timeout=120)
        assert job.state == SUCCEEDED, job.error
        assert job.result.provenance.extra["fallback"] == "dsp"
        assert {k: v.frames for k, v in job.media.items()} == {"vocals": end - start, "instrumental": end - start}
        vocals = session.pool.read(job.media["vocals"])
        inst = session.pool.read(job.media["instrumental"])
        src = render_track_raw(session.project, session.pool, source.id, start, end)
        assert np.abs(vocals + inst - src).max() < 1e-5
