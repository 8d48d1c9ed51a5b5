"""engines/base.py: job specs and results cross the process boundary as JSON; errors, progress, cancel."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engines import base
from engines.base import (
    AnalyzeSpec, CancelToken, ChecksumMismatch, ConvertVoiceSpec, EngineError, ExtendSpec, GenerateSpec,
    InpaintSpec, InvalidJob, JobCancelled, JobResult, JobSpec, OutOfMemory, ProgressReporter, Provenance,
    SeparateSpec, TranscribeSpec, error_from_dict, is_out_of_memory, resolve_params,
)

ALL_SPECS = [
    SeparateSpec(engine_id="fake", audio="in.wav", sample_rate=48000, region=(10, 20), context=(1, 2),
                 stems=["vocals"], params={"shifts": 2}, seed=7, device="cpu", chunk_scale=0.5),
    GenerateSpec(engine_id="fake", prompt="calm piano", frames=48000, sample_rate=48000),
    ExtendSpec(engine_id="fake", audio="in.wav", frames=100, direction="before"),
    InpaintSpec(engine_id="fake", audio="in.wav", regions=[(5, 50), (60, 70)], variations=2),
    ConvertVoiceSpec(engine_id="fake", audio="in.wav", target_voice="alto", transpose=-2.0),
    TranscribeSpec(engine_id="fake", audio="in.wav"),
    AnalyzeSpec(engine_id="fake", audio="in.wav", features=["tempo", "key"]),
]


def test_every_task_has_a_spec_class():
    assert {base.spec_class(t).task for t in base.TASKS} == set(base.TASKS)
    with pytest.raises(InvalidJob, match="unknown task"):
        base.spec_class("dance")


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.task)
def test_spec_json_round_trip(spec):
    d = json.loads(json.dumps(spec.to_dict()))
    assert d["task"] == spec.task
    back = JobSpec.from_dict(d)
    assert type(back) is type(spec)
    assert back == spec


def test_array_input_round_trips_and_loads():
    a = np.random.default_rng(1).standard_normal((2, 64)).astype(np.float32)
    spec = SeparateSpec(engine_id="fake", audio=a, sample_rate=44100)
    back = JobSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    audio, sr = back.load_audio()
    assert sr == 44100 and audio.dtype == np.float32 and np.array_equal(audio, a)


def test_missing_or_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidJob, match="needs input audio"):
        SeparateSpec(engine_id="fake").load_audio()
    with pytest.raises(InvalidJob, match="no sample rate"):
        SeparateSpec(engine_id="fake", audio=np.zeros((1, 4), np.float32)).load_audio()
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(InvalidJob, match="bad.wav"):
        SeparateSpec(engine_id="fake", audio=str(bad)).load_audio()


def test_write_output_is_bit_exact_float_wav(tmp_path):
    a = np.random.default_rng(2).standard_normal((2, 1000)).astype(np.float32)
    path = base.write_output(a, 48000, tmp_path, "vocals")
    audio, sr = base.load_audio(path)
    assert path.endswith("vocals.wav") and sr == 48000 and np.array_equal(audio, a)
    assert not list(tmp_path.glob(".*tmp"))


def test_result_and_provenance_round_trip():
    prov = Provenance(engine_id="fake", model_id="m", revision="abc", licence="MIT", task="separate", seed=3,
                      params={"x": 1}, input_sha256={"audio": "00"}, device="cuda:0", dtype="bfloat16",
                      timings={"run": 1.5}, chunk_scale=0.25)
    r = JobResult(outputs={"vocals": "/tmp/v.wav"}, sample_rate=44100, provenance=prov,
                  files={"midi": "/tmp/x.mid"}, data={"tempo": 80.0})
    back = JobResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    assert Provenance.from_dict({"engine_id": "e", "future_field": 1}).extra == {"future_field": 1}


def test_errors_cross_the_boundary_with_type_and_hint():
    for err in (OutOfMemory("gpu full"), ChecksumMismatch("bad file"), JobCancelled("stop"),
                EngineError("x", "do y")):
        back = error_from_dict(json.loads(json.dumps(err.to_dict())))
        assert type(back) is type(err) and back.message == err.message and back.hint == err.hint
    assert "do y" in str(EngineError("x", "do y"))
    assert OutOfMemory("a").hint  # every OOM tells the user what to do
    assert type(error_from_dict({"type": "Unknown", "message": "m"})) is EngineError


def test_out_of_memory_detection():
    class OutOfMemoryError(RuntimeError):  # same name as torch.cuda.OutOfMemoryError
        pass

    assert is_out_of_memory(OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert is_out_of_memory(OutOfMemory("x"))
    assert not is_out_of_memory(ValueError("out of range"))


def test_progress_reporter_is_monotonic_with_sub_ranges_and_eta():
    seen = []
    p = ProgressReporter(lambda f, s, eta: seen.append((f, s, eta)))
    p(0.0, "load")
    p(0.5, "run")
    p(0.3)  # going backwards is clamped
    child = p.sub(0.5, 1.0)
    child(0.5, "mix")
    child(1.0)
    fractions = [f for f, _, _ in seen]
    assert fractions == [0.0, 0.5, 0.5, 0.75, 1.0]
    assert seen[-2][1] == "mix" and seen[-1][2] == 0.0
    assert seen[1][2] is not None and seen[1][2] >= 0
    logs = []
    ProgressReporter(None, logs.append).sub(0, 1).log("hello")
    assert logs == ["hello"]


def test_cancel_token():
    c = CancelToken()
    c.raise_if_cancelled()
    c.cancel()
    assert c.cancelled
    with pytest.raises(JobCancelled):
        c.raise_if_cancelled()


def test_resolve_params_fills_defaults_and_names_bad_field():
    schema = {"type": "object", "additionalProperties": False,
              "properties": {"shifts": {"type": "integer", "default": 1, "minimum": 0},
                             "mode": {"enum": ["a", "b"], "default": "a"}}}
    assert resolve_params(schema, {"mode": "b"}) == {"shifts": 1, "mode": "b"}
    with pytest.raises(InvalidJob, match="shifts"):
        resolve_params(schema, {"shifts": -1})
    with pytest.raises(InvalidJob):
        resolve_params(schema, {"nope": 1})
