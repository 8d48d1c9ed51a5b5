"""Convert voice through the task path and the CLI: a voice from the library (random-weight
full-size v2 checkpoint in the real schema, tiny random ContentVec through --model-path),
the take lands over exactly the selected range, with the voice in its provenance."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from studio.cli.main import main  # noqa: E402
from tests.voice_tiny import write_checkpoint, write_embedder  # noqa: E402


@pytest.fixture(scope="module")
def voice_parts(tmp_path_factory):
    d = tmp_path_factory.mktemp("voice")
    return write_checkpoint(d / "singer.pth", version="v2", sr="40k"), write_embedder(d / "contentvec")


def test_convert_voice_from_the_library_lands_as_a_take(tmp_path, shared, voice_parts, monkeypatch, capsys):
    from studio.io.project_io import load_project

    pth, embedder = voice_parts
    monkeypatch.setenv("SEED_STUDIO_VOICES_DIR", str(tmp_path / "voices"))
    assert main(["voices", "import", str(pth), "--name", "Ada", "--source", "test", "--licence", "CC0"]) == 0
    bundle = tmp_path / "V.seedproj"
    assert main(["new", str(bundle), "--sample-rate", "48000"]) == 0
    assert main(["import", str(bundle), str(shared / "audio" / "lmms_flute01.ogg")]) == 0
    capsys.readouterr()
    before = load_project(bundle).tracks[0]
    code = main(["convert-voice", str(bundle), "--track", "1", "--start", "0.25", "--end", "0.75", "--voice", "Ada",
                 "--transpose", "12", "--model-path", str(embedder), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    p = load_project(bundle)
    (group,) = p.tracks[0].take_groups
    assert (group.start, group.end) == (12000, 36000)
    take = group.takes[0]
    item = p.media[take.clips[0].media_id]
    assert item.frames == 24000 and item.sample_rate == 48000
    assert take.provenance["voice"] == "Ada" and take.provenance["engine_id"] == "rvc"
    assert take.provenance["conditioning"]["transpose"] == 12.0
    assert p.tracks[0].clips == before.clips  # the source clip is untouched
    from studio.media.pool import MediaPool

    audio = MediaPool(bundle / "media", 48000).read(item)
    assert np.isfinite(audio).all() and np.abs(audio).max() > 1e-4
    assert main(["convert-voice", str(bundle), "--track", "1", "--voice", "Nobody", "--model-path",
                 str(embedder)]) == 1
    assert "Nobody" in capsys.readouterr().err
