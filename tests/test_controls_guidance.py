"""Training-free control guidance (engines.generation.guidance): targets, losses, adherence,
the tiled gradient, locality of the updates, and the machinery driving audio to real targets
with an oracle model (issue 14).

Real targets from ../shared:

* melody: the LMMS flute sample (one sustained A) cut into eight 0.5 s notes and
  pitch-shifted (librosa) into the phrase C D E G A G E D, 4 s: the one-hot chroma argmax
  of that real flute audio (``engines.features``, as the studio makes a melody target from
  a track);
* rhythm: the LMMS drum break (1.44 s) looped three times, its onset-strength envelope
  normalised to 0..1 (the studio's rhythm target from a track);
* dynamics: a drawn crescendo, a straight line from -40 dB to -10 dB over 4 s.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engines.base import ControlTarget, InvalidJob  # noqa: E402
from engines.generation import guidance as G  # noqa: E402

SR = 44100
HOP = 512

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- real targets


def _read(path, sr=SR):
    import librosa
    import soundfile as sf

    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    return librosa.resample(x, orig_sr=rate, target_sr=sr) if rate != sr else x


def flute_phrase(shared, seconds: float = 4.0, sr: int = SR) -> np.ndarray:
    """The LMMS flute (a sustained A) as the phrase C D E G A G E D, 0.5 s a note (mono, ``sr``)."""
    import librosa

    x = _read(shared / "audio" / "lmms_flute01.ogg", sr)
    note = x[sr: sr + sr // 2]
    notes = [librosa.effects.pitch_shift(note, sr=sr, n_steps=p - 9) for p in (0, 2, 4, 7, 9, 7, 4, 2)]
    return np.concatenate(notes)[: int(seconds * sr)].astype(np.float32)


def drum_loop(shared, seconds: float = 4.0, sr: int = SR) -> np.ndarray:
    x = _read(shared / "audio" / "lmms_break01.ogg", sr)
    return np.tile(x, int(math.ceil(seconds * sr / x.size)))[: int(seconds * sr)].astype(np.float32)


def targets(shared, seconds: float = 4.0, sr: int = SR) -> dict[str, np.ndarray]:
    """Control values (the studio's format) over ``seconds`` at ``sr / 512`` frames per second."""
    from engines import features as F

    n = 1 + int(seconds * sr) // HOP
    onset = F.onset_strength(drum_loop(shared, seconds, sr), sr)
    return {"melody": F.melody_one_hot(F.chroma(flute_phrase(shared, seconds, sr), sr))[:, :n],
            "dynamics": np.linspace(-40.0, -10.0, n).astype(np.float32),
            "rhythm": (onset / onset.max())[:n].astype(np.float32)}


def control(kind, values, sr=SR, **kw) -> dict:
    return ControlTarget(kind=kind, values=values, frame_rate=sr / HOP, **kw).to_dict()


# --------------------------------------------------------------------------- a small differentiable decoder


class SynthDecoder(torch.nn.Module):
    """A small DDSP-style differentiable decoder (Engel et al., "DDSP", ICLR 2020): latents
    ``(batch, frames, 16)`` at 25 Hz -> stereo audio ``(batch, 2, frames * 1920)`` at 48 kHz.

    A fixed random orthonormal mix of the 16 latent channels gives 13 controls; their
    softplus, linearly interpolated to the audio rate, sets the amplitudes of 12 pitch-class
    tones (octaves 5-7, frequencies on the 25 Hz grid so that the decoder is equivariant to
    whole-frame shifts, like a convolutional VAE decoder) and of a noise source. Random
    Oobleck decoders (``tests/acestep_tiny.py``) are no use here: they emit fixed tones at
    their upsampling strides that no latent removes, so no guidance could make them follow
    a melody; this one can, which is what the oracle test needs.
    """

    def __init__(self, channels: int = 16, seed: int = 0, hop: int = 1920, rate: int = 48000):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=g))
        self.register_buffer("mix", q[:, :13].contiguous())
        n = torch.arange(hop, dtype=torch.float64)
        tones = []
        for p in range(12):
            w = torch.zeros(hop, dtype=torch.float64)
            for octave, gain in ((5, 1.0), (6, 0.7), (7, 0.4)):
                f = round(261.6256 * 2 ** (octave - 4 + p / 12) / 25.0) * 25.0
                w += gain * torch.sin(2 * math.pi * f * n / rate)
            tones.append(w)
        self.register_buffer("tones", torch.stack(tones).float())
        self.register_buffer("noise", torch.randn(hop, generator=g))
        self.hop = hop

    def forward(self, z):
        frames = z.shape[1]
        amp = torch.nn.functional.softplus(2.0 * (z.float() @ self.mix) - 2.0)
        env = torch.nn.functional.interpolate(amp.transpose(1, 2), scale_factor=self.hop, mode="linear",
                                              align_corners=False)
        y = 0.05 * (env[:, :12] * self.tones.repeat(1, frames)).sum(1) + 0.1 * env[:, 12] * self.noise.repeat(frames)
        return torch.stack([y, y], dim=1)


