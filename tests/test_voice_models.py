"""RVC voice models: the in-project synthesizers have RVC's exact schema, checkpoints load safely
(torch.load weights_only, strict state dict), real variants are accepted, others refused, and a
malicious pickle is refused without its payload ever running."""
from __future__ import annotations

import pickle
from collections import OrderedDict

import pytest

torch = pytest.importorskip("torch")

from engines.voice.checkpoint import VoiceModelError, build_synthesizer, load_voice, read_checkpoint  # noqa: E402
from engines.voice.rvc_models import SynthesizerTrnMs256NSFsid, SynthesizerTrnMs768NSFsid  # noqa: E402
from tests.voice_tiny import (CONFIGS, SCHEMA_DIGESTS, checkpoint_dict,  # noqa: E402
                              schema_digest, write_checkpoint)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def v2_40k(tmp_path_factory):
    """The fp16 v2 40 kHz checkpoint dict (random weights, real schema) and its file."""
    ckpt = checkpoint_dict("v2", "40k", seed=1, n_speakers=3)
    path = tmp_path_factory.mktemp("voice") / "voice.pth"
    torch.save(ckpt, str(path))
    return ckpt, path


@pytest.mark.parametrize("key", sorted(SCHEMA_DIGESTS))
def test_synthesizer_state_dict_is_rvcs_schema(key):
    version, sr = key
    cls = SynthesizerTrnMs768NSFsid if version == "v2" else SynthesizerTrnMs256NSFsid
    with torch.device("meta"):
        net = cls(*CONFIGS[key])
    assert schema_digest(net.state_dict()) == SCHEMA_DIGESTS[key]
    assert not any(k.startswith("enc_q") for k in net.state_dict())
    assert net.hop * 100 == net.sampling_rate


def test_real_schema_checkpoint_loads_strictly(v2_40k):
    ckpt, path = v2_40k
    # what RVC's trainer writes: fp16, enc_q dropped, these metadata keys
    assert set(ckpt) == {"weight", "config", "info", "sr", "f0", "version"}
    assert all(v.dtype == torch.float16 for v in ckpt["weight"].values())
    assert len(ckpt["weight"]) == 457 and ckpt["config"][15] == 109
    assert {"enc_p.emb_phone.weight", "enc_p.emb_pitch.weight", "dec.m_source.l_linear.weight", "dec.ups.0.weight_g",
            "dec.ups.0.weight_v", "flow.flows.0.enc.cond_layer.weight_g", "emb_g.weight"} <= set(ckpt["weight"])
    c = read_checkpoint(path)
    assert (c.version, c.sample_rate, c.n_speakers, c.hop, c.feature_dim) == ("v2", 40000, 3, 400, 768)
    assert c.config[15] == 3  # speaker count taken from emb_g.weight, not the config's 109
    net = build_synthesizer(c)
    state = net.state_dict()
    assert set(state) == set(ckpt["weight"])
    assert all(torch.equal(state[k], ckpt["weight"][k].float()) for k in state)
    assert isinstance(net, SynthesizerTrnMs768NSFsid) and not hasattr(net, "enc_q")


def test_weight_norm_weight_is_g_times_unit_v(v2_40k):
    _, path = v2_40k
    net, _ = load_voice(path)
    conv = net.dec.ups[0]
    v, g = conv.weight_v.detach(), conv.weight_g.detach()
    w = conv._weight()
    norms = w.pow(2).sum(dim=(1, 2)).sqrt()
    assert torch.allclose(norms, g.reshape(-1), rtol=1e-4)
    assert torch.allclose(w / norms[:, None, None], v / v.pow(2).sum(dim=(1, 2), keepdim=True).sqrt(), atol=1e-5)


def test_real_variants_are_accepted(tmp_path, v2_40k):
    ckpt, _ = v2_40k
    # sr as int, keys in another order, extra metadata, enc_q weights left in
    variant = OrderedDict()
    variant["version"] = "v2"
    variant["sr"] = 40000
    variant["author"] = "someone"
    weight = OrderedDict(reversed(list(ckpt["weight"].items())))
    weight["enc_q.pre.weight"] = torch.zeros(192, 1025, 1, dtype=torch.float16)
    variant["weight"] = weight
    variant["config"] = tuple(ckpt["config"])
    torch.save(variant, str(tmp_path / "a.pth"))
    c = read_checkpoint(tmp_path / "a.pth")
    assert (c.version, c.sample_rate) == ("v2", 40000) and "enc_q.pre.weight" not in c.weights
    assert c.metadata["author"] == "someone"
    build_synthesizer(c)
    # an old v1 checkpoint: no 'version', no 'f0', config sample rate as "40k"
    v1 = checkpoint_dict("v1", "40k", seed=2)
    del v1["version"], v1["f0"], v1["sr"]
    v1["config"][-1] = "40k"
    torch.save(v1, str(tmp_path / "v1.pth"))
    c1 = read_checkpoint(tmp_path / "v1.pth")
    assert (c1.version, c1.sample_rate, c1.feature_dim) == ("v1", 40000, 256)
    assert isinstance(build_synthesizer(c1), SynthesizerTrnMs256NSFsid)


