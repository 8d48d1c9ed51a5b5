"""The models window's guide: what works offline, what each kind of job needs to download
and its size, and that nothing is downloaded until the musician asks (first run)."""
from __future__ import annotations


def test_guide_names_builtin_and_downloadable_models_with_sizes(qtbot, tmp_path):
    from engines.models import ModelManager, human_size
    from engines.registry import get_model
    from ui.models_window import ModelsWindow

    win = ModelsWindow(manager=ModelManager(tmp_path / "models"))
    qtbot.addWidget(win)
    text = win.guide.text()
    assert "Nothing has been downloaded yet" in text and "<b>Download</b>" in text
    separate = next(line for line in text.split("<br>") if "Separate stems" in line)
    assert "works now with" in separate and "dsp-hpss-centre" in separate  # separation works offline
    assert f"htdemucs ({human_size(get_model('htdemucs').size)})" in text
    assert "acestep-v15-xl-turbo (size on the Hub)" in text
    for title in ("Separate stems", "Transcribe to MIDI", "Convert a voice"):
        assert title in text
    assert not any(p.is_file() for p in (tmp_path / "models").rglob("*"))  # opening it downloads nothing


def test_guide_marks_installed_models_and_drops_the_first_run_line():
    from engines.registry import list_models
    from ui.models_window import model_guide

    records = [r for r in list_models() if r.engine in ("htdemucs", "dsp-separation")]
    text = model_guide(records, lambda r: "built-in" if r.builtin else ("installed" if r.id == "htdemucs" else "missing"))
    assert "Nothing has been downloaded yet" not in text
    assert "<b>Separate stems</b>: works now with dsp-hpss-centre (built-in); better with: htdemucs (84.1 MB, installed)" in text
    assert "Generate" not in text  # no line for a kind of job without models
    records = list_models()
    # a status that fails for one record never breaks the guide
    def flaky(r):
        raise OSError("unreadable")
    assert "Separate stems" in model_guide(records, flaky)
