"""One preprocessing path: the Trainer's evaluation, `EmotionRecognizer`, the plain pipeline and the ONNX export give
the same probabilities for the same clip, because DC removal, loudness normalization and the choice of the window
all happen in the model's front end."""

import numpy as np
import onnxruntime
import torch
from conftest import FIXTURE
from transformers import Trainer, TrainingArguments, pipeline

import ser
from ser.export import export_onnx
from train import corpora, data
from train.train import collate


def test_trainer_recognizer_pipeline_and_onnx_agree_on_fixture_clips(tmp_path):
    clips = corpora.load_ravdess(str(FIXTURE))
    waves = [np.asarray(w, dtype=np.float32) for w in data.as_arrays(clips)["input_values"]]
    # A DC offset on some clips: each path must remove each clip's own, also inside a padded batch.
    waves = [w + (0.05 if i % 3 == 0 else 0.0) for i, w in enumerate(waves)]
    assert len({len(w) for w in waves}) > 1  # batches are padded
    recognizer = ser.EmotionRecognizer()
    labels = recognizer.labels

    def as_array(results):
        return np.array([[result[label] for label in labels] for result in results])

    library = as_array(recognizer.predict_batch(waves, sampling_rate=16000))

    trainer = Trainer(model=recognizer.model, data_collator=collate,
                      args=TrainingArguments(output_dir=str(tmp_path / "trainer"), per_device_eval_batch_size=16,
                                             report_to=[], remove_unused_columns=False, use_cpu=True))
    rows = clips.remove_columns("input_values").add_column("input_values", [w.tolist() for w in waves])
    logits = trainer.predict(data.as_arrays(rows)).predictions
    training_path = torch.from_numpy(logits).softmax(-1).numpy()

    classifier = pipeline("audio-classification", model=ser.DEFAULT_MODEL)
    plain = as_array({r["label"]: r["score"] for r in classifier(w, top_k=None)} for w in waves)
    batched = as_array({r["label"]: r["score"] for r in result}
                       for result in classifier(waves, top_k=None, batch_size=8))

    onnx_file = tmp_path / "model.onnx"
    export_onnx(recognizer.model, onnx_file)
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    onnx = np.concatenate([torch.from_numpy(session.run(["logits"], {"input_values": w[None]})[0]).softmax(-1).numpy()
                           for w in waves])

    for name, probabilities in (("Trainer", training_path), ("pipeline", plain), ("batched pipeline", batched),
                                ("ONNX", onnx)):
        np.testing.assert_allclose(probabilities, library, atol=1e-4, err_msg=name)
    # The offset alone would change the answer if a path skipped its removal.
    offset = np.asarray(waves[0])
    moved = recognizer.model(torch.from_numpy(offset - 0.05)[None]).logits.softmax(-1).detach().numpy()[0]
    np.testing.assert_allclose(moved, library[0], atol=1e-4)
