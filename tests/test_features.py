"""Control features (engines.features): numpy vs torch twins, and against librosa on real audio."""
from __future__ import annotations

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from engines import features as F


@pytest.fixture(scope="module")
def song(shared):
    """8 s of real music (Uncertain Future, 48 kHz stereo) as (channels, frames) float32."""
    with sf.SoundFile(shared / "audio" / "uncertain_future_30s.flac") as f:
        sr = f.samplerate
        f.seek(10 * sr)
        x = f.read(8 * sr, dtype="float32", always_2d=True).T
    return np.ascontiguousarray(x), sr


def _sine(freq, sr, seconds, amp=1.0):
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_chroma_without_highpass_equals_librosa_chroma_stft(song):
    x, sr = song
    ours = F.chroma(x, sr, highpass_hz=0)
    ref = librosa.feature.chroma_stft(y=x.mean(axis=0), sr=sr, n_fft=F.N_FFT, hop_length=F.HOP_LENGTH, tuning=0.0)
    assert ours.shape == ref.shape == (12, 1 + x.shape[1] // F.HOP_LENGTH)
    assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] > 0.999
    assert np.allclose(ours, ref, atol=1e-3)


def test_chroma_with_default_highpass_correlates_with_librosa_on_highpassed_audio(song):
    from scipy.signal import butter, sosfilt

    x, sr = song
    ours = F.chroma(x, sr)
    sos = butter(8, F.MELODY_HIGHPASS_HZ, "highpass", fs=sr, output="sos")
    ref = librosa.feature.chroma_stft(y=sosfilt(sos, x.mean(axis=0)).astype(np.float32), sr=sr, tuning=0.0)
    assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] > 0.7
    # the per-frame melody (argmax) agrees with librosa on most voiced frames
    assert (F.melody_argmax(ours) == ref.argmax(axis=0)).mean() > 0.6


def test_torch_twins_match_numpy(song):
    x, sr = song
    x = x[:, : 3 * sr]
    xt = torch.from_numpy(x)[None]
    np.testing.assert_allclose(F.chroma_torch(xt, sr)[0].numpy(), F.chroma(x, sr), atol=1e-4)
    np.testing.assert_allclose(F.loudness_db_torch(xt, sr)[0].numpy(), F.loudness_db(x, sr), atol=1e-3)
    np.testing.assert_allclose(F.onset_strength_torch(xt, sr)[0].numpy(), F.onset_strength(x, sr), atol=1e-3)


def test_torch_features_are_differentiable(song):
    x, sr = song
    xt = torch.from_numpy(x[:, :sr].copy())[None].requires_grad_(True)
    loss = (F.loudness_db_torch(xt, sr).mean() + F.onset_strength_torch(xt, sr).mean()
            + F.melody_soft_torch(F.chroma_torch(xt, sr))[:, 9].mean())
    loss.backward()
    assert xt.grad is not None and torch.isfinite(xt.grad).all() and xt.grad.abs().sum() > 0


def test_onset_strength_equals_librosa(song):
    x, sr = song
    ours = F.onset_strength(x, sr)
    ref = librosa.onset.onset_strength(y=x.mean(axis=0), sr=sr, n_fft=F.N_FFT, hop_length=F.HOP_LENGTH)
    assert ours.shape == ref.shape
    assert np.corrcoef(ours, ref)[0, 1] > 0.99


def test_loudness_tracks_librosa_rms_and_is_calibrated(song):
    x, sr = song
    ours = F.loudness_db(x, sr, a_weighted=False, smooth_seconds=None)
    spec = np.abs(librosa.stft(x.mean(axis=0), n_fft=F.N_FFT, hop_length=F.HOP_LENGTH, pad_mode="constant"))
    ref = librosa.amplitude_to_db(librosa.feature.rms(S=spec, frame_length=F.N_FFT)[0])
    assert np.corrcoef(ours, ref)[0, 1] > 0.99
    # a full-scale 1 kHz sine reads 0 dB (A-weighting is 0 dB at 1 kHz); -20 dBFS reads -20
    sine = _sine(1000.0, 44100, 1.0)
    assert abs(np.median(F.loudness_db(sine, 44100, smooth_seconds=None)) - 0.0) < 0.2
    assert abs(np.median(F.loudness_db(0.1 * sine, 44100, smooth_seconds=None)) + 20.0) < 0.2


def test_loudness_smoothing_follows_a_step():
    sr = 44100
    x = np.concatenate([_sine(1000, sr, 2.0, 0.01), _sine(1000, sr, 2.0, 1.0)])
    db = F.loudness_db(x, sr, smooth_seconds=0.5)
    frames_per_s = sr / F.HOP_LENGTH
    assert abs(db[int(0.8 * frames_per_s)] + 40.0) < 1.0
    assert abs(db[int(3.2 * frames_per_s)] - 0.0) < 1.0
    assert np.all(np.diff(db[int(1.7 * frames_per_s): int(2.3 * frames_per_s)]) > -0.5)  # rises through the step


def test_melody_argmax_finds_the_pitch_class_and_highpass_drops_bass():
    sr = 22050
    a4 = _sine(440.0, sr, 1.0)
    mel = F.melody_argmax(F.chroma(a4, sr))
    assert np.mean(mel[2:-2] == 9) > 0.95  # A
    one_hot = F.melody_one_hot(F.chroma(a4, sr))
    assert one_hot.shape[0] == 12 and np.allclose(one_hot.sum(axis=0)[2:-2], 1.0)
    # a loud low E (82 Hz) under a quiet A4: the high-passed chroma still says A
    mix = a4 * 0.2 + _sine(82.41, sr, 1.0)
    assert np.mean(F.melody_argmax(F.chroma(mix, sr))[2:-2] == 9) > 0.95
    assert np.mean(F.melody_argmax(F.chroma(mix, sr, highpass_hz=0))[2:-2] == 9) < 0.05  # bass wins unfiltered
    # silence gives -1 and an all-zero one-hot frame
    sil = F.chroma(np.zeros(sr, np.float32), sr)
    assert np.all(F.melody_argmax(sil) == -1) and F.melody_one_hot(sil).sum() == 0


def test_rhythm_curves_peak_on_the_events():
    sr, hop = 44100, F.HOP_LENGTH
    beats = np.array([0, sr // 2, sr, 3 * sr // 2])
    curves = F.rhythm_curves(beats, beats[::2], n_frames=200, sample_rate=sr)
    assert curves.shape == (2, 200)
    for b in beats:
        assert curves[0, int(round(b / hop))] > 0.95
    assert curves[1, int(round(beats[1] / hop))] < 0.05  # not a downbeat
    assert curves.max() <= 1.0 and curves.min() >= 0.0


@pytest.mark.parametrize("bad", [np.zeros(0, np.float32), np.array([0.0, np.nan], np.float32),
                                 np.zeros((2, 2, 2), np.float32)])
def test_bad_audio_raises_clear_errors(bad):
    with pytest.raises(ValueError, match="audio"):
        F.chroma(bad, 44100)
    with pytest.raises(ValueError):
        F.loudness_db(bad, 44100)
