"""The voices library (studio/voices.py) and `seed-studio voices import|list|remove`."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engines.files import sha256_file  # noqa: E402
from studio.cli import voices as voices_cli  # noqa: E402
from studio.cli.main import PLUGIN_MODULES, main  # noqa: E402
from studio.voices import CONSENT_REMINDER, ENV_VOICES_DIR, VoiceLibrary, VoiceLibraryError, default_voices_dir  # noqa: E402
from tests.voice_tiny import checkpoint_dict, write_checkpoint  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def voice_pth(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("src") / "Alto Take 3.pth", "v2", "40k", seed=4, n_speakers=1)


def _cli(*argv):
    assert "studio.cli.voices" in PLUGIN_MODULES and voices_cli.register  # the voices commands ship with the CLI
    return main(list(argv))


def test_import_list_remove_round_trip(tmp_path, voice_pth, capsys):
    lib = VoiceLibrary(tmp_path / "voices")
    assert lib.list() == []
    v = lib.import_voice(voice_pth, source="recorded by Ana for this song", licence="CC-BY-4.0, with consent")
    assert (v.id, v.name, v.version, v.sample_rate, v.speakers) == ("alto-take-3", "Alto Take 3", "v2", 40000, 1)
    assert v.model_path == tmp_path / "voices" / "alto-take-3" / "model.pth" and v.index_path is None
    assert v.model_sha256 == sha256_file(voice_pth) == sha256_file(v.model_path)
    assert (v.source, v.licence, v.info) == ("recorded by Ana for this song", "CC-BY-4.0, with consent", "300epoch")
    meta = json.loads((v.model_path.parent / "voice.json").read_text())
    assert meta["name"] == "Alto Take 3" and meta["original_files"] == ["Alto Take 3.pth"]
    assert lib.list() == [v] and lib.get("alto take 3") == v and lib.get("alto-take-3") == v
    assert lib.resolve("Alto Take 3") == (v.model_path, None)
    assert lib.resolve(str(voice_pth), str(tmp_path / "x.index")) == (voice_pth, tmp_path / "x.index")
    with pytest.raises(VoiceLibraryError, match="already in the library"):
        lib.import_voice(voice_pth, name="ALTO TAKE 3")
    assert [x.name for x in lib.list()] == ["Alto Take 3"]

    # the CLI on the same folder
    root = str(tmp_path / "voices")
    assert _cli("voices", "--voices-dir", root, "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [x["name"] for x in listed["voices"]] == ["Alto Take 3"] and listed["voices"][0]["licence"]
    assert _cli("voices", "--voices-dir", root, "import", str(voice_pth), "--name", "Second", "--source", "me",
                "--licence", "mine") == 0
    out = capsys.readouterr()
    assert "imported Second" in out.out and CONSENT_REMINDER in out.err
    assert _cli("voices", "--voices-dir", root, "list") == 0
    table = capsys.readouterr().out
    assert "Alto Take 3" in table and "Second" in table and "not stated" not in table
    assert _cli("voices", "--voices-dir", root, "remove", "Second", "alto-take-3") == 0
    assert "removed Second" in capsys.readouterr().out
    assert lib.list() == [] and not any((tmp_path / "voices").iterdir())
    assert _cli("voices", "--voices-dir", root, "remove", "Second") == 1
    assert "no voice named 'Second'" in capsys.readouterr().err


def test_import_with_index_and_replace(tmp_path, voice_pth):
    faiss = pytest.importorskip("faiss")
    feats = np.random.default_rng(0).standard_normal((200, 768)).astype(np.float32)
    index = faiss.index_factory(768, "IVF4,Flat")
    index.train(feats)
    index.add(feats)
    faiss.write_index(index, str(tmp_path / "added.index"))
    lib = VoiceLibrary(tmp_path / "voices")
    v = lib.import_voice(voice_pth, name="Lead", index=tmp_path / "added.index")
    assert v.index_path is not None and v.index_sha256 == sha256_file(tmp_path / "added.index")
    assert lib.resolve("lead") == (v.model_path, v.index_path)
    v2 = lib.import_voice(voice_pth, name="Lead", licence="now stated", replace=True)
    assert [x.licence for x in lib.list()] == ["now stated"] and v2.index_path is None
    small = faiss.index_factory(256, "IVF2,Flat")
    small.train(feats[:, :256].copy())
    small.add(feats[:, :256].copy())
    faiss.write_index(small, str(tmp_path / "v1.index"))
    with pytest.raises(VoiceLibraryError, match="holds 256-d features but the voice .* is v2"):
        lib.import_voice(voice_pth, name="Other", index=tmp_path / "v1.index")
    assert [x.name for x in lib.list()] == ["Lead"]


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def test_bad_and_malicious_voices_store_nothing(tmp_path, capsys):
    lib = VoiceLibrary(tmp_path / "voices")
    marker = tmp_path / "payload-ran"
    ckpt = checkpoint_dict("v2", "40k", seed=5)
    torch.save(dict(ckpt, info=_Payload(marker)), str(tmp_path / "evil.pth"))
    with pytest.raises(VoiceLibraryError, match="refused: it holds Python code or objects"):
        lib.import_voice(tmp_path / "evil.pth")
    assert not marker.exists()
    with open(tmp_path / "legacy.pth", "wb") as f:
        pickle.dump({"weight": _Payload(marker)}, f, protocol=2)
    assert _cli("voices", "--voices-dir", str(lib.root), "import", str(tmp_path / "legacy.pth")) == 1
    assert "refused" in capsys.readouterr().err and not marker.exists()
    torch.save(dict(ckpt, f0=0), str(tmp_path / "nof0.pth"))
    with pytest.raises(VoiceLibraryError, match="no pitch guidance"):
        lib.import_voice(tmp_path / "nof0.pth")
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(VoiceLibraryError, match="not a readable PyTorch file"):
        lib.import_voice(tmp_path / "text.pth")
    with pytest.raises(VoiceLibraryError, match="does not exist"):
        lib.import_voice(tmp_path / "missing.pth")
    assert lib.list() == []
    assert not lib.root.exists() or not any(lib.root.iterdir())


def test_names_that_are_not_latin_stay_apart():
    from studio.voices import _slug

    assert _slug("Alto Take 3") == "alto-take-3" and _slug("Éloïse") == "eloise"
    assert _slug("声").startswith("voice-") and _slug("声") != _slug("歌")


def test_voices_folder_choice(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VOICES_DIR, str(tmp_path / "env-voices"))
    assert default_voices_dir() == tmp_path / "env-voices"
    assert default_voices_dir(tmp_path / "given") == tmp_path / "given"
    monkeypatch.delenv(ENV_VOICES_DIR)
    assert default_voices_dir().name == "voices"