class _ZeroVelocity(torch.nn.Module):
    """The oracle "model": velocity 0, so its clean-latent estimate ``x_t - t v`` is ``x_t``."""

    dtype = torch.float32

    def forward(self, hidden_states, **kwargs):
        return (torch.zeros_like(hidden_states),)


# --------------------------------------------------------------------------- targets and config


def test_parse_controls_maps_the_studio_format_to_job_seconds():
    vals = np.zeros((12, 100), np.float32)
    vals[3] = 1.0
    d = control("melody", vals, start=HOP * 10, end=HOP * 50, strength=2.0, origin=-SR)
    d["values"] = vals.tolist()  # as it crosses the process boundary
    (c,) = G.parse_controls({"melody": d}, SR)
    assert c.kind == "melody" and c.values.shape == (12, 100) and c.strength == 2.0
    assert c.first_s == -1.0 and math.isclose(c.start_s, -1 + 10 * HOP / SR) and math.isclose(c.end_s, -1 + 50 * HOP / SR)
    assert c.range_samples == (-SR + 10 * HOP, -SR + 50 * HOP)
    pc, mask = c.sample(np.array([-1.0 + 20 * HOP / SR, -1.0 + 60 * HOP / SR]))
    assert pc.tolist() == [3, 3] and mask.tolist() == [True, False]
    (d2,) = G.parse_controls({"dynamics": control("dynamics", np.full(10, -80.0, np.float32))}, SR)
    assert d2.end_s == pytest.approx(10 * HOP / SR) and d2.sample(np.array([0.0]))[0][0] == G.FLOOR_DB
    bad = [({"tempo": {**control("melody", vals), "kind": "tempo"}}, "unknown control"),
           ({"melody": control("melody", np.zeros(10, np.float32))}, "shaped"),
           ({"rhythm": control("rhythm", np.array([0.0, np.nan], np.float32))}, "NaN"),
           ({"rhythm": {"kind": "rhythm", "values": [0.0, 1.0], "frame_rate": 0}}, "frame rate"),
           ({"rhythm": control("rhythm", np.ones(5, np.float32), strength=-1)}, "strength"),
           ({"rhythm": control("rhythm", np.ones(5, np.float32), start=HOP * 9)}, "empty"),
           ({"rhythm": {"kind": "rhythm"}}, "no values")]
    for controls, words in bad:
        with pytest.raises(InvalidJob, match=words):
            G.parse_controls(controls, SR)


def test_default_schedule_and_bad_configs():
    cfg = G.GuidanceConfig()
    assert cfg.active_steps(8) == [4]  # turbo's 8 steps: step 5 (1-based), t = 0.75
    assert cfg.active_steps(32) == [16, 18, 20, 22]
    assert G.GuidanceConfig(start=0.25).active_steps(8) == [2, 4]
    assert G.GuidanceConfig(start=0, end=1, every=1).active_steps(4) == [0, 1, 2, 3]
    assert G.GuidanceConfig(inner_steps=0).active_steps(8) == []
    for kw in ({"start": 1.5}, {"start": 0.8, "end": 0.5}, {"every": 0}, {"step_size": -1.0}, {"rhythm_loss": "l1"}):
        with pytest.raises(InvalidJob):
            G.GuidanceConfig(**kw)


