"""Time-varying controls in the ACE-Step engine (issue 14), on the tiny random-weight pipeline
(tests/acestep_tiny.py, loaded through ``spec.model_path``).

Random weights make noise-like audio, so these tests check what does not depend on musical
quality: the guided loss is lower than the unguided one at the same seed (5 seeds a
control), the guidance changes the latents only inside the control's range plus the decoder
margin and only where the job generates, inpainting leaves the outside bit-identical,
adherence and losses land in the provenance, and bad controls are refused. Targets are the
real ones of tests/test_controls_guidance.py (a flute phrase, a drum loop's onsets, a drawn
crescendo).
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from engines.base import (AddStemSpec, CancelToken, ControlTarget, ExtendSpec, GenerateSpec, InpaintSpec,  # noqa: E402
                          InvalidJob, ProgressReporter, RestyleSpec)
from engines.generation import guidance as G  # noqa: E402
from tests.acestep_tiny import save_tiny_model  # noqa: E402
from tests.test_controls_guidance import targets  # noqa: E402

SR = 44100
HOP = 512
MARGIN = 12  # latent frames decoded around a control (GuidanceConfig.margin_frames)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(save_tiny_model(tmp_path_factory.mktemp("acestep") / "tiny"))


@pytest.fixture(scope="module")
def engine(model_dir):
    from engines.generation.acestep.engine import AceStepEngine

    e = AceStepEngine()
    e.load("cpu", "float32")
    return e


@pytest.fixture(scope="module")
def values(shared):
    """Real targets over 8 s at 44.1 kHz / 512."""
    return targets(shared, 8.0)


def _run(engine, spec):
    return engine.run(spec, ProgressReporter(), CancelToken())


def _ctl(kind, values, **kw):
    return ControlTarget(kind=kind, values=values, frame_rate=SR / HOP, **kw).to_dict()


def _music(seconds, sr=SR, seed=0):
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 331 * t) + 0.01 * rng.standard_normal(t.size)
    return np.repeat(x[None].astype(np.float32), 2, axis=0)


# --------------------------------------------------------------------------- guided vs unguided


@pytest.mark.parametrize("kind", G.KINDS)
def test_each_control_lowers_its_loss_for_five_seeds(engine, model_dir, values, kind):
    """Generate 2 s, 5 variations (seeds 100..104) with one control over the whole take and
    ``compare_unguided``: every take's loss against the control is lower with guidance than
    without at the same seed (default settings: turbo's 8 steps, step 5 guided with one
    nudge). The unguided numbers are those of a plain job at the same seeds."""
    n = 2 * SR
    vals = values[kind][..., :1 + n // HOP]
    spec = GenerateSpec(engine_id="acestep", model_path=model_dir, frames=n, sample_rate=SR, seed=100, variations=5,
                        controls={kind: _ctl(kind, vals)}, params={"compare_unguided": True})
    res = _run(engine, spec)
    x = res.provenance.extra
    guided, plain = x["control_loss"][kind], x["control_loss_unguided"][kind]
    names = [f"take{v}" for v in range(1, 6)]
    assert list(guided) == names and list(plain) == names
    print(f"\n{kind}: loss guided {[guided[k] for k in names]}\n{' ' * len(kind)}  unguided {[plain[k] for k in names]}"
          f"\n{x['adherence'][kind]['metric']}: guided {x['adherence'][kind]['value']}, "
          f"unguided {x['adherence_unguided'][kind]['value']}")
    for name in names:
        assert guided[name] < plain[name], (name, guided[name], plain[name])
    adh = x["adherence"][kind]
    assert adh["metric"] == {"melody": "melody_accuracy", "dynamics": "dynamics_r", "rhythm": "rhythm_f1"}[kind]
    assert set(adh["takes"]) == set(names) and adh["range"] == [0, int(round((vals.shape[-1]) * HOP))]
    assert adh["strength"] == 1.0 and all(f > 0 for f in adh["frames"].values())
    assert x["controls_applied"] == [kind] and x["controls_ignored"] == []
    g = x["control_guidance"]
    assert g["guided_steps"] == [4] and g["inner_steps"] == 1 and g["controls"] == [kind]
    assert len(g["loss_per_step"]) == 1 and g["decoder_frames"]["frames_grad"] > 0
    # the provenance measured the real takes, and "unguided" is the plain job at the same seeds
    (c,) = G.parse_controls({kind: _ctl(kind, vals)}, SR)
    assert G.control_loss(res.outputs["take3"], SR, c) == pytest.approx(guided["take3"], abs=2e-6)
    bare = _run(engine, spec.replace(controls={}, params={}))
    for name in names:
        assert G.control_loss(bare.outputs[name], SR, c) == pytest.approx(plain[name], rel=1e-3, abs=1e-5)
    assert "adherence" not in bare.provenance.extra and bare.provenance.extra["controls_applied"] == []


# --------------------------------------------------------------------------- inpainting and locality


def test_inpaint_with_controls_bars_3_to_4(engine, model_dir, values, monkeypatch):
    """A 6-bar song (240 BPM in 4/4: a bar is 1 s), bars 2-5 inpainted, all three controls
    limited to bars 3-4 (2 s to 4 s). The outside stays bit-identical; the guidance changes
    the latents only in bars 3-4 plus the decoder margin (12 latent frames); the guided take
    changes nothing that the unguided take did not already change outside that span."""
    song = _music(6.0, seed=3)
    region = (1 * SR, 5 * SR)
    bars34 = (2 * SR, 4 * SR)
    vals = {k: v[..., :1 + song.shape[1] // HOP] for k, v in values.items()}
    controls = {k: _ctl(k, v, start=bars34[0], end=bars34[1]) for k, v in vals.items()}
    base = InpaintSpec(engine_id="acestep", model_path=model_dir, audio=song, sample_rate=SR, regions=[region],
                       seed=7, bpm=240, time_signature="4/4")
    updates = []
    real_step = G.ControlGuide.step

    def recording_step(self, index, count, t, x_t, velocity):
        out = real_step(self, index, count, t, x_t, velocity)
        if out is not None:
            updates.append(((out[0] != x_t) | (out[1] != velocity)).any(dim=2).any(dim=0).numpy())
        return out

    monkeypatch.setattr(G.ControlGuide, "step", recording_step)
    plain = _run(engine, base).outputs["take1"]
    guided_res = _run(engine, base.replace(controls=controls))
    guided = guided_res.outputs["take1"]
    for take in (plain, guided):
        assert take.shape == (2, region[1] - region[0])
        assert np.array_equal(take[:, [0, -1]], song[:, [region[0], region[1] - 1]])
    spliced = {}
    for name, take in (("plain", plain), ("guided", guided)):
        full = song.copy()
        full[:, region[0]:region[1]] = take
        spliced[name] = full
        outside = np.ones(song.shape[1], bool)
        outside[region[0]:region[1]] = False
        assert np.array_equal(full[:, outside], song[:, outside])
    # the guidance's updates: only latent frames 50 - 12 .. 100 + 12 (25 frames a second)
    assert len(updates) == 1
    touched = np.nonzero(np.logical_or.reduce(updates))[0]
    assert touched.size > 30 and touched.min() >= 50 - MARGIN and touched.max() < 100 + MARGIN
    x = guided_res.provenance.extra
    assert x["control_guidance"]["touched_latent_frames"] == [int(touched.min()), int(touched.max()) + 1]
    # nothing changed (vs the source) that the unguided take did not change, outside bars 3-4 + margin
    margin = int(MARGIN * 1920 * SR / 48000)
    span = np.zeros(song.shape[1], bool)
    span[bars34[0] - margin:bars34[1] + margin] = True
    changed = {k: (v != song).any(axis=0) for k, v in spliced.items()}
    assert not np.any(changed["guided"] & ~changed["plain"] & ~span)
    assert changed["guided"][span].any()
    for kind in G.KINDS:  # adherence over bars 3-4 only (rhythm: counted in target onsets)
        adh = x["adherence"][kind]
        assert adh["range"] == list(bars34) and adh["value"] is not None
        assert abs(adh["frames"]["take1"] - 2 * SR / HOP) <= 2 if kind != "rhythm" else adh["frames"]["take1"] > 4
        assert x["control_loss"][kind]["take1"] is not None


def test_controls_outside_the_job_or_at_strength_zero_change_nothing(engine, model_dir, values):
    """A control wholly outside the inpainted region, and one at strength 0: measured (or
    found not to meet the take), never applied; the takes are the plain job's, bit for bit."""
    song = _music(4.0, seed=5)
    vals = {k: v[..., :1 + song.shape[1] // HOP] for k, v in values.items()}
    base = InpaintSpec(engine_id="acestep", model_path=model_dir, audio=song, sample_rate=SR, regions=[(SR, 2 * SR)],
                       seed=3)
    plain = _run(engine, base).outputs["take1"]
    res = _run(engine, base.replace(controls={"melody": _ctl("melody", vals["melody"], start=3 * SR),
                                              "dynamics": _ctl("dynamics", vals["dynamics"], strength=0.0)}))
    assert np.array_equal(res.outputs["take1"], plain)
    x = res.provenance.extra
    assert x["controls_applied"] == [] and x["controls_ignored"] == ["dynamics", "melody"]
    assert x["control_guidance"]["outside_the_generated_span"] == ["melody"]
    assert x["adherence"]["melody"]["value"] is None and x["adherence"]["melody"]["takes"] == {"take1": None}
    assert x["adherence"]["dynamics"]["value"] is not None  # measured over the take (strength 0)


# --------------------------------------------------------------------------- the other tasks


@pytest.mark.parametrize("direction", ["after", "before"])
def test_extend_follows_a_control_on_the_new_span(engine, model_dir, values, direction):
    """Extend a 2 s clip by 1.5 s with the crescendo over the new span (``origin``: the clip's
    end, or 1.5 s before its start): lower loss than unguided for 2 seeds, updates only in
    the new span's latent window."""
    clip = _music(2.0, seed=9)
    n = int(1.5 * SR)
    vals = np.linspace(-40.0, -10.0, 1 + n // HOP).astype(np.float32)
    origin = clip.shape[1] if direction == "after" else -n
    res = _run(engine, ExtendSpec(engine_id="acestep", model_path=model_dir, audio=clip, sample_rate=SR, frames=n,
                                  direction=direction, seed=11, variations=2,
                                  controls={"dynamics": _ctl("dynamics", vals, origin=origin)},
                                  params={"compare_unguided": True}))
    x = res.provenance.extra
    for name in ("take1", "take2"):
        assert x["control_loss"]["dynamics"][name] < x["control_loss_unguided"]["dynamics"][name]
        assert x["adherence"]["dynamics"]["frames"][name] >= n // HOP - 2
    a, b = x["control_guidance"]["touched_latent_frames"]
    (w0, w1), = x["latent_windows"]
    assert w0 <= a < b <= w1


def test_restyle_and_add_stem_follow_a_melody(engine, model_dir, values):
    mix = _music(2.0, seed=13)
    vals = values["melody"][:, :1 + mix.shape[1] // HOP]
    for spec in (RestyleSpec(engine_id="acestep", model_path=model_dir, audio=mix, sample_rate=SR, strength=0.8,
                             seed=2, controls={"melody": _ctl("melody", vals)}, params={"compare_unguided": True}),
                 AddStemSpec(engine_id="acestep", model_path=model_dir, audio=mix, sample_rate=SR, instrument="woodwinds",
                             seed=2, controls={"melody": _ctl("melody", vals)}, params={"compare_unguided": True})):
        x = _run(engine, spec).provenance.extra
        assert x["controls_applied"] == ["melody"], spec.task
        assert x["control_loss"]["melody"]["take1"] < x["control_loss_unguided"]["melody"]["take1"], spec.task


def test_precise_mode_optimises_the_starting_noise(engine, model_dir, values):
    """Precise mode (DITTO): the starting noise is refined first (its one-step loss falls),
    then the usual guided steps run; the take's loss is below the unguided one."""
    n = 2 * SR
    res = _run(engine, GenerateSpec(engine_id="acestep", model_path=model_dir, frames=n, sample_rate=SR, seed=21,
                                    controls={"rhythm": _ctl("rhythm", values["rhythm"][:1 + n // HOP])},
                                    params={"control_precise": True, "control_precise_steps": 3,
                                            "compare_unguided": True}))
    x = res.provenance.extra
    curve = [step["rhythm"][0] for step in x["control_guidance"]["precise_loss"]]
    assert len(curve) == 3 and curve[-1] < curve[0]
    assert x["control_loss"]["rhythm"]["take1"] < x["control_loss_unguided"]["rhythm"]["take1"]
    assert all(p.requires_grad for p in engine.pipeline.transformer.parameters())  # restored after the job


def test_cancel_stops_inside_the_guidance(engine, model_dir, values, monkeypatch):
    """Cancelling while the guidance works (between its decoder passes) stops the job."""
    from engines.base import JobCancelled

    cancel = CancelToken()
    passes = []
    real = G.ControlGuide._tick

    def tick(self):
        passes.append(1)
        cancel.cancel()
        real(self)

    monkeypatch.setattr(G.ControlGuide, "_tick", tick)
    spec = GenerateSpec(engine_id="acestep", model_path=model_dir, frames=SR, sample_rate=SR,
                        controls={"dynamics": _ctl("dynamics", values["dynamics"][:1 + SR // HOP])})
    with pytest.raises(JobCancelled):
        engine.run(spec, ProgressReporter(), cancel)
    assert len(passes) == 1  # stopped before the guidance's first decoder pass


def test_bad_controls_are_refused(engine, model_dir):
    spec = GenerateSpec(engine_id="acestep", model_path=model_dir, frames=SR, sample_rate=SR)
    for controls, words in (({"melody": {"kind": "melody", "values": [[1.0]], "frame_rate": 86.0}}, "shaped"),
                            ({"pitch": {"kind": "pitch", "values": [1.0], "frame_rate": 86.0}}, "unknown control"),
                            ({"rhythm": {"kind": "rhythm", "values": [1.0, 0.0], "frame_rate": -1}}, "frame rate")):
        with pytest.raises(InvalidJob, match=words):
            _run(engine, spec.replace(controls=controls))
    with pytest.raises(InvalidJob, match="the first before the second"):
        _run(engine, spec.replace(controls={"rhythm": _ctl("rhythm", np.ones(10, np.float32))},
                                  params={"control_from": 0.9, "control_until": 0.5}))


@pytest.mark.gpu
def test_guided_generate_on_cuda_bf16(model_dir, values):
    """The CUDA policy (bf16 weights): guidance runs on the device and still lowers the loss."""
    from engines.generation.acestep.engine import AceStepEngine

    e = AceStepEngine()
    e.load("cuda:0", "bfloat16")
    n = 2 * SR
    res = _run(e, GenerateSpec(engine_id="acestep", model_path=model_dir, frames=n, sample_rate=SR, seed=4,
                               variations=2, controls={"rhythm": _ctl("rhythm", values["rhythm"][:1 + n // HOP])},
                               params={"compare_unguided": True, "control_nudges": 2}))
    x = res.provenance.extra
    assert np.isfinite(res.outputs["take1"]).all() and x["control_guidance"]["guided_steps"] == [4]
    for name in ("take1", "take2"):
        assert x["control_loss"]["rhythm"][name] < x["control_loss_unguided"]["rhythm"][name]
    e.unload()
