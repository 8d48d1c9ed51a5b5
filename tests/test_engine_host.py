"""engines/host.py: the engine host process: progress, cancel, crash isolation, OOM retry, engine cache.

One host process is shared by the module (spawning one costs about a second here)."""
from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from engines import base, registry
from engines.base import HostCrashed, InvalidJob, JobCancelled, OutOfMemory
from engines.host import EngineHost, HostConfig, OutputsHook
from engines.host.process import _Runner


@pytest.fixture(scope="module")
def host():
    h = EngineHost(HostConfig(), cancel_grace=1.0)
    h.start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def mixture(shared):
    data, sr = sf.read(shared / "multitrack/blupi001/mixture.flac", dtype="float32", always_2d=True,
                       frames=5 * 44100)
    return np.ascontiguousarray(data.T), sr


def slow_generate(seconds=60.0, delay=0.1, **params):
    return base.GenerateSpec(engine_id="fake", frames=int(seconds * 8000), sample_rate=8000,
                             params={"chunk_seconds": 1.0, "delay_per_chunk": delay, **params})


def test_progress_ordered_to_one_and_files_back(host, mixture, tmp_path):
    audio, sr = mixture
    events = []
    r = host.run("p1", base.SeparateSpec(engine_id="fake", audio=audio, sample_rate=sr,
                                         params={"chunk_seconds": 0.5}), events.append, work_dir=str(tmp_path))
    progress = [e for e in events if e["type"] == "progress"]
    fractions = [e["fraction"] for e in progress]
    assert len(fractions) >= 10
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(e["job_id"] == "p1" for e in progress)
    assert all(e["eta"] is None or e["eta"] >= 0 for e in progress)
    stems = {k: sf.read(v, dtype="float32", always_2d=True)[0].T for k, v in r.outputs.items()}
    assert set(stems) == {"low", "mid", "high"}
    assert np.abs(sum(stems.values()) - audio).max() < 1e-5  # bands sum to the input, as files
    prov = r.provenance
    assert (prov.engine_id, prov.device, prov.dtype, prov.task) == ("fake", "cpu", "float32", "separate")
    assert prov.licence == "GPL-3.0-or-later" and prov.input_sha256["audio"]
    assert {"load", "run", "total"} <= set(prov.timings) and prov.created
    assert ("fake", "cpu", "float32") in host.loaded()  # kept loaded for the next job


def test_host_imports_neither_torch_nor_qt_for_a_cpu_only_engine(host):
    host.run("light", slow_generate(seconds=1, delay=0.0))
    status = host.status()
    assert status["torch_imported"] is False and status["qt_imported"] is False
    assert status["pid"] == host.pid


def test_oom_is_retried_with_smaller_chunks(host):
    events = []
    r = host.run("oom1", slow_generate(4, 0.0, oom_above_chunk_scale=0.3), events.append)
    assert r.provenance.chunk_scale == 0.25
    logs = [e["text"] for e in events if e["type"] == "log"]
    assert any("retrying with chunk_scale 0.5" in t for t in logs)
    assert any("retrying with chunk_scale 0.25" in t for t in logs)
    fractions = [e["fraction"] for e in events if e["type"] == "progress"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    pid = host.pid
    with pytest.raises(OutOfMemory) as info:
        host.run("oom2", slow_generate(4, 0.0, oom_above_chunk_scale=-1.0))
    assert "even with chunks" in info.value.message and info.value.hint
    assert host.pid == pid  # an OOM does not cost the host


def test_host_runs_below_the_studio_priority_on_every_thread(host):
    if not hasattr(os, "getpriority"):
        pytest.skip("no POSIX priorities")
    host.run("prio", slow_generate(seconds=1, delay=0.0))
    expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + HostConfig().nice)
    tids = [int(t) for t in os.listdir(f"/proc/{host.pid}/task")] if os.path.isdir("/proc") else [host.pid]
    assert tids and all(os.getpriority(os.PRIO_PROCESS, t) == expected for t in tids)
    if hasattr(os, "SCHED_BATCH"):
        assert all(os.sched_getscheduler(t) == os.SCHED_BATCH for t in tids)


