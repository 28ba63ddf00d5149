"""The model on a CUDA GPU gives the CPU's answers: direct, through EmotionRecognizer and through the pipeline.

Skipped without a GPU (CI has none). Clips are decoded with soundfile rather than `ser.load_audio`, because
GPU machines often lack FFmpeg; the loader has its own tests.
"""

import numpy as np
import pytest
import torch
from conftest import FIXTURE_CLIPS

import ser

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def waves():
    soundfile = pytest.importorskip("soundfile")
    import torchaudio

    loaded = []
    for path in FIXTURE_CLIPS[:8]:
        samples, rate = soundfile.read(path, dtype="float32")
        wave = torchaudio.functional.resample(torch.from_numpy(samples), rate, 16000)
        loaded.append(wave.numpy())
    return loaded


def test_recognizer_on_cuda_matches_cpu(waves):
    on_cpu = ser.EmotionRecognizer().probabilities(waves)
    on_gpu = ser.EmotionRecognizer(device="cuda")
    assert next(on_gpu.model.parameters()).device.type == "cuda"
    probs = on_gpu.probabilities(waves)
    assert probs.shape == on_cpu.shape
    # cuDNN may use TF32 for convolutions: close, not bit-identical.
    np.testing.assert_allclose(probs, on_cpu, atol=2e-2)
    assert (probs.argmax(1) == on_cpu.argmax(1)).mean() >= 7 / 8


def test_pipeline_with_device_0(waves):
    from transformers import pipeline

    classify = pipeline("audio-classification", model=ser.DEFAULT_MODEL, device=0)
    on_cpu = ser.EmotionRecognizer()
    for wave in waves[:4]:
        result = classify({"raw": wave, "sampling_rate": 16000}, top_k=8)
        scores = {r["label"]: r["score"] for r in result}
        expected = on_cpu.predict(wave, 16000)
        assert max(scores, key=scores.get) == max(expected, key=expected.get)


def test_training_step_on_cuda(waves):
    config = ser.SERConfig()
    model = ser.SERForAudioClassification(config).cuda().train()
    length = max(len(w) for w in waves)
    batch = torch.zeros(len(waves), length)
    for row, wave in zip(batch, waves):
        row[: len(wave)] = torch.from_numpy(wave)
    labels = torch.arange(len(waves)) % config.num_labels
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        loss = model(batch.cuda(), labels=labels.cuda()).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]  # 20 steps on 8 clips: it learns them
