"""studio/jobs.py: the job manager end to end with a real project, media pool and the fake engine.

One JobManager (one engine host process) is shared by the module."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engines import base
from studio.media.importing import import_audio
from studio.jobs.manager import CANCELLED, FAILED, SUCCEEDED, JobError, JobManager, render_track
from studio.io.session import Session

CLIP_START = 1000


@pytest.fixture(scope="module")
def manager():
    m = JobManager(cancel_grace=1.0)
    m.host().start()
    yield m
    m.shutdown()


@pytest.fixture()
def session(tmp_path, shared):
    s = Session.create(tmp_path / "song", sample_rate=44100)
    (track,) = import_audio(s, [shared / "audio/lmms_house_loop01.ogg"], start=CLIP_START)
    s.undo_stack.mark_saved()
    s.track_id = track.id
    yield s
    s.close()


class Recorder:
    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def __call__(self, e):
        with self.lock:
            self.events.append(e)

    def of(self, job_id):
        with self.lock:
            return [e for e in self.events if e.job_id == job_id]


def snapshot(session):
    return session.project.to_dict()


def region_audio(session, start, end):
    return render_track(session.project, session.pool, session.track_id, start, end)


def test_separation_result_becomes_undoable_stem_tracks(manager, session):
    rec = Recorder()
    manager.add_listener(rec)
    try:
        start, end = CLIP_START + 5000, CLIP_START + 60000
        jid = manager.submit_for_project(session.project, session.pool,
                                         base.SeparateSpec(engine_id="fake", params={"chunk_seconds": 0.25}),
                                         track_id=session.track_id, start=start, end=end, context=4000)
        job = manager.wait(jid, timeout=60)
    finally:
        manager.remove_listener(rec)
    assert job.state == SUCCEEDED, job.error
    kinds = [e.kind for e in rec.of(jid)]
    assert kinds[0] == "queued" and kinds[1] == "started" and kinds[-1] == "succeeded"
    fractions = [e.fraction for e in rec.of(jid) if e.kind == "progress"]
    assert len(fractions) >= 5 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert job.spec.context == (4000, 4000) and job.spec.region == (start, end)
    assert session.project.to_dict() == snapshot(session) and not session.is_dirty  # nothing applied yet

    before = snapshot(session)
    manager.apply_result(jid, session.undo_stack)
    tracks = session.project.tracks
    stems = [t for t in tracks if t.parent_id == session.track_id]
    source = session.project.track(session.track_id)
    assert sorted(t.name for t in stems) == [f"{source.name} {s}" for s in ("high", "low", "mid")]
    assert source.mute
    # each stem is a take with the engine's provenance, aligned with the region, and they sum to
    # the source audio there
    total = np.zeros((2, end - start), np.float32)
    for t in stems:
        ((clip, ws, we),) = session.project.sounding_clips(t)
        assert (clip.start, clip.length, ws, we) == (start, end - start, start, end)
        assert t.provenance["engine_id"] == "fake" and t.take_groups[0].takes[0].provenance["stem"] in t.name
        total += session.pool.read(session.project.media[clip.media_id], 0, clip.length)
    assert np.abs(total - region_audio(session, start, end)).max() < 1e-5
    with pytest.raises(JobError, match="already"):
        manager.apply_result(jid, session.undo_stack)
    assert session.undo_stack.undo()
    assert snapshot(session) == before
    assert session.undo_stack.redo()
    assert len([t for t in session.project.tracks if t.parent_id == session.track_id]) == 3


def test_outputs_are_stored_by_the_engine_host_not_the_studio_process(manager, session, monkeypatch):
    from studio.media.pool import MediaPool

    def no_store(*_a, **_k):
        raise AssertionError("the studio process imported a job output")

    monkeypatch.setattr(MediaPool, "_store", no_store)
    start, end = CLIP_START, CLIP_START + 30000
    jid = manager.submit_for_project(session.project, session.pool, base.SeparateSpec(engine_id="fake"),
                                     track_id=session.track_id, start=start, end=end)
    job = manager.wait(jid, timeout=60)
    assert job.state == SUCCEEDED, job.error
    assert job.result.outputs == {} and set(job.result.stored) == set(job.media) == {"low", "mid", "high"}
    assert all(session.pool.has(item) and item.frames == end - start for item in job.media.values())
    assert {item.original_name for item in job.media.values()} == {f"{job.label} {n}" for n in job.media}
    manager.apply_result(jid, session.undo_stack)
    stems = [t for t in session.project.tracks if t.parent_id == session.track_id]
    total = sum(session.pool.read(session.project.media[session.project.sounding_clips(t)[0][0].media_id])
                for t in stems)
    assert np.abs(total - region_audio(session, start, end)).max() < 1e-5


def test_result_added_as_take_can_be_undone_and_redone(manager, session):
    start, end = CLIP_START + 2000, CLIP_START + 30000
    jid = manager.submit_for_project(session.project, session.pool,
                                     base.InpaintSpec(engine_id="fake", mask=(3000, 9000), seed=5),
                                     track_id=session.track_id, start=start, end=end, context=2000)
    job = manager.wait(jid, timeout=60)
    assert job.state == SUCCEEDED, job.error
    before = snapshot(session)
    manager.apply_result(jid, session.undo_stack, name="inpaint A")
    track = session.project.track(session.track_id)
    (group,) = track.take_groups
    (take,) = group.takes
    assert (group.start, group.end) == (start, end) and group.active_take_id == take.id
    assert take.name == "inpaint A"
    assert take.provenance["engine_id"] == "fake" and take.provenance["seed"] == 5
    assert take.provenance["input_sha256"]["audio"] and take.provenance["licence"]
    (clip,) = take.clips
    assert (clip.start, clip.length) == (start, end - start)
    taken = session.pool.read(session.project.media[clip.media_id])
    source = region_audio(session, start, end)  # the active take now plays
    assert np.array_equal(taken, source)
    assert session.is_dirty
    session.undo_stack.undo()
    assert snapshot(session) == before and not session.project.track(session.track_id).take_groups
    session.undo_stack.redo()
    track = session.project.track(session.track_id)
    assert track.take_groups[0].takes[0].id == take.id and track.take_groups[0].active_take_id == take.id
    session.save()
    reopened = Session.open(session.bundle)
    assert reopened.project.track(session.track_id).take_groups[0].takes[0].provenance["engine_id"] == "fake"


def test_cancel_running_job_within_two_seconds_leaves_no_take(manager, session):
    before = snapshot(session)
    fired = threading.Event()
    t_cancel = [0.0]
    holder = {}

    def listener(e):
        if e.job_id == holder.get("id") and e.kind == "progress" and e.fraction > 0 and not fired.is_set():
            fired.set()
            t_cancel[0] = time.monotonic()
            manager.cancel(e.job_id)

    manager.add_listener(listener)
    try:
        holder["id"] = jid = manager.submit_for_project(
            session.project, session.pool,
            base.ConvertVoiceSpec(engine_id="fake", params={"chunk_seconds": 0.05, "delay_per_chunk": 0.2}),
            track_id=session.track_id)
        job = manager.wait(jid, timeout=30)
    finally:
        manager.remove_listener(listener)
    assert job.state == CANCELLED
    assert job.finished - t_cancel[0] < 2.0
    with pytest.raises(JobError, match="not succeeded"):
        manager.apply_result(jid, session.undo_stack)
    assert snapshot(session) == before and not session.is_dirty
    assert not Path(job.work_dir).exists()


def test_cancel_queued_job_and_status(manager):
    slow = base.GenerateSpec(engine_id="fake", frames=8000 * 30, sample_rate=8000,
                             params={"chunk_seconds": 1.0, "delay_per_chunk": 0.1})
    first = manager.submit(slow)
    second = manager.submit(slow.replace(seed=1))
    assert manager.status(second).state == "queued"
    assert manager.cancel(second)
    assert manager.status(second).state == CANCELLED
    manager.cancel(first)
    assert manager.wait(first, timeout=10).state == CANCELLED
    assert not manager.cancel(first)  # already finished
    with pytest.raises(JobError):
        manager.status("nope")
    assert {j.id for j in manager.jobs()} >= {first, second}


def test_sigkill_of_host_fails_the_job_and_next_job_succeeds(manager, session):
    before = snapshot(session)
    killed = threading.Event()
    holder = {}

    def listener(e):
        if e.job_id == holder.get("id") and e.kind == "progress" and e.fraction > 0 and not killed.is_set():
            killed.set()
            os.kill(manager.host().pid, signal.SIGKILL)

    manager.add_listener(listener)
    try:
        holder["id"] = jid = manager.submit_for_project(
            session.project, session.pool,
            base.ConvertVoiceSpec(engine_id="fake", params={"chunk_seconds": 0.05, "delay_per_chunk": 0.05}),
            track_id=session.track_id)
        job = manager.wait(jid, timeout=30)
    finally:
        manager.remove_listener(listener)
    assert job.state == FAILED and "SIGKILL" in job.error and job.hint
    assert snapshot(session) == before
    jid2 = manager.submit_for_project(session.project, session.pool, base.ConvertVoiceSpec(engine_id="fake"),
                                      track_id=session.track_id)
    assert manager.wait(jid2, timeout=60).state == SUCCEEDED
    manager.apply_result(jid2, session.undo_stack)
    assert len(session.project.track(session.track_id).take_groups) == 1


def test_oom_retry_is_recorded_in_the_take(manager, session):
    jid = manager.submit_for_project(
        session.project, session.pool,
        base.ConvertVoiceSpec(engine_id="fake", params={"chunk_seconds": 0.1, "oom_above_chunk_scale": 0.5}),
        track_id=session.track_id)
    job = manager.wait(jid, timeout=60)
    assert job.state == SUCCEEDED
    assert any("out of memory" in line for line in job.log)
    manager.apply_result(jid, session.undo_stack)
    take = session.project.track(session.track_id).take_groups[0].takes[0]
    assert take.provenance["chunk_scale"] == 0.5


def test_transcription_becomes_a_midi_track_and_extend_a_take_after_the_region(manager, session):
    jid = manager.submit_for_project(session.project, session.pool, base.TranscribeSpec(engine_id="fake"),
                                     track_id=session.track_id)
    assert manager.wait(jid, timeout=60).state == SUCCEEDED
    manager.apply_result(jid, session.undo_stack)
    midi = [t for t in session.project.tracks if t.kind == "midi"]
    assert len(midi) == 1 and midi[0].clips[0].notes and midi[0].parent_id == session.track_id
    tm, sr = session.project.tempo_map, session.project.sample_rate
    assert midi[0].clips[0].start == tm.sample_to_tick(CLIP_START, sr)

    jid = manager.submit_for_project(session.project, session.pool,
                                     base.ExtendSpec(engine_id="fake", frames=22050),
                                     track_id=session.track_id, start=CLIP_START, end=CLIP_START + 44100)
    assert manager.wait(jid, timeout=60).state == SUCCEEDED
    manager.apply_result(jid, session.undo_stack)
    group = session.project.track(session.track_id).take_groups[0]
    assert (group.start, group.end) == (CLIP_START + 44100, CLIP_START + 44100 + 22050)


def test_bad_requests_are_clear_errors(manager, session):
    with pytest.raises(JobError, match="no engine"):
        manager.submit(base.GenerateSpec())
    with pytest.raises(JobError, match="no track"):
        manager.submit_for_project(session.project, session.pool, base.SeparateSpec(engine_id="fake"),
                                   track_id="nope")
    with pytest.raises(JobError, match="empty"):
        manager.submit_for_project(session.project, session.pool, base.SeparateSpec(engine_id="fake"),
                                   track_id=session.track_id, start=10, end=10)
    jid = manager.submit(base.GenerateSpec(engine_id="fake", frames=10, sample_rate=8000, params={"noise": 9}))
    job = manager.wait(jid, timeout=30)
    assert job.state == FAILED and "noise" in job.error


def test_plain_submit_with_array_input_and_default_device(manager):
    audio = np.random.default_rng(3).standard_normal((2, 30_000)).astype(np.float32) * 0.1
    jid = manager.submit(base.AnalyzeSpec(engine_id="fake", audio=audio, sample_rate=48000, params={"noise": 0.0}))
    job = manager.wait(jid, timeout=60)
    assert job.state == SUCCEEDED and job.result.data["frames"] == 30_000
    assert job.result.data["peak"] == pytest.approx(float(np.abs(audio).max()))
    assert job.result.provenance.input_sha256["audio"]  # hashed from the WAV the host was given
    with JobManager(default_device="cpu") as m2:
        jid = m2.submit(base.GenerateSpec(engine_id="fake", frames=800, sample_rate=8000))
        job = m2.wait(jid, timeout=60)
        assert job.spec.device == "cpu" and job.result.provenance.device == "cpu"
        import soundfile as sf

        assert sf.info(job.result.outputs["take1"]).frames == 800