def test_outputs_hook_stores_outputs_in_the_host(host, mixture, tmp_path):
    from studio.media.pool import MediaPool

    audio, sr = mixture
    events = []
    pool_root = tmp_path / "bundle" / "media"
    hook = OutputsHook("studio.jobs.outputs:import_outputs",
                       {"pool_root": str(pool_root), "pool_sample_rate": 48000, "label": "Split"})
    r = host.run("hook", base.SeparateSpec(engine_id="fake", audio=audio, sample_rate=sr,
                                           params={"chunk_seconds": 0.5}),
                 events.append, work_dir=str(tmp_path / "job"), outputs_hook=hook)
    assert r.outputs == {} and set(r.stored) == {"low", "mid", "high"}
    stages = [e["stage"] for e in events if e["type"] == "progress"]
    assert any(s.startswith("saving") for s in stages)
    fractions = [e["fraction"] for e in events if e["type"] == "progress"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    from studio.model.project import MediaItem

    pool = MediaPool(pool_root, 48000)
    items = {k: MediaItem.from_dict(v) for k, v in r.stored.items()}
    n48 = round(audio.shape[1] * 48000 / sr)
    for name, item in items.items():
        assert pool.has(item) and item.sample_rate == 48000 and item.frames == n48 and item.channels == 2
        assert item.original_name == f"Split {name}"
        assert pool._peaks_path(item).is_file()  # the peak cache was built in the host too
    # the stems still sum to the input after the (linear) resampling to 48 kHz
    total = sum(pool.read(item) for item in items.values())
    import soxr

    ref = soxr.resample(audio.T, sr, 48000, quality="VHQ").T
    assert np.abs(total - ref).max() < 1e-4


def test_outputs_hook_failure_fails_the_job_with_the_cause(host, mixture, tmp_path):
    audio, sr = mixture
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the media folder should be")
    hook = OutputsHook("studio.jobs.outputs:import_outputs", {"pool_root": str(blocker / "media"),
                                                               "pool_sample_rate": 44100})
    with pytest.raises(base.EngineError, match="could not be saved"):
        host.run("hookfail", base.SeparateSpec(engine_id="fake", audio=audio[:, :8000], sample_rate=sr),
                 outputs_hook=hook)
    with pytest.raises(base.EngineError, match="not found"):
        host.run("hookname", base.SeparateSpec(engine_id="fake", audio=audio[:, :8000], sample_rate=sr),
                 outputs_hook=OutputsHook("studio.no_such_module:f"))
    r = host.run("after", base.SeparateSpec(engine_id="fake", audio=audio[:, :8000], sample_rate=sr))
    assert set(r.outputs) == {"low", "mid", "high"}  # the host is fine afterwards


def test_engine_errors_are_reported_and_host_survives(host):
    pid = host.pid
    with pytest.raises(InvalidJob, match="noise"):
        host.run("bad", base.GenerateSpec(engine_id="fake", frames=10, sample_rate=8000, params={"noise": 5}))
    with pytest.raises(base.EngineNotFound):
        host.run("none", base.GenerateSpec(engine_id="no-such-engine"))
    assert host.pid == pid


def test_cooperative_cancel_within_two_seconds(host):
    pid = host.pid
    started = threading.Event()
    t0 = [0.0]

    def on_event(e):
        if e["type"] == "progress" and e["fraction"] > 0 and not started.is_set():
            t0[0] = time.monotonic()
            started.set()
            host.cancel()

    with pytest.raises(JobCancelled):
        host.run("c1", slow_generate(), on_event)
    assert time.monotonic() - t0[0] < 2.0
    assert host.pid == pid  # stopped at a chunk boundary; no kill needed


def test_hung_engine_is_killed_on_cancel_within_two_seconds(host):
    timer = threading.Timer(0.5, host.cancel)
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(JobCancelled, match="killed"):
        host.run("c2", slow_generate(seconds=4, delay=30.0))
    assert time.monotonic() - t0 - 0.5 < 2.0
    assert not host.is_alive()
    r = host.run("after-cancel", slow_generate(seconds=1, delay=0.0))
    assert r.outputs["take1"]


def test_sigkill_mid_job_fails_then_next_job_succeeds(host):
    host.start()
    pid = host.pid
    killed = threading.Event()

    def on_event(e):
        if e["type"] == "progress" and e["fraction"] >= 0.1 and not killed.is_set():
            killed.set()
            os.kill(pid, signal.SIGKILL)

    with pytest.raises(HostCrashed, match="SIGKILL") as info:
        host.run("k1", slow_generate(), on_event)
    assert info.value.hint
    r = host.run("k2", slow_generate(seconds=1, delay=0.0))
    assert host.pid != pid and sf.info(r.outputs["take1"]).frames == 8000


def test_engine_crash_is_host_crashed(host):
    with pytest.raises(HostCrashed):
        host.run("crash", slow_generate(seconds=3, delay=0.0, crash=True))
    assert host.run("ok", slow_generate(seconds=1, delay=0.0)).outputs


class _Conn:
    def __init__(self):
        self.sent = []

    def send(self, m):
        self.sent.append(m)


def test_lru_unloads_least_recently_used(register_engines):
    register_engines([registry.EngineEntry(name, "engines.testing.fake:FakeEngine", base.TASKS)
                      for name in ("fake-a", "fake-b")])
    runner = _Runner(_Conn(), threading.Event(), HostConfig(max_loaded=2, min_free_bytes=0))
    spec = base.GenerateSpec(engine_id="fake", frames=100, sample_rate=8000)
    engines = {}
    for eid in ("fake", "fake-a", "fake", "fake-b"):
        engines[eid] = runner.engine_for(spec.replace(engine_id=eid))[0]
    assert [k[0] for k in runner.cache] == ["fake", "fake-b"]  # fake-a was least recently used
    assert not engines["fake-a"].loaded and engines["fake"].loaded
    assert engines["fake"].load_count == 1  # loaded once, reused
    assert any("unloaded engine fake-a" in m.get("text", "") for m in runner.conn.sent)


def test_results_are_plain_json():
    from engines.host.protocol import jsonable as _jsonable

    assert _jsonable({"a": np.float32(1.5), "b": np.arange(3), "c": (1, 2), "n": np.int64(3)}) == {
        "a": 1.5, "b": [0, 1, 2], "c": [1, 2], "n": 3}


def test_memory_pressure_unloads_before_loading(monkeypatch, register_engines):
    import engines.devices as devices

    register_engines([registry.EngineEntry("fake-c", "engines.testing.fake:FakeEngine", base.TASKS)])
    runner = _Runner(_Conn(), threading.Event(), HostConfig(max_loaded=4, min_free_bytes=1 << 30))
    spec = base.GenerateSpec(engine_id="fake", frames=100, sample_rate=8000)
    monkeypatch.setattr(devices, "free_memory", lambda device: 8 << 30)  # plenty
    first = runner.engine_for(spec)[0]
    monkeypatch.setattr(devices, "free_memory", lambda device: 100 << 20)  # 100 MB left
    runner.engine_for(spec.replace(engine_id="fake-c"))
    assert [k[0] for k in runner.cache] == ["fake-c"] and not first.loaded


def test_stopped_host_is_reported_not_responding_and_replaced():
    """SIGSTOP freezes the host (heartbeat thread included): the job fails as not responding
    once ``hang_timeout`` passes without a message, the host is killed, the next job runs."""
    from engines.base import HostNotResponding

    h = EngineHost(HostConfig(hang_timeout=2.0, heartbeat_interval=0.2), cancel_grace=1.0)
    try:
        h.start()
        pid = h.pid
        stopped = threading.Event()
        heard = []

        def on_event(e):
            heard.append(e["type"])
            if e["type"] == "progress" and e["fraction"] >= 0.05 and not stopped.is_set():
                stopped.set()
                os.kill(pid, signal.SIGSTOP)

        with pytest.raises(HostNotResponding, match="stopped responding") as info:
            h.run("stop1", slow_generate(seconds=60, delay=0.2), on_event)
        assert stopped.is_set() and info.value.hint
        assert not h.is_alive()
        r = h.run("after-stop", slow_generate(seconds=1, delay=0.0))
        assert h.pid != pid and sf.info(r.outputs["take1"]).frames == 8000
    finally:
        h.stop()


def test_heartbeat_keeps_a_quiet_job_alive():
    """A job that reports no progress for longer than hang_timeout (one long chunk) still
    succeeds: the heartbeat thread speaks for it."""
    h = EngineHost(HostConfig(hang_timeout=1.0, heartbeat_interval=0.2), cancel_grace=1.0)
    try:
        r = h.run("quiet", slow_generate(seconds=2, delay=1.5, chunk_seconds=2.0))
        assert sf.info(r.outputs["take1"]).frames == 16000
    finally:
        h.stop()