@pytest.mark.parametrize("change,match", [
    ({"vocoder": "RefineGAN"}, "RefineGAN' vocoder"),
    ({"embedder_model": "chinese-hubert-base"}, "chinese-hubert-base' features"),
    ({"f0": 0}, "no pitch guidance"),
    ({"version": "v3"}, "unknown RVC version"),
    ({"sr": "48k"}, "says 48k but its config says 40000"),
    ({"version": None}, "says v1 .256-d features. but its weights take 768-d"),
    ({"config": [1, 2, 3]}, "no RVC 'config' list of 18"),
    ({"weight": None}, "not an RVC checkpoint"),
])
def test_unsupported_checkpoints_are_refused_clearly(tmp_path, v2_40k, change, match):
    path = write_checkpoint(tmp_path / "x.pth", changes=change, ckpt=v2_40k[0])
    with pytest.raises(VoiceModelError, match=match):
        read_checkpoint(path)


def test_weights_that_do_not_fit_are_refused(tmp_path, v2_40k):
    ckpt, _ = v2_40k
    bad = dict(ckpt, weight=OrderedDict(ckpt["weight"]))
    del bad["weight"]["dec.conv_post.weight"]
    bad["weight"]["dec.extra.weight"] = torch.zeros(1)
    torch.save(bad, str(tmp_path / "b.pth"))
    with pytest.raises(VoiceModelError, match="missing dec.conv_post.weight; unexpected dec.extra.weight"):
        load_voice(tmp_path / "b.pth")


def test_training_checkpoint_truncated_and_garbage_files_are_refused(tmp_path, v2_40k):
    _, path = v2_40k
    torch.save({"model": {}, "iteration": 3}, str(tmp_path / "G_100.pth"))
    with pytest.raises(VoiceModelError, match="training checkpoint"):
        read_checkpoint(tmp_path / "G_100.pth")
    data = path.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(VoiceModelError, match="can't be read"):
        read_checkpoint(tmp_path / "cut.pth")
    (tmp_path / "junk.pth").write_bytes(b"definitely not a pickle")
    with pytest.raises(VoiceModelError, match="not a readable PyTorch file"):
        read_checkpoint(tmp_path / "junk.pth")
    with pytest.raises(VoiceModelError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.pth")


class _Payload:
    """Pickles as a call to exec() that creates a marker file: a real code-execution pickle."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def test_malicious_pickle_is_refused_and_its_payload_never_runs(tmp_path, v2_40k):
    ckpt, _ = v2_40k
    marker = tmp_path / "payload-ran"
    # the payload is real: an ordinary unpickle runs it and creates the file
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()
    marker.unlink()
    # a voice .pth (torch zip format) and a legacy plain pickle, each carrying it
    evil = dict(ckpt, info=_Payload(marker))
    torch.save(evil, str(tmp_path / "evil.pth"))
    with open(tmp_path / "evil_legacy.pth", "wb") as f:
        pickle.dump({"weight": {}, "config": _Payload(marker)}, f, protocol=2)
    for name in ("evil.pth", "evil_legacy.pth"):
        with pytest.raises(VoiceModelError, match=r"refused: it holds Python code or objects \(exec\)"):
            load_voice(tmp_path / name)
        assert not marker.exists()


@pytest.mark.parametrize("key", [("v2", "40k"), ("v1", "48k")])
def test_blocked_decoding_equals_one_pass(key):
    """The CPU path decodes in time blocks with DECODER_MARGIN_FRAMES of context: the margin
    covers the decoder's receptive field, so the result is the one-pass result."""
    version, sr = key
    cls = SynthesizerTrnMs768NSFsid if version == "v2" else SynthesizerTrnMs256NSFsid
    torch.manual_seed(3)
    net = cls(*CONFIGS[key]).eval()  # torch's default init: random weights
    t = 100
    g = torch.Generator().manual_seed(0)
    phone = torch.randn(1, t, cls.feature_dim, generator=g)
    pitch = torch.randint(1, 256, (1, t), generator=g)
    f0 = torch.rand(1, t, generator=g) * 300 + 80
    f0[:, 40:55] = 0
    args = (phone, torch.tensor([t]), pitch, f0, torch.tensor([5]))
    torch.manual_seed(9)
    whole = net.infer(*args)
    torch.manual_seed(9)
    blocked = net.infer(*args, block_frames=50)
    assert whole.shape == blocked.shape == (1, 1, t * net.hop)
    assert (whole - blocked).abs().max() < 1e-5
