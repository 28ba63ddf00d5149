"""ONNX export of waveform -> logits, checked against PyTorch with onnxruntime."""

import subprocess
import sys

import numpy as np
import onnxruntime
import torch
import torchaudio
from conftest import FIXTURE_CLIPS, ROOT

import ser
from ser.modeling_ser import deltas


def test_slice_deltas_equal_torchaudio_compute_deltas():
    x = torch.randn(3, 40, 123)
    assert torch.allclose(deltas(x), torchaudio.functional.compute_deltas(x), atol=1e-6)


def test_export_cli_and_onnxruntime_match_pytorch_on_real_clips(random_checkpoint, tmp_path):
    out = tmp_path / "model.onnx"
    run = subprocess.run([sys.executable, "-m", "ser", "export", str(random_checkpoint), "--onnx", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "max probability difference" in run.stdout
    recognizer = ser.EmotionRecognizer(random_checkpoint)
    waves = [ser.load_audio(str(c)) for c in FIXTURE_CLIPS[:3]]
    length = max(map(len, waves))
    batch = np.stack([np.pad(w, (0, length - len(w))) for w in waves]).astype(np.float32)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input_values": batch})[0]
    onnx_probs = torch.from_numpy(logits).softmax(-1).numpy()
    with torch.inference_mode():
        torch_probs = recognizer.model(torch.from_numpy(batch)).logits.softmax(-1).numpy()
    # float32 FFT and convolution kernels of the two runtimes leave logits about 3e-4 apart on real clips
    assert np.abs(onnx_probs - torch_probs).max() < 5e-4


def test_export_with_test_time_speeds_matches_pytorch(tmp_path):
    """Speed averaging (three windows in one batch) exports too, for any batch size and clip length: the trained
    embedded model with the option turned on (a random model's saturated outputs barely move when averaged)."""
    from ser.export import export_onnx

    model = ser.EmotionRecognizer().model
    model.config.test_time_speeds = [0.9, 1.1]
    out = tmp_path / "model.onnx"
    assert export_onnx(model, out) < 1e-4
    waves = [ser.load_audio(str(c)) for c in FIXTURE_CLIPS[:3]]
    length = max(map(len, waves))
    batch = np.stack([np.pad(w, (0, length - len(w))) for w in waves]).astype(np.float32)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    onnx_probs = torch.from_numpy(session.run(["logits"], {"input_values": batch})[0]).softmax(-1).numpy()
    with torch.inference_mode():
        torch_probs = model(torch.from_numpy(batch)).logits.softmax(-1).numpy()
        one_pass = model.classifier(model.embed(torch.from_numpy(batch))).softmax(-1).numpy()
    assert np.abs(onnx_probs - torch_probs).max() < 5e-4
    assert np.abs(torch_probs - one_pass).max() > 1e-3  # the exported graph does average over the copies
