"""Loading checkpoints: a broken one fails with `ser.ModelLoadError` naming the file (the CLI prints it as
one line with a non-zero exit); only safetensors weights are loaded, never a pickle; and the code files
of a checkpoint never run unless the caller turns on `trust_remote_code` for a model they chose."""

import json
import shutil
import subprocess
import sys

import pytest
from conftest import FIXTURE_CLIPS, ROOT
from safetensors.torch import load_file, save_file
from transformers import AutoModelForAudioClassification

import ser


@pytest.fixture
def checkpoint(random_checkpoint, tmp_path):
    """A copy of a good checkpoint, to break."""
    path = tmp_path / "checkpoint"
    shutil.copytree(random_checkpoint, path)
    return path


def edit_config(path, **changes):
    config = json.loads((path / "config.json").read_text())
    config.update(changes)
    (path / "config.json").write_text(json.dumps(config))


def six_labels(path):
    labels = ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    edit_config(path, id2label={str(i): name for i, name in enumerate(labels)},
                label2id={name: i for i, name in enumerate(labels)})


def drop_tensor(path):
    weights = load_file(path / "model.safetensors")
    del weights["classifier.1.bias"]
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})


BREAKS = {
    "missing-config": (lambda p: (p / "config.json").unlink(), "config.json", "is missing"),
    "config-not-json": (lambda p: (p / "config.json").write_text("{not json"), "config.json", "not a valid config"),
    "config-bad-value": (lambda p: edit_config(p, pooling="max"), "config.json", "not a valid config"),
    "missing-weights": (lambda p: (p / "model.safetensors").unlink(), "model.safetensors", "is missing"),
    "corrupt-weights": (lambda p: (p / "model.safetensors").write_bytes(b"\x93NUMPY" + bytes(2000)),
                        "model.safetensors", "is damaged or not a safetensors file"),
    "truncated-weights": (lambda p: (p / "model.safetensors").write_bytes(
        (p / "model.safetensors").read_bytes()[:3000]), "model.safetensors", "is damaged or not a safetensors file"),
    "label-count": (six_labels, "config.json", "lists 6 labels but the classifier head in"),
    "other-shapes": (lambda p: edit_config(p, channels=[8, 16, 32, 64]), "model.safetensors", "does not fit"),
    "missing-tensor": (drop_tensor, "model.safetensors", "lacks 1 of the model's tensors (classifier.1.bias)"),
}


@pytest.mark.parametrize("name", list(BREAKS))
def test_broken_checkpoint_names_the_file(checkpoint, name):
    breaks, file, fragment = BREAKS[name]
    breaks(checkpoint)
    with pytest.raises(ser.ModelLoadError) as raised:
        ser.EmotionRecognizer(checkpoint)
    message = str(raised.value)
    assert str(checkpoint / file) in message and fragment in message and "\n" not in message


def test_label_count_names_both_files(checkpoint):
    six_labels(checkpoint)
    with pytest.raises(ser.ModelLoadError, match="has 8 outputs") as raised:
        ser.load_model(str(checkpoint))
    assert str(checkpoint / "model.safetensors") in str(raised.value)


def test_missing_folder(tmp_path):
    for missing in (tmp_path / "nothing", "runs/no/such/model"):
        with pytest.raises(ser.ModelLoadError, match=f"cannot load the model from {missing}: no such checkpoint folder"):
            ser.EmotionRecognizer(missing)


@pytest.mark.parametrize("name", ["missing-config", "corrupt-weights", "label-count"])
def test_cli_prints_one_line_and_exits_non_zero(checkpoint, name):
    breaks, file, fragment = BREAKS[name]
    breaks(checkpoint)
    run = subprocess.run([sys.executable, "-m", "ser", "predict", str(FIXTURE_CLIPS[0]), "--model", str(checkpoint)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().splitlines() == [run.stderr.strip()]  # one line, no traceback
    assert run.stderr.startswith("error: cannot load the model") and fragment in run.stderr
    assert str(checkpoint / file) in run.stderr


# --- security -----------------------------------------------------------------------------------------

class Trap:
    """Unpickling this creates `marker`: a stand-in for code a malicious pickle would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_pickle(path, marker):
    import pickle

    path.write_bytes(pickle.dumps({"classifier.1.bias": Trap(marker)}))


def test_pickle_weights_are_never_loaded(checkpoint, tmp_path):
    marker = tmp_path / "pickle_ran"
    (checkpoint / "model.safetensors").unlink()
    write_pickle(checkpoint / "pytorch_model.bin", marker)
    with pytest.raises(ser.ModelLoadError, match="only pickle weights are there \\(pytorch_model.bin\\)"):
        ser.EmotionRecognizer(checkpoint)
    assert not marker.exists()


def test_safetensors_win_over_a_pickle_beside_them(checkpoint, tmp_path):
    marker = tmp_path / "pickle_ran"
    write_pickle(checkpoint / "pytorch_model.bin", marker)
    assert ser.EmotionRecognizer(checkpoint).predict(FIXTURE_CLIPS[0])
    assert not marker.exists()


def test_hub_ids_are_asked_for_safetensors_and_no_remote_code(checkpoint, monkeypatch):
    """What `load_model` asks transformers for, for any model id (a Hub id cannot be reached here)."""
    calls = []
    real = AutoModelForAudioClassification.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        calls.append(kwargs)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(AutoModelForAudioClassification, "from_pretrained", classmethod(spy))
    ser.EmotionRecognizer(checkpoint)
    assert calls == [{"trust_remote_code": False, "use_safetensors": True, "output_loading_info": True}]


def test_code_in_a_foreign_checkpoint_is_not_run(checkpoint, tmp_path):
    marker = tmp_path / "remote_code_ran"
    (checkpoint / "evil_model.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                               "from transformers import PretrainedConfig\n"
                                               "class EvilConfig(PretrainedConfig):\n    model_type = 'evil'\n")
    edit_config(checkpoint, model_type="evil", auto_map={"AutoConfig": "evil_model.EvilConfig",
                                                        "AutoModelForAudioClassification": "evil_model.EvilConfig"})
    with pytest.raises(ser.ModelLoadError, match="trust_remote_code"):
        ser.EmotionRecognizer(checkpoint)
    assert not marker.exists()


def test_our_model_type_loads_with_our_code_not_the_copy_beside_the_weights(checkpoint, tmp_path):
    marker = tmp_path / "copied_code_ran"
    code = checkpoint / "modeling_ser.py"
    code.write_text(f"open({str(marker)!r}, 'w').close()\n" + code.read_text())
    recognizer = ser.EmotionRecognizer(checkpoint)
    assert type(recognizer.model) is ser.SERForAudioClassification
    assert not marker.exists()
