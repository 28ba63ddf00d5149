"""ONNX export: waveform in, logits out (the log-mel or MFCC front end is part of the graph)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .inference import load_model


class _LogitsOnly(torch.nn.Module):
    """The model with a plain tensor output, which the ONNX exporter needs instead of a ModelOutput."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_values):
        return self.model(input_values).logits


def export_onnx(model, path: Path, check_seconds: float = 3.7) -> float:
    """Export `model` (a checkpoint folder, Hub id or loaded model) to `path`, then run the same real-sized
    input through onnxruntime and PyTorch and return the largest difference of their probabilities.

    The graph takes `input_values` of shape (batch, samples) at the model's rate; both axes are dynamic.
    Raises `RuntimeError` if the two disagree by more than 1e-4.
    """
    model = load_model(model) if isinstance(model, (str, Path)) else model.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = model.config.sampling_rate
    example = torch.randn(2, int(check_seconds * rate), generator=torch.Generator().manual_seed(0)) * 0.1
    torch.onnx.export(
        _LogitsOnly(model).eval(), (example,), str(path), input_names=["input_values"], output_names=["logits"],
        dynamic_shapes={"input_values": {0: torch.export.Dim("batch"), 1: torch.export.Dim("samples", min=rate // 10)}},
        dynamo=True, external_data=False,
    )
    difference = _compare(model, path, example.numpy())
    if difference > 1e-4:
        raise RuntimeError(f"ONNX and PyTorch probabilities differ by {difference:.2e} (> 1e-4)")
    return difference


def _compare(model, path: Path, waves: np.ndarray) -> float:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(["logits"], {"input_values": waves.astype(np.float32)})[0]
    with torch.inference_mode():
        torch_probs = model(torch.from_numpy(waves)).logits.softmax(-1).numpy()
    onnx_probs = torch.from_numpy(onnx_logits).softmax(-1).numpy()
    return float(np.abs(onnx_probs - torch_probs).max())
