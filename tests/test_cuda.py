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
    """Every fixture clip at 16 kHz."""
    soundfile = pytest.importorskip("soundfile")
    import torchaudio

    loaded = []
    for path in FIXTURE_CLIPS:
        samples, rate = soundfile.read(path, dtype="float32")
        wave = torchaudio.functional.resample(torch.from_numpy(samples), rate, 16000)
        loaded.append(wave.numpy())
    return loaded


def test_recognizer_on_cuda_matches_cpu(waves):
    waves = waves[:8]
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


def test_training_runs_on_cuda(tmp_path, waves):
    """`train_fold`, which `python -m train` runs, on the GPU that Trainer picks, with class weights, weight
    averaging and the speaker adversary. The splits are built in memory, like `train.data` builds them."""
    datasets = pytest.importorskip("datasets")
    from train.corpora import parse_ravdess as parse_filename
    from train.train import Recipe, train_fold

    fields = [parse_filename(path.name) for path in FIXTURE_CLIPS]
    rows = {"input_values": waves, "emotion": [f["emotion"] for f in fields], "actor": [f["actor"] for f in fields]}
    clips = datasets.Dataset.from_dict(rows)
    splits = {name: clips.filter(lambda row, keep=keep: row["actor"] in keep)
              for name, keep in (("train", (1, 2)), ("validation", (3,)), ("test", (4,)))}
    recipe = Recipe(epochs=3, batch_size=8, noise=False, pitch=False, stretch=False, shift=False, degrade=False,
                    average_last_epochs=2, speaker_adversary=0.5, workers=0)
    torch.cuda.reset_peak_memory_stats()
    metrics = train_fold(splits, recipe, tmp_path, dict(enumerate(ser.RAVDESS_EMOTIONS)), protocol="fixture")
    assert torch.cuda.max_memory_allocated() > 0  # Trainer put the model on the GPU
    assert metrics["clips"] == {"train": 16, "validation": 8, "test": 8}
    assert len(metrics["train_loss_per_epoch"]) == 3 and all(np.isfinite(metrics["train_loss_per_epoch"]))
    reloaded = ser.EmotionRecognizer(str(tmp_path / "model"))
    assert next(reloaded.model.parameters()).device.type == "cpu"  # a GPU-trained checkpoint loads on a CPU


def test_training_step_on_cuda(waves):
    from train.train import collate

    waves = waves[:8]
    config = ser.SERConfig()
    model = ser.SERForAudioClassification(config).cuda().train()
    batch = collate([{"input_values": wave, "emotion": i % config.num_labels} for i, wave in enumerate(waves)])
    batch, labels = batch["input_values"], batch["labels"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        loss = model(batch.cuda(), labels=labels.cuda()).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]  # 20 steps on 8 clips: it learns them
