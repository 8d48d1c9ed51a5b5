"""studio/jobs: the job manager and the task path (prepare -> engine host -> apply) end to end
with a real project, media pool and the fake engine.

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
from studio.io.session import Session
from studio.jobs.inputs import render_tracks
from studio.jobs.manager import CANCELLED, FAILED, SUCCEEDED, JobError, JobManager
from studio.jobs.tasks import apply_task_result, submit_task
from studio.tasks import Target, TaskError

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
    return render_tracks(session.project, session.pool, [session.track_id], start, end)


def fake(**fields):
    """A request for the fake engine."""
    params = fields.pop("params", {})
    return {"model": "fake-builtin", "params": params, **fields}


def test_separation_result_becomes_undoable_stem_tracks(manager, session):
    rec = Recorder()
    manager.add_listener(rec)
    try:
        start, end = CLIP_START + 5000, CLIP_START + 60000
        jid = submit_task(manager, session, "separate", Target(session.track_id, start, end),
                          fake(params={"chunk_seconds": 0.25}, context_seconds=4000 / 44100))
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
    from studio.audio.render import render_mix

    span = session.project.audio_track_span(session.track_id)
    mix_before = render_mix(session.project, session.pool, span[0], span[1])
    source_audio = region_audio(session, start, end)
    apply_task_result(manager, jid, session)
    tracks = session.project.tracks
    stems = [t for t in tracks if t.parent_id == session.track_id]
    source = session.project.track(session.track_id)
    assert sorted(t.name for t in stems) == [f"{s} ({source.name})" for s in ("High", "Low", "Mid")]
    assert not source.mute  # a range: the source goes quiet only where the stems play
    ((group,),) = [source.take_groups]
    assert (group.start, group.end) == (start, end) and group.active_take().clips == []
    # each stem is a take with the engine's provenance, aligned with the region, and they sum to
    # the source audio there
    total = np.zeros((2, end - start), np.float32)
    for t in stems:
        ((clip, ws, we),) = session.project.sounding_clips(t)
        assert (clip.start, clip.length, ws, we) == (start, end - start, start, end)
        assert t.provenance["engine_id"] == "fake" and t.take_groups[0].takes[0].provenance["stem"] in t.name.lower()
        total += session.pool.read(session.project.media[clip.media_id], 0, clip.length)
    assert np.abs(total - source_audio).max() < 1e-5
    assert not region_audio(session, start, end).any()  # the source is quiet where the stems play
    # the stems plus what still plays of the source null against the original, over the whole song:
    # outside the range (the source alone, untouched) and inside it (the stems instead of the source)
    mix = render_mix(session.project, session.pool, span[0], span[1])
    assert np.abs(mix - mix_before).max() < 1e-5
    assert np.abs(mix_before).max() > 0.1
    a, b = start - span[0], end - span[0]
    for part in (slice(0, a), slice(b, None), slice(a, b)):
        assert np.abs(mix_before[:, part]).max() > 0.05  # real audio there, not a silent null
        assert np.abs(mix[:, part] - mix_before[:, part]).max() < 1e-5
    assert a > 0 and b < mix.shape[1]  # the range has song on both sides
    with pytest.raises(JobError, match="already"):
        apply_task_result(manager, jid, session)
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
    jid = submit_task(manager, session, "separate", Target(session.track_id, start, end), fake())
    job = manager.wait(jid, timeout=60)
    assert job.state == SUCCEEDED, job.error
    assert job.result.outputs == {} and set(job.result.stored) == set(job.media) == {"low", "mid", "high"}
    assert all(session.pool.has(item) and item.frames == end - start for item in job.media.values())
    assert {item.original_name for item in job.media.values()} == {f"{job.label} {n}" for n in job.media}
    source_audio = region_audio(session, start, end)
    apply_task_result(manager, jid, session)
    stems = [t for t in session.project.tracks if t.parent_id == session.track_id]
    total = sum(session.pool.read(session.project.media[session.project.sounding_clips(t)[0][0].media_id])
                for t in stems)
    assert np.abs(total - source_audio).max() < 1e-5


def test_inpaint_result_added_as_takes_can_be_undone_and_redone(manager, session):
    start, end = CLIP_START + 2000, CLIP_START + 30000
    jid = submit_task(manager, session, "inpaint", Target(session.track_id, start, end),
                      fake(seed=5, variations=2, context_seconds=2000 / 44100))
    job = manager.wait(jid, timeout=60)
    assert job.state == SUCCEEDED, job.error
    assert job.spec.context == (2000, 2000) and job.spec.regions == [(2000, 2000 + end - start)]
    before = snapshot(session)
    apply_task_result(manager, jid, session)
    track = session.project.track(session.track_id)
    (group,) = track.take_groups
    assert len(group.takes) == 2
    take = group.takes[0]
    assert (group.start, group.end) == (start, end) and group.active_take_id == take.id
    assert take.name.startswith("v1") and group.takes[1].name.startswith("v2")
    assert take.provenance["engine_id"] == "fake" and take.provenance["seed"] == 5
    assert take.provenance["input_sha256"]["audio"] and take.provenance["licence"]
    assert take.provenance["variation"] == 1 and take.provenance["range"] == [start, end]
    (clip,) = take.clips
    assert (clip.start, clip.length) == (start, end - start)
    taken = session.pool.read(session.project.media[clip.media_id])
    source = region_audio(session, start, end)  # the active take now plays
    assert np.array_equal(taken, source)
    # outside the region the track plays exactly what it did
    outside = region_audio(session, CLIP_START, start)
    session.undo_stack.undo()
    assert np.array_equal(outside, region_audio(session, CLIP_START, start))
    assert session.is_dirty is False and snapshot(session) == before
    assert not session.project.track(session.track_id).take_groups
    session.undo_stack.redo()
    track = session.project.track(session.track_id)
    assert track.take_groups[0].takes[0].id == take.id and track.take_groups[0].active_take_id == take.id
    session.save()
    reopened = Session.open(session.bundle)
    assert reopened.project.track(session.track_id).take_groups[0].takes[0].provenance["engine_id"] == "fake"
    reopened.close()


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
        holder["id"] = jid = submit_task(
            manager, session, "restyle", Target(session.track_id),
            fake(prompt="slow", params={"chunk_seconds": 0.05, "delay_per_chunk": 0.2}))
        job = manager.wait(jid, timeout=30)
    finally:
        manager.remove_listener(listener)
    assert job.state == CANCELLED
    assert job.finished - t_cancel[0] < 2.0
    with pytest.raises(JobError, match="not succeeded"):
        apply_task_result(manager, jid, session)
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
        holder["id"] = jid = submit_task(
            manager, session, "restyle", Target(session.track_id),
            fake(prompt="x", params={"chunk_seconds": 0.05, "delay_per_chunk": 0.05}))
        job = manager.wait(jid, timeout=30)
    finally:
        manager.remove_listener(listener)
    assert job.state == FAILED and "SIGKILL" in job.error and job.hint
    assert snapshot(session) == before
    jid2 = submit_task(manager, session, "restyle", Target(session.track_id), fake(prompt="x", variations=1))
    assert manager.wait(jid2, timeout=60).state == SUCCEEDED
    apply_task_result(manager, jid2, session)
    assert len(session.project.track(session.track_id).take_groups) == 1


def test_oom_retry_is_recorded_in_the_take(manager, session):
    jid = submit_task(manager, session, "restyle", Target(session.track_id),
                      fake(prompt="x", variations=1, params={"chunk_seconds": 0.1, "oom_above_chunk_scale": 0.5}))
    job = manager.wait(jid, timeout=60)
    assert job.state == SUCCEEDED
    assert any("out of memory" in line for line in job.log)
    apply_task_result(manager, jid, session)
    take = session.project.track(session.track_id).take_groups[0].takes[0]
    assert take.provenance["chunk_scale"] == 0.5


def test_transcription_becomes_a_midi_track_and_extend_a_take_after_the_region(manager, session):
    jid = submit_task(manager, session, "transcribe", Target(session.track_id), fake())
    assert manager.wait(jid, timeout=60).state == SUCCEEDED
    apply_task_result(manager, jid, session)
    midi = [t for t in session.project.tracks if t.kind == "midi"]
    assert len(midi) == 1 and midi[0].clips[0].notes and midi[0].parent_id == session.track_id
    tm, sr = session.project.tempo_map, session.project.sample_rate
    assert midi[0].clips[0].start == tm.sample_to_tick(CLIP_START, sr)

    jid = submit_task(manager, session, "extend", Target(session.track_id, CLIP_START, CLIP_START + 44100),
                      fake(seconds=0.5, variations=1))
    assert manager.wait(jid, timeout=60).state == SUCCEEDED
    apply_task_result(manager, jid, session)
    group = session.project.track(session.track_id).take_groups[0]
    assert (group.start, group.end) == (CLIP_START + 44100, CLIP_START + 44100 + 22050)


def test_bad_requests_are_clear_errors(manager, session):
    with pytest.raises(JobError, match="no engine"):
        manager.submit(base.GenerateSpec())
    with pytest.raises(TaskError, match="no track"):
        submit_task(manager, session, "separate", Target("nope"), fake())
    with pytest.raises(TaskError, match="empty"):
        submit_task(manager, session, "separate", Target(session.track_id, 10, 10), fake())
    with pytest.raises(TaskError, match="stems: 'kazoo' is not one of"):
        submit_task(manager, session, "separate", Target(session.track_id), {"model": "htdemucs", "stems": ["kazoo"]})
    with pytest.raises(TaskError, match="bars or in seconds"):
        submit_task(manager, session, "generate", Target(start=0), fake(prompt="x", bars=2, seconds=3))
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


def test_temp_folders_of_dead_managers_are_swept(tmp_path):
    import subprocess
    import sys

    from studio.jobs.manager import OWNER_FILE, WORK_PREFIX, sweep_stale_work_roots

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale, live, other = tmp_path / f"{WORK_PREFIX}a", tmp_path / f"{WORK_PREFIX}b", tmp_path / f"{WORK_PREFIX}c"
    for d in (stale, live, other):
        (d / "job").mkdir(parents=True)
        (d / "job" / "input.wav").write_bytes(b"x" * 1000)
    (stale / OWNER_FILE).write_text(dead.stdout.strip())
    (live / OWNER_FILE).write_text(str(os.getpid()))
    assert sweep_stale_work_roots(tmp_path) == 1
    assert not stale.exists() and live.exists() and other.exists()