def test_adherence_and_loss_of_the_source_itself(shared):
    """The audio a target was made from follows it perfectly (melody accuracy, r and F1 are
    1), wherever the take lies, and its loss is far below that of noise."""
    from engines import features as F

    sr, seconds = SR, 4.0
    flute, drums = flute_phrase(shared, seconds), drum_loop(shared, seconds)
    vals = targets(shared, seconds)
    n = vals["dynamics"].size
    crescendo_audio = (np.random.default_rng(0).standard_normal(int(seconds * sr)) * 0.01
                       * 10 ** (np.interp(np.arange(int(seconds * sr)), np.arange(n) * HOP,
                                          np.linspace(0, 30, n)) / 20)).astype(np.float32)
    vals["dynamics"] = np.maximum(F.loudness_db(crescendo_audio, sr), G.FLOOR_DB)
    audio = {"melody": flute, "dynamics": crescendo_audio, "rhythm": drums}
    noise = np.random.default_rng(1).standard_normal(int(seconds * sr)).astype(np.float32) * 0.1
    for kind, a in audio.items():
        (c,) = G.parse_controls({kind: control(kind, vals[kind], origin=3 * HOP * 100)}, sr)
        res = G.adherence(a, sr, c, offset_s=3 * HOP * 100 / sr)
        assert res["value"] == pytest.approx(1.0) and res["frames"] > 10, (kind, res)
        # a take starting 1 s into the control's range: the same numbers on what it covers
        later = G.adherence(a[sr:], sr, c, offset_s=(3 * HOP * 100 + sr) / sr)
        assert later["value"] > 0.97 and later["frames"] < res["frames"], (kind, later)
        own = G.control_loss(a, sr, c, 3 * HOP * 100 / sr)
        other = G.control_loss(noise, sr, c, 3 * HOP * 100 / sr)
        assert own < 0.5 * other, (kind, own, other)
        assert G.adherence(a, sr, c, offset_s=100.0)["value"] is None  # the take misses the range


# --------------------------------------------------------------------------- the gradient machinery


def _tiny_vae():
    from tests.acestep_tiny import build_tiny_vae

    return build_tiny_vae(seed=3)


def test_checkpointed_decoder_and_tiled_gradient_are_exact(shared):
    """The checkpointed VAE decoder gives the plain decoder's audio and gradient; the guide's
    tiled two-pass gradient (tiles of 20 latent frames, 12 of overlap) is the untiled one."""
    from engines.generation.acestep.guide import checkpointed_decoder, frozen

    vae = _tiny_vae()
    decode = checkpointed_decoder(vae)
    z = torch.randn(2, 60, 8, generator=torch.Generator().manual_seed(0))
    with frozen(vae):
        with torch.no_grad():
            plain = vae.decoder(z.transpose(1, 2))
        zz = z.clone().requires_grad_(True)
        out = decode(zz)
        assert torch.equal(out, plain)
        w = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        (out * w).sum().backward()
        zp = z.clone().requires_grad_(True)
        (vae.decoder(zp.transpose(1, 2)) * w).sum().backward()
        assert float((zz.grad - zp.grad).abs().max()) < 1e-5 * float(zp.grad.abs().max())
        assert all(p.requires_grad is False for p in vae.parameters())
    assert all(p.requires_grad for p in vae.parameters())  # restored

    vals = targets(shared, 2.4, 48000)
    # rhythm's gradient moves by 1e-3 of itself when the latents move by 1e-7 (the onset
    # envelope's log and top-dB clamp), so tiles, which change the audio by rounding, get that
    for kinds, tolerance in ((("melody", "dynamics"), 1e-4), (("rhythm",), 1e-2)):
        controls = G.parse_controls({k: control(k, vals[k], sr=48000, start=int(0.3 * 48000)) for k in kinds}, 48000)
        grads = {}
        for tile in (0, 20):
            guide = G.ControlGuide(controls, G.GuidanceConfig(), decode=decode, frames=60, hop=1920, rate=48000,
                                   timeline_start_s=0.0, tile=tile, overlap=12)
            with frozen(vae):
                losses, grads[tile] = guide.loss_and_grad(z)
            assert set(losses) == set(kinds) and all(v.shape == (2,) for v in losses.values())
        scale = float(grads[0].abs().max())
        assert scale > 0 and float((grads[0] - grads[20]).abs().max()) < tolerance * scale, kinds
        # the margin before the control (0.3 s = frame 7.5) gets a gradient too: the decoder reaches across it
        assert grads[0][:, :7].abs().sum() > 0


