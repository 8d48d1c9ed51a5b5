"""The RVC conversion pipeline and engine with full-size random-weight voices (real schema, fp16),
a tiny random ContentVec (768-d, loaded through model_path) and torchfcpe's shipped weights.

What a random-weight voice can show: the decoder is an NSF-HiFiGAN whose harmonic source is
a sine at the F0 the pipeline feeds it (the tracked source F0 times 2 ** (transpose / 12)).
A time-invariant network driven by a periodic excitation gives a periodic output, so the
output's F0 (measured with the shipped FCPE tracker) must follow the transposed F0 even
though the weights are random; the content path only adds a non-periodic part.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("torchfcpe") is None:  # imported without torchaudio by engines.analysis._compat
    pytest.skip("torchfcpe is not installed", allow_module_level=True)
pytest.importorskip("transformers")

from engines.base import CancelToken, ConvertVoiceSpec, InvalidJob, ModelNotInstalled, ProgressReporter  # noqa: E402
from engines.voice.checkpoint import load_voice  # noqa: E402
from engines.voice.embedder import ContentVec  # noqa: E402
from engines.voice.pipeline import (ConversionOptions, chunk_cuts, convert, mix_rms,  # noqa: E402
                                    rms_envelope)
from engines.voice.pitch import coarse_pitch, fcpe_f0, median_filter_f0, transpose_f0  # noqa: E402
from tests.voice_tiny import write_checkpoint, write_embedder  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def embedder_dir(tmp_path_factory):
    return write_embedder(tmp_path_factory.mktemp("contentvec") / "tiny-contentvec")


@pytest.fixture(scope="module")
def embedder(embedder_dir):
    return ContentVec(embedder_dir)


@pytest.fixture(scope="module")
def fcpe():
    from engines.analysis.melody import load_fcpe

    return load_fcpe("cpu")


@pytest.fixture(scope="module")
def voice_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("voices")
    made: dict[tuple[str, str], object] = {}

    def get(version: str, sr: str):
        if (version, sr) not in made:
            made[(version, sr)] = write_checkpoint(folder / f"{version}_{sr}.pth", version, sr, seed=11)
        return made[(version, sr)]

    return get


def _run(voice_path, audio, sr, embedder, fcpe, **opts):
    net, ckpt = load_voice(voice_path)
    return convert(audio, sr, synthesizer=net, version=ckpt.version, embedder=embedder,
                   f0_fn=lambda a, n: fcpe_f0(a, n, fcpe), options=ConversionOptions(**opts))


def _sweep(sr, seconds, f_start, f_end, channels=1, amp=0.5):
    t = np.arange(int(sr * seconds)) / sr
    f = f_start * (f_end / f_start) ** (t / seconds)
    x = amp * np.sin(2 * np.pi * np.cumsum(f) / sr)
    return np.repeat(x[None].astype(np.float32), channels, axis=0)


def test_engine_exact_length_with_context_index_and_output_file(tmp_path, voice_file, embedder_dir):
    from engines.voice.engine import RvcEngine

    sr, before, after = 44100, 2205, 1103
    n = 19845 + before + after  # 0.45 s region plus context, odd total
    audio = _sweep(sr, n / sr, 180, 260, channels=2)
    index_path = None
    try:
        import faiss

        feats = np.random.default_rng(0).standard_normal((400, 768)).astype(np.float32)
        index = faiss.index_factory(768, "IVF8,Flat")
        index.train(feats)
        index.add(feats)
        index_path = str(tmp_path / "added_IVF8_Flat_nprobe_1_v2.index")
        faiss.write_index(index, index_path)
    except ImportError:  # faiss is only a test dependency; the engine never needs it
        pass
    engine = RvcEngine()
    engine.load("cpu")
    spec = ConvertVoiceSpec(engine_id="rvc", audio=audio, sample_rate=sr, context=(before, after),
                            target_voice=str(voice_file("v2", "40k")), index_path=index_path, transpose=-3.0,
                            model_path=str(embedder_dir), output_dir=str(tmp_path / "out"), seed=5)
    stages = []
    result = engine.run(spec, ProgressReporter(lambda f, s, eta: stages.append(s)), CancelToken())
    out, out_sr = result.load_output("audio")
    assert out_sr == sr and out.dtype == np.float32
    assert out.shape == (2, n - before - after)
    assert np.isfinite(out).all() and 0 < np.abs(out).max() <= 0.99 + 1e-6
    assert np.array_equal(out[0], out[1])
    prov = result.provenance
    assert prov.engine_id == "rvc" and prov.seed == 5 and prov.model_id == str(embedder_dir)
    assert prov.params == {"pitch_method": "fcpe", "index_rate": 0.75, "protect": 0.33, "filter_radius": 3,
                           "rms_mix_rate": 0.25, "speaker_id": 0, "transpose": -3.0}
    assert set(prov.input_sha256) >= {"audio", "voice"} | ({"index"} if index_path else set())
    assert prov.extra["voice_version"] == "v2" and prov.extra["voice_sample_rate"] == 40000
    assert prov.extra["index_used"] == (index_path is not None)
    assert prov.extra["voiced_fraction"] > 0.5
    assert {"pitch", "embedder", "synthesizer"} <= set(prov.timings)
    assert "converting" in stages and stages[-1] == "done"


def test_exact_length_at_32k_and_48k_models_with_odd_chunks(voice_file, embedder, fcpe):
    # 32 kHz model, 44.1 kHz project, odd length
    x = _sweep(44100, 16001 / 44100, 150, 220)
    r = _run(voice_file("v2", "32k"), x, 44100, embedder, fcpe, pad_seconds=0.3)
    assert r.audio.shape == (1, 16001) and r.info["model_rate"] == 32000
    for n in (1, 7, 161):  # a few samples: still exactly that many out
        r = _run(voice_file("v2", "32k"), x[:, :n], 44100, embedder, fcpe, pad_seconds=0.05)
        assert r.audio.shape == (1, n) and np.isfinite(r.audio).all()
    # 48 kHz model, 48 kHz project, cut into several chunks (odd frame counts among them)
    n = 38477
    x = _sweep(48000, n / 48000, 140, 300, channels=2)
    x[:, 12000:12500] = 0  # a quiet spot for a cut
    r = _run(voice_file("v2", "48k"), x, 48000, embedder, fcpe, pad_seconds=0.2, chunk_seconds=0.25,
             query_seconds=0.05, max_seconds=0.3)
    chunks = r.info["chunks"]
    assert len(chunks) >= 3 and chunks[0][0] == 0 and chunks[-1][1] == r.info["frames_10ms"]
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    assert any((b - a) % 2 for a, b in chunks)
    assert r.audio.shape == (2, n) and np.isfinite(r.audio).all()


def test_transpose_octave_doubles_the_f0(voice_file, embedder, fcpe):
    """A 150 -> 300 Hz sine sweep (48 kHz project, 40 kHz v2 voice) converted with transpose +12:
    the output's F0, tracked by the shipped FCPE, is the input's x2 within 20 cents (median)."""
    from engines.analysis.melody import track_f0

    sr = 48000
    x = _sweep(sr, 1.5, 150, 300)
    r = _run(voice_file("v2", "40k"), x, sr, embedder, fcpe, transpose=12, pad_seconds=0.5)
    assert r.audio.shape == x.shape
    f_in = track_f0(x, sr, model=fcpe)
    f_out = track_f0(r.audio, sr, model=fcpe)
    both = f_in.voiced & f_out.voiced
    assert both.mean() > 0.8
    cents = 1200 * np.log2(f_out.f0_hz[both] / f_in.f0_hz[both])
    assert abs(np.median(cents) - 1200) < 20, np.median(cents)


def test_seed_makes_renders_reproducible_v1_voice(voice_file, embedder, fcpe):
    x = _sweep(44100, 0.3, 200, 250)
    kw = dict(pad_seconds=0.2)
    a = _run(voice_file("v1", "40k"), x, 44100, embedder, fcpe, seed=1, **kw).audio
    b = _run(voice_file("v1", "40k"), x, 44100, embedder, fcpe, seed=1, **kw).audio
    c = _run(voice_file("v1", "40k"), x, 44100, embedder, fcpe, seed=2, **kw).audio
    assert a.shape == x.shape and np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_bad_requests_are_clear(tmp_path, monkeypatch, voice_file, embedder_dir, embedder, fcpe):
    from engines.voice.engine import RvcEngine

    x = _sweep(44100, 0.2, 200, 250)
    with pytest.raises(InvalidJob, match="speaker id 7 is outside this voice's 4 speakers"):
        _run(voice_file("v2", "40k"), x, 44100, embedder, fcpe, speaker_id=7)
    monkeypatch.setenv("SEED_STUDIO_MODELS_DIR", str(tmp_path / "no-models"))
    engine = RvcEngine()
    engine.load("cpu")
    spec = ConvertVoiceSpec(engine_id="rvc", audio=x, sample_rate=44100, target_voice=str(voice_file("v2", "40k")))
    with pytest.raises(ModelNotInstalled, match="contentvec-rvc"):
        engine.run(spec, ProgressReporter(), CancelToken())
    spec = spec.replace(model_path=str(embedder_dir), params={"pitch_method": "rmvpe"})
    with pytest.raises(ModelNotInstalled, match="'rmvpe' is not installed") as err:
        engine.run(spec, ProgressReporter(), CancelToken())
    assert "seed-studio models download rmvpe" in err.value.hint
    with pytest.raises(InvalidJob, match="index_rate"):
        engine.run(spec.replace(params={"index_rate": 2}), ProgressReporter(), CancelToken())
    with pytest.raises(InvalidJob, match="no voice model given"):
        engine.run(spec.replace(target_voice="", params={}), ProgressReporter(), CancelToken())
    empty = engine.run(spec.replace(audio=np.zeros((2, 0), np.float32), params={}), ProgressReporter(), CancelToken())
    assert empty.outputs["audio"].shape == (2, 0)


def test_rmvpe_model_loads_strictly_and_decodes_like_rvc(tmp_path):
    from engines.voice.rmvpe import E2E, RMVPE, mel_filterbank

    torch.manual_seed(0)
    state = E2E(4, 1, (2, 2)).state_dict()
    assert len(state) == 741  # RVC's rmvpe.pt schema
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, str(tmp_path / "rmvpe.pt"))
    tracker = RMVPE(checkpoint=tmp_path / "rmvpe.pt")  # fp16 on disk like RVC's file, strict load
    x = _sweep(16000, 0.2, 200, 200)[0]
    assert tracker.f0(x, 21).shape == (21,)
    # decoding: a salience peaked at the bin of 220 Hz gives 220 Hz; below 0.03 gives 0
    cents = 1200 * np.log2(220 / 10)
    b = int(round((cents - 1997.3794084376191) / 20))
    sal = np.zeros((3, 360), np.float32)
    sal[0, b - 1: b + 2] = [0.5, 1.0, 0.5]
    sal[1, b] = 0.02
    f0 = tracker.decode(sal)
    assert abs(1200 * np.log2(f0[0] / 220)) < 10 and f0[1] == 0 and f0[2] == 0
    fb = mel_filterbank()
    assert fb.shape == (128, 513) and (fb >= 0).all() and (fb.sum(1) > 0).all()


def test_pitch_and_dsp_helpers():
    f0 = np.array([0, 50, 100, 440, 1100, 2000], np.float32)
    c = coarse_pitch(f0)
    assert c[0] == 1 and c[1] == 1 and c[4] == 255 and c[5] == 255 and 1 < c[2] < c[3] < 255
    assert np.allclose(transpose_f0(f0, 12), f0 * 2) and transpose_f0(f0, -12)[0] == 0
    glitch = np.array([200, 200, 400, 200, 200], np.float32)
    assert np.array_equal(median_filter_f0(glitch, 3), np.full(5, 200, np.float32))
    assert np.array_equal(median_filter_f0(glitch, 2), glitch)
    # the cut goes to the quietest 10 ms window near each nominal place
    x = np.ones(16000 * 3, np.float32)
    x[19100:19300] = 0  # frame 120's window (samples 19120-19280) is the only silent one
    cuts = chunk_cuts(x, 301, chunk_frames=100, query_frames=30, max_frames=150)
    assert cuts[0] == 0 and cuts[-1] == 301 and 120 in cuts
    assert chunk_cuts(x, 140, 100, 30, 150) == [0, 140]
    # RMS envelope: centred frames, zero padded
    y = np.random.default_rng(0).standard_normal(1000)
    env = rms_envelope(y, 200, 100)
    assert env.size == 11
    assert np.isclose(env[3], np.sqrt(np.mean(y[200:400] ** 2)))
    assert np.isclose(env[0], np.sqrt(np.sum(y[:100] ** 2) / 200))
    out = np.random.default_rng(1).standard_normal(4000).astype(np.float32)
    assert mix_rms(y, 1000, out, 4000, 1.0) is out
    loud = mix_rms(np.ones(1000) * 0.5, 1000, out * 0.01, 4000, 0.0)
    assert np.isclose(np.sqrt(np.mean(loud[1000:3000] ** 2)), 0.5, rtol=0.1)


@pytest.mark.gpu
def test_cuda_float16_engine_exact_length_and_octave(voice_file, embedder_dir):
    """The engine on CUDA in float16 (as the host runs it there): exact length, and +12 semitones
    doubles the F0 (same setup as the CPU test)."""
    from engines.analysis.melody import load_fcpe, track_f0
    from engines.voice.engine import RvcEngine

    sr = 48000
    x = _sweep(sr, 1.5, 150, 300)
    engine = RvcEngine()
    engine.load("cuda:0", "float16")
    spec = ConvertVoiceSpec(engine_id="rvc", audio=x, sample_rate=sr, target_voice=str(voice_file("v2", "40k")),
                            transpose=12, model_path=str(embedder_dir), seed=1)
    result = engine.run(spec, ProgressReporter(), CancelToken())
    out = result.outputs["audio"]
    assert out.shape == x.shape and np.isfinite(out).all() and result.provenance.dtype == "float16"
    fcpe = load_fcpe("cpu")
    f_in, f_out = track_f0(x, sr, model=fcpe), track_f0(out, sr, model=fcpe)
    both = f_in.voiced & f_out.voiced
    assert both.mean() > 0.8
    assert abs(np.median(1200 * np.log2(f_out.f0_hz[both] / f_in.f0_hz[both])) - 1200) < 20
    again = engine.run(spec, ProgressReporter(), CancelToken()).outputs["audio"]
    assert np.abs(out - again).max() < 1e-2  # same seeds; GPU kernels need not be bit-exact


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def test_embedder_from_pytorch_model_bin_and_a_code_carrying_bin_is_refused(tmp_path, embedder_dir, embedder):
    """The contentvec-rvc record ships pytorch_model.bin (a pickle): it loads with weights_only."""
    import shutil

    from engines.voice.embedder import _model_class

    state = _model_class().from_pretrained(str(embedder_dir)).state_dict()
    for name, extra in (("bin", {}), ("evil", {"evil": _Payload(tmp_path / "payload-ran")})):
        (tmp_path / name).mkdir()
        shutil.copy(embedder_dir / "config.json", tmp_path / name / "config.json")
        torch.save(dict(state, **extra), str(tmp_path / name / "pytorch_model.bin"))
    x = torch.from_numpy(_sweep(16000, 0.5, 200, 300))
    from_bin = ContentVec(tmp_path / "bin")
    assert from_bin.has_final_proj and from_bin.feature_dim("v1") == 256 and from_bin.feature_dim("v2") == 768
    for version, dim in (("v1", 256), ("v2", 768)):
        feats = from_bin(x, version)
        assert feats.shape == (1, (8000 - 400) // 320 + 1, dim)
        assert torch.equal(feats, embedder(x, version))
    with pytest.raises(ModelNotInstalled, match="refused: its weights file holds Python objects"):
        ContentVec(tmp_path / "evil")
    assert not (tmp_path / "payload-ran").exists()
