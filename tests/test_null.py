"""Null test: the blupi001 stems, imported at unity gain and exported, sum to the mix and to mixture.flac."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from studio.export.ableton import export_for_ableton
from studio.media.pool import MediaPool
from studio.model.project import AudioClip, Project, Track
from studio.audio.render import render_mix

STEMS = ("drums", "bass", "other")


@pytest.fixture(scope="module")
def stems_project(shared, tmp_path_factory):
    root = tmp_path_factory.mktemp("null") / "Null.seedproj"
    pool = MediaPool(root / "media", 44100)
    project = Project(name="Null", sample_rate=44100)
    for name in STEMS:
        item = pool.import_file(shared / "multitrack" / "blupi001" / f"{name}.flac", peaks=False)
        project.media[item.id] = item
        project.tracks.append(Track(name.title(), clips=[AudioClip(item.id, 0, 0, item.frames)]))
    return project, pool, root.parent


@pytest.mark.parametrize("float32", [False, True])
def test_exported_stems_sum_to_mix_and_to_the_source_mixture(shared, stems_project, float32):
    project, pool, tmp = stems_project
    out = tmp / ("export-float" if float32 else "export-24")
    report = export_for_ableton(project, pool, out, float32=float32)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["01 Drums.wav", "02 Bass.wav", "03 Other.wav", "Mix.wav", "seed-studio-export.json"]

    reference, sr = sf.read(shared / "multitrack" / "blupi001" / "mixture.flac", dtype="float32", always_2d=True)
    wavs = [out / n for n in names if n.endswith(".wav")]
    infos = [sf.info(w) for w in wavs]
    assert {i.frames for i in infos} == {reference.shape[0]} == {report.frames}
    assert {i.samplerate for i in infos} == {sr} and {i.channels for i in infos} == {2}
    assert {i.subtype for i in infos} == {"FLOAT" if float32 else "PCM_24"}

    stems = [sf.read(w, dtype="float64")[0] for w in wavs[:3]]
    mix = sf.read(out / "Mix.wav", dtype="float64")[0]
    stem_sum = sum(stems)
    assert np.abs(stem_sum - mix).max() <= 1e-4
    assert np.abs(stem_sum - reference).max() <= 1e-4
    assert np.abs(mix - reference).max() <= 1e-4
    # each stem is its source file, bit for bit at 24-bit
    src = sf.read(shared / "multitrack" / "blupi001" / "drums.flac", dtype="float64")[0]
    assert np.abs(stems[0] - src).max() <= (1e-7 if float32 else 2 ** -23)

    manifest = json.loads((out / "seed-studio-export.json").read_text())
    assert manifest["sample_rate"] == 44100 and manifest["bit_depth"] == (32 if float32 else 24)
    assert manifest["dither"] == "none"
    assert [f["file"] for f in manifest["files"]] == names[:4]
    assert [f.get("track_name") for f in manifest["files"][:3]] == ["Drums", "Bass", "Other"]
    assert manifest["files"][0]["media"][0]["original_name"] == "drums.flac"


def test_render_mix_equals_mixture_in_float(shared, stems_project):
    project, pool, _ = stems_project
    mix = render_mix(project, pool)
    reference = sf.read(shared / "multitrack" / "blupi001" / "mixture.flac", dtype="float32")[0].T
    assert mix.shape == reference.shape
    assert np.abs(mix - reference).max() <= 1e-4
