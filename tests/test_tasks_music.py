"""The generative tasks on the project: lengths in bars exact at the tempo map (97 BPM, a
tempo and meter change), placement sample-exact at 44.1 and 48 kHz, inpaint and extend
leaving everything outside the new material bit-identical, request checks. The fake
engine runs through the host's own job loop in this process (LocalHost)."""
from __future__ import annotations

import numpy as np
import pytest

from engines.host.local import LocalHost
from studio.audio.render import render_track_raw
from studio.io.session import Session
from studio.jobs.manager import JobManager
from studio.jobs.tasks import run_task
from studio.media.importing import import_audio
from studio.model import edits
from studio.model.timebase import TempoChange, TempoMap, TimeSignature
from studio.tasks import Target, TaskError, get_task
from studio.tasks.music import frames_before_bars, frames_for_bars

FAKE = {"model": "fake-builtin", "prompt": "test tone"}


@pytest.fixture(scope="module")
def manager():
    m = JobManager(host_factory=lambda: LocalHost())
    yield m
    m.shutdown()


def _session(tmp_path, sr, shared=None, bpm=97.0):
    s = Session.create(tmp_path / f"S{sr}.seedproj", sample_rate=sr, bpm=bpm)
    if shared is not None:
        import_audio(s, [shared / "audio" / "lmms_house_loop01.ogg"], start=sr // 3)
    return s


def test_bars_are_exact_at_97_bpm_and_across_tempo_and_meter_changes(tmp_path):
    s = _session(tmp_path, 44100)
    tm, sr = s.project.tempo_map, 44100
    assert frames_for_bars(s.project, 0, 8) == tm.tick_to_sample(8 * 4 * 960, sr) == round(8 * 4 * 60 / 97 * sr)
    # 120 BPM 4/4, then 90 BPM 3/4 from bar 3 (0-based bar 2)
    changed = TempoMap([TempoChange(0, 120.0), TempoChange(2 * 3840, 90.0)],
                       [TimeSignature(0, 4, 4), TimeSignature(2 * 3840, 3, 4)])
    s.undo_stack.push(edits.SetTempoMap(changed))
    tm = s.project.tempo_map
    bar = lambda b: tm.tick_to_sample(tm.bar_to_tick(b), sr)  # noqa: E731
    start = bar(1)
    assert frames_for_bars(s.project, start, 4) == bar(5) - bar(1)
    assert bar(5) - bar(1) == round(4 * 60 / 120 * sr) + round(3 * 3 * 60 / 90 * sr)  # 1 bar of 4/4 + 3 of 3/4
    assert frames_for_bars(s.project, bar(3), 1.5) == bar(4) - bar(3) + (bar(5) - bar(4)) // 2
    assert frames_before_bars(s.project, bar(4), 2) == bar(4) - bar(2)
    with pytest.raises(TaskError, match="before the project start"):
        frames_before_bars(s.project, bar(1), 2)
    s.close()


@pytest.mark.parametrize("sr", [44100, 48000])
def test_generate_lands_sample_exactly_with_the_exact_length(tmp_path, manager, sr):
    s = _session(tmp_path, sr)
    at = 12_345
    out = run_task(s, "generate", Target(start=at), {**FAKE, "bars": 2, "variations": 2, "params": {"noise": 0.1}},
                   manager=manager)
    track = s.project.tracks[-1]
    (g,) = track.take_groups
    expect = s.project.tempo_map.tick_to_sample(s.project.tempo_map.sample_to_tick(at, sr) + 2 * 3840, sr) - at
    assert (g.start, g.end) == (at, at + expect)
    for take in g.takes:
        (clip,) = take.clips
        item = s.project.media[clip.media_id]
        assert (clip.start, clip.length, item.frames, item.sample_rate) == (at, expect, expect, sr)
    a, b = (s.pool.read(s.project.media[tk.clips[0].media_id]) for tk in g.takes)
    assert not np.array_equal(a, b)  # variations differ
    assert out.job.spec.bpm == 97.0 and out.job.spec.time_signature == "4/4"
    s.close()


def test_inpaint_two_regions_leaves_everything_else_bit_identical(tmp_path, manager, shared):
    s = _session(tmp_path, 44100, shared)
    tid = s.project.tracks[0].id
    span = s.project.audio_track_span(tid)
    before = render_track_raw(s.project, s.pool, tid, *span)
    r1, r2 = (span[0] + 5000, span[0] + 15000), (span[0] + 30000, span[0] + 41000)
    run_task(s, "inpaint", Target(tid, regions=(r1, r2)), {**FAKE, "variations": 2}, manager=manager)
    groups = sorted(s.project.track(tid).take_groups, key=lambda g: g.start)
    assert [(g.start, g.end, len(g.takes)) for g in groups] == [(*r1, 2), (*r2, 2)]
    after = render_track_raw(s.project, s.pool, tid, *span)
    keep = np.ones(after.shape[1], bool)
    for a, b in (r1, r2):
        keep[a - span[0]: b - span[0]] = False
    assert np.array_equal(after[:, keep], before[:, keep])
    assert not np.array_equal(after[:, ~keep], before[:, ~keep])
    s.undo_stack.undo()
    assert np.array_equal(render_track_raw(s.project, s.pool, tid, *span), before)
    s.close()


def test_extend_after_and_before_keeps_the_clip_and_lands_at_its_edges(tmp_path, manager, shared):
    s = _session(tmp_path, 44100, shared)
    tid = s.project.tracks[0].id
    clip = s.project.tracks[0].clips[0]
    a, b = s.project.clip_span(clip)
    before = render_track_raw(s.project, s.pool, tid, a, b)
    out = run_task(s, "extend", Target(clip_id=clip.id), {**FAKE, "bars": 1, "variations": 1}, manager=manager)
    (g,) = s.project.track(tid).take_groups
    assert g.start == b and g.end == b + frames_for_bars(s.project, b, 1)
    assert out.job.spec.region == (max(a, b - 30 * 44100), b)
    assert np.array_equal(render_track_raw(s.project, s.pool, tid, a, b), before)
    run_task(s, "extend", Target(clip_id=clip.id), {**FAKE, "seconds": 0.1, "direction": "before"}, manager=manager)
    g2 = min(s.project.track(tid).take_groups, key=lambda g: g.start)
    assert (g2.start, g2.end) == (a - 4410, a)
    assert np.array_equal(render_track_raw(s.project, s.pool, tid, a, b), before)
    with pytest.raises(TaskError, match="before the project start"):
        run_task(s, "extend", Target(clip_id=clip.id), {**FAKE, "seconds": 10, "direction": "before"},
                 manager=manager)
    s.close()


def test_requests_and_targets_are_checked_before_work(tmp_path, manager, shared):
    s = _session(tmp_path, 44100, shared)
    tid = s.project.tracks[0].id
    with pytest.raises(TaskError, match="bars or in seconds"):
        run_task(s, "generate", Target(start=0), {**FAKE, "bars": 1, "seconds": 1}, manager=manager)
    with pytest.raises(TaskError, match="needs a prompt"):
        run_task(s, "generate", Target(start=0), {"model": "fake-builtin"}, manager=manager)
    with pytest.raises(TaskError, match="variations: 0 is less than the minimum"):
        run_task(s, "generate", Target(start=0), {**FAKE, "variations": 0}, manager=manager)
    with pytest.raises(TaskError, match="overlap"):
        run_task(s, "inpaint", Target(tid, regions=((1000, 5000), (4000, 8000))), FAKE, manager=manager)
    with pytest.raises(TaskError, match="select the region"):
        run_task(s, "inpaint", Target(tid), FAKE, manager=manager)
    with pytest.raises(TaskError, match="has no setting 'nonsense'"):
        get_task("generate").resolve({**FAKE, "params": {"nonsense": 1}})
    assert len(s.project.tracks) == 1 and not s.project.tracks[0].take_groups
    t = Target(tid, 10, 20, track_ids=("x",), regions=((1, 2),))
    assert Target.from_dict(t.to_dict()) == t
    s.close()