def test_updates_stay_in_the_range_plus_margin_and_in_the_windows(shared):
    """A control on 1.0-1.6 s of a 4 s timeline (latent frames 25..40) with a 12-frame margin:
    the guided step changes the latents in frames 13..52 only, bit for bit elsewhere; with
    repaint windows only inside them; strength 0 changes nothing."""
    vals = targets(shared, 4.0, 48000)
    decode = SynthDecoder()
    x = torch.randn(1, 100, 16, generator=torch.Generator().manual_seed(2))
    v = torch.randn(1, 100, 16, generator=torch.Generator().manual_seed(3))

    def run(strength=1.0, allowed=None):
        c = G.parse_controls({"melody": control("melody", vals["melody"], sr=48000, start=48000,
                                                end=int(1.6 * 48000), strength=strength)}, 48000)
        guide = G.ControlGuide(c, G.GuidanceConfig(start=0, end=1, every=1), decode=decode, frames=100, hop=1920,
                               rate=48000, timeline_start_s=0.0, tile=30, overlap=12, allowed=allowed)
        return guide, guide.step(0, 4, 0.7, x, v)

    guide, (x2, v2) = run()
    changed = np.nonzero((x2 != x).any(dim=2)[0].numpy())[0]
    assert changed.min() >= 25 - 12 and changed.max() < 40 + 12 and changed.size >= 15
    assert torch.equal(x2[:, :13], x[:, :13]) and torch.equal(v2[:, 52:], v[:, 52:])
    # the clean estimate moved, the noise estimate did not
    assert torch.allclose(x2 + 0.3 * v2, x + 0.3 * v, atol=1e-5)
    assert not torch.allclose(x2 - 0.7 * v2, x - 0.7 * v)
    assert guide.summary()["touched_latent_frames"] == [int(changed.min()), int(changed.max()) + 1]
    allowed = np.zeros(100, bool)
    allowed[30:36] = True
    _, (x3, _) = run(allowed=allowed)
    changed = np.nonzero((x3 != x).any(dim=2)[0].numpy())[0]
    assert changed.min() >= 30 and changed.max() < 36
    guide0, out0 = run(strength=0.0)
    assert out0 is None and not guide0.active


@pytest.mark.parametrize("kind, metric, threshold", [("melody", "melody_accuracy", 0.9), ("dynamics", "dynamics_r", 0.95),
                                                     ("rhythm", "rhythm_f1", 0.9)])
def test_oracle_guidance_alone_drives_audio_to_real_targets(shared, kind, metric, threshold):
    """Setup: an oracle "model" whose clean-latent estimate is the latent itself (velocity 0:
    left alone, the sampler returns its starting noise), the ACE-Step sampler's own loop
    (``sampler.sample``: 16 Euler steps from t = 1 to 0) with the control guide as its step
    hook (the engine's binding), and the small differentiable :class:`SynthDecoder`
    (latents -> 48 kHz audio). Guidance acts on all 16 steps (the model gives it no help),
    2 nudges each, the default nudge size. The target is a real one from ../shared (module
    docstring), 4 s, strength 1. The take is the decoded final latents, measured at 44.1 kHz
    over the control's range: melody accuracy >= 0.9, dynamics r >= 0.95, beat F1 >= 0.9,
    from a start that does not follow the target."""
    import librosa
    from diffusers import FlowMatchEulerDiscreteScheduler

    from engines.generation.acestep import guide as binding
    from engines.generation.acestep import sampler

    vals = targets(shared, 4.0)
    controls = G.parse_controls({kind: control(kind, vals[kind])}, SR)
    frames = 100
    decode = SynthDecoder()
    guide = G.ControlGuide(controls, G.GuidanceConfig(start=0.0, end=1.0, every=1, inner_steps=2), decode=decode,
                           frames=frames,
                           hop=1920, rate=48000, timeline_start_s=0.0, tile=50, overlap=12)
    pipe = type("Oracle", (), {"transformer": _ZeroVelocity(),
                               "scheduler": FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0)})()
    noise = torch.randn(1, frames, 16, generator=torch.Generator().manual_seed(0))
    cond = sampler.Conditioning(hidden=torch.zeros(1, 1, 4), context=torch.zeros(1, frames, 32))
    times = np.linspace(1.0, 0.0, 17)[:-1].tolist()

    def take(latents):
        with torch.no_grad():
            return librosa.resample(decode(latents)[0].numpy(), orig_sr=48000, target_sr=SR)

    assert torch.equal(sampler.sample(pipe, noise, cond, times), noise)  # the oracle alone does nothing
    before = G.adherence(take(noise), SR, controls[0])
    out = sampler.sample(pipe, noise, cond, times, hook=binding.step_hook(guide))
    after = G.adherence(take(out), SR, controls[0])
    losses = [s["loss"][kind][0][0] for s in guide.trace.steps]
    print(f"\noracle {kind}: {metric} {before['value']:.3f} -> {after['value']:.3f} "
          f"(loss {losses[0]:.4f} -> {losses[-1]:.4f}, {after['frames']} frames)")
    assert after["metric"] == metric and after["value"] >= threshold
    assert before["value"] < threshold - 0.1
    assert len(guide.trace.steps) == 16 and losses[-1] < 0.5 * losses[0]
