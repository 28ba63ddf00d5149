"""Speed benchmark: milliseconds per clip on this CPU, next to a wav2vec2-large anchor and a librosa front end.

    python -m bench.speed --data ../shared/data/ravdess    # minutes; most of it the anchor's runs
    python -m bench.speed                                  # the fixture clips (tests/fixtures/ravdess) instead
    python -m bench.speed --quick                          # a few runs of everything, to check that it works

Measured in one run, on the same clip and the same machine, with 1 thread and with all usable cores:
- latency of `EmotionRecognizer.predict(path)` for one ~3.5 s clip, median and p95 after warm-up, split into
  stages: decode + resample (`ser.load_audio`), speech detection (`ser.vad.require_speech`, the Silero VAD),
  front end (`model.front_end`), network (the rest of the forward pass) and other (windowing, reading the file's
  header, padding, softmax);
- the same call with the forward pass run by onnxruntime on the ONNX export (`ser.export.export_onnx`);
- the same interface around `Wav2Vec2ForSequenceClassification` built from the configuration of the popular
  RAVDESS model ehcalabres/wav2vec2-lg-xlsr-en-speech-emotion-recognition (wav2vec2-large-xlsr-53, ~315M
  parameters; random weights: only the compute is measured, and no download is needed);
- the librosa front end of earlier projects: `librosa.load` at 22050 Hz, 40 MFCCs averaged over time (no network);
- throughput in clips/s over the whole --data folder with `predict_many`, decoding included, and decode alone;
- parameters, size on disk, multiply-accumulates per clip (torch.utils.flop_counter.FlopCounterMode: convolutions
  and matrix products, which are nearly all of the arithmetic; FFTs and element-wise ops are not counted), and the
  achieved FLOP/s against a large float32 matmul on this CPU.

Writes speed.json and speed.md to --output. Timings are only meaningful on an otherwise idle machine: the load
average at the start and the end is recorded, and speed.md warns when it was high.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import numpy as np
import torch

import ser
from ser.audio import audio_duration
from ser.cli import expand
from transformers.modeling_outputs import SequenceClassifierOutput

from bench import ROOT, shown

DEFAULT_DATA = ROOT / "tests" / "fixtures" / "ravdess"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "speed"
ANCHOR_ID = "ehcalabres/wav2vec2-lg-xlsr-en-speech-emotion-recognition"
STAGES = ("decode", "speech", "front_end", "network", "model", "other", "total")
# Goals of issue 5, reported (not enforced) at the end of speed.md.
GOAL_MS, GOAL_CLIPS_PER_S, GOAL_RATIO = 10.0, 200.0, 100.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of audio clips (default: fixture)")
    parser.add_argument("--model", help="checkpoint folder (default: the embedded model; random weights if missing)")
    parser.add_argument("--clip", type=Path, help="the clip for latency (default: the one in --data closest to 3.5 s)")
    parser.add_argument("--runs", type=int, default=100, help="timed runs per latency figure (default 100)")
    parser.add_argument("--anchor-runs", type=int, help="timed runs for the wav2vec2 anchor (default: --runs)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of predict_many for throughput")
    parser.add_argument("--quick", action="store_true", help="few runs of everything: checks that it works")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="folder for speed.json and speed.md")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    if args.quick:
        args.runs, args.anchor_runs = min(args.runs, 10), min(args.anchor_runs or 2, 2)
    args.anchor_runs = args.anchor_runs or args.runs
    args.warmup = 2 if args.quick else 10
    return args


# ---------------------------------------------------------------------------------------------- timing

class StageClock:
    """Wall time spent inside one call in the forward passes of hooked modules (and in wrapped methods), so the
    real `predict` runs unchanged and its model stages are read from the inside."""

    def __init__(self):
        self.spent: dict[str, float] = {}
        self._started: dict[str, float] = {}

    def hook(self, module: torch.nn.Module, stage: str) -> None:
        """Count the time of `module`'s forward passes as `stage`."""
        module.register_forward_pre_hook(lambda *_: self._started.__setitem__(stage, time.perf_counter()))
        module.register_forward_hook(partial(self._stop, stage))

    def wrap(self, obj, method: str, stage: str):
        """Count the time of `obj.method` calls as `stage` (an instance attribute: the class is untouched).
        Returns a function that undoes it."""
        original = getattr(obj, method)

        def timed(*args, **kwargs):
            self._started[stage] = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._stop(stage)

        setattr(obj, method, timed)
        return lambda: setattr(obj, method, original)

    def _stop(self, stage, *_):
        self.spent[stage] = self.spent.get(stage, 0.0) + time.perf_counter() - self._started.pop(stage)


def time_calls(call, decode, clock: StageClock, runs: int, warmup: int) -> dict:
    """Median, p95 and mean per stage in milliseconds, over `runs` timed runs after `warmup` untimed ones.

    Each run times `decode()` alone (the decode + resample that `call` starts with), then `call()` end to end
    while `clock` reads the model stages inside it. `network` is the model's forward pass minus its front end;
    `other` is the total minus decoding and the clocked stages (windowing, softmax, ...)."""
    for _ in range(warmup):
        decode()
        call()
    samples = {stage: [] for stage in STAGES}
    for _ in range(runs):
        start = time.perf_counter()
        decode()
        spent = {"decode": time.perf_counter() - start}
        clock.spent.clear()
        start = time.perf_counter()
        call()
        total = time.perf_counter() - start
        spent.update(clock.spent)
        if "model" in spent and "front_end" in spent:
            spent["network"] = spent.pop("model") - spent["front_end"]
        spent["other"] = total - sum(spent.values())
        spent["total"] = total
        for stage, seconds in spent.items():
            samples[stage].append(seconds * 1000)
    return {stage: summarize(values) for stage, values in samples.items() if values}


def summarize(values_ms: list[float]) -> dict:
    p50, p95 = np.percentile(values_ms, [50, 95])
    return {"median_ms": float(p50), "p95_ms": float(p95), "mean_ms": float(np.mean(values_ms)), "runs": len(values_ms)}


def thread_settings() -> list[int]:
    """1 thread and every core this process may use (deduplicated on a 1-core machine)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return sorted({1, cores})


def blas_threads(threads: int):
    """Limit numpy's BLAS threads too (librosa's MFCC uses it), when threadpoolctl is installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(threads)


# ---------------------------------------------------------------------------------------------- systems

class OnnxForward(torch.nn.Module):
    """Stands in for the model inside an `EmotionRecognizer`: the same call (waveform batch in, output with
    `.logits`), run by onnxruntime on the exported graph (front end included), so `predict` decodes, checks
    for speech and windows exactly as it does around PyTorch.

    Args:
        onnx_path: the graph written by `ser.export.export_onnx`.
        threads: onnxruntime's intra-op threads.
    """

    def __init__(self, onnx_path: Path, threads: int):
        import onnxruntime

        super().__init__()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def forward(self, input_values: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> SequenceClassifierOutput:
        # The graph takes the waveforms alone: exact for unpadded rows, which is what latency timing sends.
        if attention_mask is not None and not bool(attention_mask.all()):
            raise ValueError("the ONNX graph scores unpadded waveforms only; send one clip at a time")
        logits = self.session.run(["logits"], {"input_values": input_values.numpy()})[0]
        return SequenceClassifierOutput(logits=torch.from_numpy(logits))


def anchor_config():
    """wav2vec2-large-xlsr-53, the base of the RAVDESS model ANCHOR_ID: Wav2Vec2Config's default conv feature
    encoder (7 layers, 512 channels) with layer norm and bias, and a 24-layer pre-norm transformer."""
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                          feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
                          num_labels=len(ser.RAVDESS_EMOTIONS), id2label=dict(enumerate(ser.RAVDESS_EMOTIONS)))


class Wav2Vec2Recognizer:
    """The anchor behind the interface of `EmotionRecognizer`: `load`, and `predict(audio)` -> {label: prob}.

    Random weights: only the compute is measured. The front end is wav2vec2's convolutional feature encoder;
    the waveform is normalized by `Wav2Vec2FeatureExtractor` first, as the model's preprocessor does."""

    def __init__(self):
        from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

        self.model = Wav2Vec2ForSequenceClassification(anchor_config()).eval()
        self.front_end = self.model.wav2vec2.feature_extractor
        self.feature_extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                                          do_normalize=True, return_attention_mask=True)
        self.labels = list(ser.RAVDESS_EMOTIONS)

    def load(self, audio) -> np.ndarray:
        return ser.load_audio(audio, 16000)

    # no_grad rather than inference_mode: FlopCounterMode cannot read weight-normalized convolutions under the latter
    @torch.no_grad()
    def predict(self, audio) -> dict[str, float]:
        inputs = self.feature_extractor(self.load(audio), sampling_rate=16000, return_tensors="pt")
        probs = self.model(**inputs).logits.softmax(-1)[0].numpy()
        return {self.labels[i]: float(probs[i]) for i in np.argsort(-probs)}


class LibrosaFrontEnd:
    """The feature pipeline of earlier RAVDESS projects (no network): `librosa.load` resampling to 22050 Hz, then
    40 MFCCs averaged over time."""

    def load(self, path):
        import librosa

        return librosa.load(path, sr=22050)

    def features(self, wave: np.ndarray, rate: int) -> np.ndarray:
        import librosa

        return np.mean(librosa.feature.mfcc(y=wave, sr=rate, n_mfcc=40).T, axis=0)

    def predict(self, path) -> np.ndarray:
        return self.features(*self.load(path))


# ---------------------------------------------------------------------------------------------- measures

def count_flops(call, front_end_suffix: str) -> dict:
    """FLOPs of one call, counted by FlopCounterMode (2 per multiply-accumulate), in total and in the front end."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        call()
    total = counter.get_total_flops()
    front = sum(sum(ops.values()) for name, ops in counter.get_flop_counts().items() if name.endswith(front_end_suffix))
    return {"flops": int(total), "macs": int(total // 2), "front_end_macs": int(front // 2),
            "network_macs": int((total - front) // 2)}


def windows_per_call(model: torch.nn.Module, call) -> int:
    """How many waveform rows (analysis windows) `call` sends through `model`'s forward pass."""
    rows = []

    def count(module, args, kwargs):
        rows.append(len(args[0] if args else kwargs["input_values"]))

    handle = model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        call()
    finally:
        handle.remove()
    return sum(rows)


def matmul_peak(threads: int, size: int, repeats: int) -> dict:
    """Best float32 `torch.mm(size x size)` rate: what this CPU's BLAS reaches on a compute-bound kernel."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return {"size": size, "seconds": best, "gflop_s": 2 * size**3 / best / 1e9}


def throughput(recognizer, paths: list[str], batch_size: int, min_clips: int) -> dict:
    """Clips per second of `predict_many` over `paths`, decoding included (whole passes until `min_clips`)."""
    list(recognizer.predict_many(paths[:batch_size], batch_size=batch_size))  # warm-up
    passes = max(1, math.ceil(min_clips / len(paths)))
    failed = 0
    start = time.perf_counter()
    for _ in range(passes):
        failed += sum(isinstance(r, Exception) for _, r in recognizer.predict_many(paths, batch_size=batch_size))
    seconds = time.perf_counter() - start
    clips = passes * len(paths)
    return {"clips": clips, "failed": failed // passes, "batch_size": batch_size, "seconds": seconds,
            "clips_per_s": clips / seconds,
            "ms_per_clip": seconds / clips * 1000}


def decode_throughput(paths: list[str], min_clips: int) -> dict:
    """Clips and audio seconds per second of `ser.load_audio` alone (decode + resample to 16 kHz)."""
    for path in paths[:4]:  # warm-up
        _try_load(path)
    passes = max(1, math.ceil(min_clips / len(paths)))
    audio_seconds = 0.0
    start = time.perf_counter()
    for _ in range(passes):
        for path in paths:
            wave = _try_load(path)
            audio_seconds += 0 if wave is None else len(wave) / 16000
    seconds = time.perf_counter() - start
    clips = passes * len(paths)
    return {"clips": clips, "seconds": seconds, "clips_per_s": clips / seconds, "ms_per_clip": seconds / clips * 1000,
            "audio_seconds_per_s": audio_seconds / seconds}


def _try_load(path):
    try:
        return ser.load_audio(path)
    except ser.AudioError:
        return None


def pick_clip(paths: list[str], target: float = 3.5) -> str:
    """The clip whose header duration is closest to `target` seconds (ties: the first in sorted order)."""
    durations = {}
    for path in paths:
        try:
            durations[path] = audio_duration(path)
        except ser.AudioError:
            continue
    known = {p: d for p, d in durations.items() if d is not None}
    if not known:
        raise SystemExit(f"error: no readable clip with a stated duration among {len(paths)} files")
    return min(known, key=lambda p: abs(known[p] - target))


def machine_info() -> dict:
    from train.train import machine

    cpu = machine()["cpu"]
    versions = {}
    for name in ("torch", "torchaudio", "torchcodec", "transformers", "onnxruntime", "librosa", "numpy"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # a missing optional package is recorded, not fatal
            versions[name] = None
    return {
        "cpu": cpu, "logical_cores": os.cpu_count(), "usable_cores": thread_settings()[-1],
        "torch_default_threads": torch.get_num_threads(), "platform": platform.platform(),
        "python": platform.python_version(), "versions": versions,
        "load_average_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def model_dir(requested: str | None, scratch: Path) -> tuple[Path, str]:
    """The checkpoint to time, and how it was chosen. Speed does not depend on the weights, so a random-weights
    checkpoint of the default architecture stands in while the embedded one is missing."""
    if requested:
        return Path(requested), "the checkpoint given with --model"
    if (Path(ser.DEFAULT_MODEL) / "config.json").is_file():
        return Path(ser.DEFAULT_MODEL), "embedded"
    path = scratch / "random_model"
    model = ser.SERForAudioClassification(ser.SERConfig())
    model.save_pretrained(path)
    ser.new_feature_extractor(model.config).save_pretrained(path)
    return path, "random weights (the embedded checkpoint is missing)"


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------- main

def run(args) -> dict:
    default_threads = torch.get_num_threads()
    began = time.perf_counter()
    info = machine_info()
    paths = expand([str(args.data)])
    if not paths:
        raise SystemExit(f"error: no audio files in {args.data}")
    clip = str(args.clip) if args.clip else pick_clip(paths)
    decode = partial(ser.load_audio, clip)
    settings = thread_settings()
    results = {"machine": info, "command": "python -m bench.speed " + " ".join(args.argv),
               "quick": args.quick, "data": str(args.data), "clips_in_data": len(paths),
               "clip": {"path": clip, "seconds": len(decode()) / 16000},
               "thread_settings": settings, "systems": {}}

    def log(message):
        print(f"[{time.perf_counter() - began:6.1f} s] {message}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as scratch:
        checkpoint, origin = model_dir(args.model, Path(scratch))
        log(f"ours: {checkpoint} ({origin}); clip {clip}")
        recognizer = ser.EmotionRecognizer(str(checkpoint))
        model = recognizer.model
        ours = {"name": "ours (PyTorch)", "checkpoint": shown(checkpoint), "weights": origin,
                "parameters": parameters(model),
                "size_on_disk_bytes": (checkpoint / "model.safetensors").stat().st_size,
                "windows_per_clip": windows_per_call(model, lambda: recognizer.predict(clip)),
                **count_flops(lambda: recognizer.predict(clip), ".front_end"), "latency": {}, "throughput": {}}
        clock = StageClock()
        clock.hook(model, "model")
        clock.hook(model.front_end, "front_end")
        for threads in settings:
            torch.set_num_threads(threads)
            log(f"ours, {threads} thread(s): latency, then throughput over {len(paths)} clips")
            # the speech detector's share; unwrapped before the throughput run, whose decode threads call it too
            unwrap = clock.wrap(ser.inference, "require_speech", "speech")
            ours["latency"][threads] = time_calls(lambda: recognizer.predict(clip), decode, clock, args.runs,
                                                  args.warmup)
            unwrap()
            ours["throughput"][threads] = throughput(ser.EmotionRecognizer(str(checkpoint)), paths, args.batch_size,
                                                     0 if args.quick else 500)
        ours["decode_throughput"] = decode_throughput(paths, 0 if args.quick else 500)
        results["systems"]["ours"] = ours

        log("ours: ONNX export, then onnxruntime latency")
        from ser.export import export_onnx

        onnx_path = Path(scratch) / "model.onnx"
        torch.set_num_threads(default_threads)
        difference = export_onnx(str(checkpoint), onnx_path)
        onnx = {"name": "ours (onnxruntime)", "size_on_disk_bytes": onnx_path.stat().st_size,
                "max_probability_difference_vs_pytorch": difference, "latency": {}}
        for threads in settings:
            onnx_recognizer = ser.EmotionRecognizer(ser.load_model(str(checkpoint)))
            onnx_recognizer.model = OnnxForward(onnx_path, threads)
            clock = StageClock()
            clock.hook(onnx_recognizer.model, "model")
            unwrap = clock.wrap(ser.inference, "require_speech", "speech")
            onnx["latency"][threads] = time_calls(lambda: onnx_recognizer.predict(clip), decode, clock, args.runs,
                                                  args.warmup)
            unwrap()
        results["systems"]["onnx"] = onnx

        log("librosa front end: latency")
        librosa_front = LibrosaFrontEnd()
        clock = StageClock()
        clock.wrap(librosa_front, "features", "front_end")
        librosa_result = {"name": "librosa front end (no network)", "latency": {}}
        for threads in settings:
            with blas_threads(threads):
                librosa_result["latency"][threads] = time_calls(lambda: librosa_front.predict(clip),
                                                                partial(librosa_front.load, clip), clock,
                                                                args.runs, args.warmup)
        results["systems"]["librosa"] = librosa_result

    log("anchor: building wav2vec2-large with random weights")
    torch.set_num_threads(default_threads)
    start = time.perf_counter()
    anchor = Wav2Vec2Recognizer()
    anchor_result = {"name": "wav2vec2-large anchor", "configuration_of": ANCHOR_ID,
                     "build_seconds": time.perf_counter() - start, "parameters": parameters(anchor.model),
                     "size_on_disk_bytes": 4 * parameters(anchor.model), "size_on_disk_estimated": True,
                     "windows_per_clip": windows_per_call(anchor.model, lambda: anchor.predict(clip)),
                     # counting runs the model once more: it doubles as the warm-up
                     **count_flops(lambda: anchor.predict(clip), ".wav2vec2.feature_extractor"), "latency": {}}
    clock = StageClock()
    clock.hook(anchor.model, "model")
    clock.hook(anchor.front_end, "front_end")
    for threads in settings:
        torch.set_num_threads(threads)
        log(f"anchor, {threads} thread(s): {args.anchor_runs} runs")
        anchor_result["latency"][threads] = time_calls(lambda: anchor.predict(clip), decode, clock, args.anchor_runs,
                                                       0 if args.quick else 2)
    results["systems"]["anchor"] = anchor_result
    del anchor

    log("float32 matmul peak")
    size, repeats = (1024, 3) if args.quick else (2048, 5)
    results["matmul_peak"] = {threads: matmul_peak(threads, size, repeats) for threads in settings}
    torch.set_num_threads(default_threads)
    for key in ("ours", "anchor"):
        system = results["systems"][key]
        system["efficiency"] = {}
        for threads in settings:
            latency = system["latency"][threads]
            model_ms = latency["front_end"]["median_ms"] + latency["network"]["median_ms"]
            achieved = system["flops"] / (model_ms / 1000) / 1e9
            peak = results["matmul_peak"][threads]["gflop_s"]
            system["efficiency"][threads] = {"model_median_ms": model_ms, "achieved_gflop_s": achieved,
                                             "peak_gflop_s": peak, "fraction_of_peak": achieved / peak}
    info["load_average_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    log("done")
    return results


# ---------------------------------------------------------------------------------------------- report

def markdown(results: dict) -> str:
    """speed.md from the results as speed.json stores them (thread counts as string keys), so a stored run renders
    the same as a fresh one."""
    results = json.loads(json.dumps(results))
    info, systems = results["machine"], results["systems"]
    settings = [str(threads) for threads in results["thread_settings"]]
    ours, anchor, onnx, librosa_result = (systems[k] for k in ("ours", "anchor", "onnx", "librosa"))
    decode = ours["decode_throughput"]
    one = settings[0]
    lines = [
        "# Speed benchmark", "",
        f"Produced by `{results['command']}`" + (" (**--quick: few runs, indicative only**)" if results["quick"] else "")
        + ".", "",
        f"Machine: {info['cpu']}, {info['usable_cores']} usable cores ({info['logical_cores']} logical), "
        f"Python {info['python']}, torch {info['versions']['torch']}, onnxruntime {info['versions']['onnxruntime']}, "
        f"{info['platform']}. Load average (1 min): {_num(info['load_average_start'])} at the start, "
        f"{_num(info['load_average_end'])} at the end.", "",
    ]
    # Only the start says whether other work shared the machine: by the end, the 1-minute average also counts this
    # benchmark's own multi-threaded runs and the anchor.
    if (info["load_average_start"] or 0) > 0.5:
        lines += [f"> **Warning:** the machine was busy (load average {info['load_average_start']:.1f} at the "
                  "start); these timings are not representative. Re-run on an idle machine.", ""]
    lines += [
        f"Latency clip: `{Path(results['clip']['path']).name}` ({results['clip']['seconds']:.2f} s; "
        f"{ours['windows_per_clip']} analysis window(s) of the model). Our checkpoint: {ours['weights']}. "
        f"Anchor: `Wav2Vec2ForSequenceClassification` with the configuration of `{anchor['configuration_of']}` "
        "(random weights, same compute). Latency is `predict(path)` end to end: decode, resample, features, "
        f"model; median and p95 over {ours['latency'][one]['total']['runs']} runs after warm-up "
        f"(anchor: {anchor['latency'][one]['total']['runs']}).", "",
        "## Ours vs the wav2vec2-large anchor", "",
        "| | ours | anchor | anchor / ours |", "|---|---:|---:|---:|",
    ]
    for threads in settings:
        for stat in ("median_ms", "p95_ms"):
            a, b = ours["latency"][threads]["total"][stat], anchor["latency"][threads]["total"][stat]
            lines.append(f"| latency, {_threads(threads)}, {stat[:-3]} (ms) | {a:.2f} | {b:.0f} | {b / a:.0f}x |")
    lines += [
        f"| parameters | {ours['parameters'] / 1e6:.3f} M | {anchor['parameters'] / 1e6:.1f} M | "
        f"{anchor['parameters'] / ours['parameters']:.0f}x |",
        f"| size on disk (model.safetensors) | {ours['size_on_disk_bytes'] / 1e6:.2f} MB | "
        f"{anchor['size_on_disk_bytes'] / 1e6:.0f} MB (fp32, 4 B x parameters) | "
        f"{anchor['size_on_disk_bytes'] / ours['size_on_disk_bytes']:.0f}x |",
        f"| multiply-accumulates per clip | {ours['macs'] / 1e6:.0f} M | {anchor['macs'] / 1e9:.1f} G | "
        f"{anchor['macs'] / ours['macs']:.0f}x |",
    ]
    for threads in settings:
        a, b = ours["efficiency"][threads], anchor["efficiency"][threads]
        lines.append(f"| achieved GFLOP/s in the model, {_threads(threads)} (share of matmul peak) | "
                     f"{a['achieved_gflop_s']:.1f} ({a['fraction_of_peak']:.0%}) | "
                     f"{b['achieved_gflop_s']:.1f} ({b['fraction_of_peak']:.0%}) | |")
    peak = ", ".join(f"{_threads(t)} {p['gflop_s']:.0f} GFLOP/s" for t, p in results["matmul_peak"].items())
    lines += [
        "",
        f"Multiply-accumulates: counted with `torch.utils.flop_counter.FlopCounterMode` over one `predict` call "
        f"(convolutions and matrix products; FFTs and element-wise ops are not counted). Ours: front end "
        f"{ours['front_end_macs'] / 1e6:.1f} M, network {ours['network_macs'] / 1e6:.1f} M. Peak: float32 "
        f"`torch.mm` of {results['matmul_peak'][one]['size']}x{results['matmul_peak'][one]['size']} matrices, "
        f"{peak}. Achieved = counted FLOPs / median time of the model's forward pass (front end + network).", "",
        "## Latency by stage (ms, median / p95)", "",
        "| system | threads | decode + resample | speech detection | front end | network | other | total |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for system in (ours, onnx, anchor, librosa_result):
        for threads in settings:
            latency = system["latency"][threads]
            cells = [_cell(latency, stage) for stage in ("decode", "speech", "front_end", "network", "other", "total")]
            if "model" in latency:  # onnxruntime runs the whole graph: front end and network in one
                cells[2:4] = ["(in network)", _cell(latency, "model")]
            lines.append(f"| {system['name']} | {threads} | " + " | ".join(cells) + " |")
    features_ours = sum(ours["latency"][one][s]["median_ms"] for s in ("decode", "front_end"))
    features_librosa = sum(librosa_result["latency"][one][s]["median_ms"] for s in ("decode", "front_end"))
    slowest = max(("decode", "speech", "front_end", "network", "other"),
                  key=lambda s: ours["latency"][one].get(s, {"median_ms": 0.0})["median_ms"])
    lines += [
        "",
        "Decoding is timed in a call of its own just before each run. *Speech detection* is the Silero VAD "
        "(`ser.vad.require_speech`; onnxruntime, 1 thread): it stops once it has found 0.2 s of speech. *Other* is "
        "the rest of the total (windowing, reading the file's header, padding, softmax), so noise can make it "
        "slightly negative.",
        "",
        f"Slowest stage of ours on 1 thread: **{slowest.replace('_', ' ')}** "
        f"({ours['latency'][one][slowest]['median_ms']:.2f} ms of {ours['latency'][one]['total']['median_ms']:.2f}). "
        f"Features alone, decode included (1 thread): ours {features_ours:.2f} ms, librosa {features_librosa:.2f} ms "
        f"({features_librosa / features_ours:.1f}x). The anchor's front end is wav2vec2's convolutional feature "
        "encoder; the librosa row decodes with `librosa.load(sr=22050)` and has no network. The ONNX graph (front "
        f"end included) matches PyTorch within {onnx['max_probability_difference_vs_pytorch']:.1e} in probability.",
        "",
        f"## Throughput over `{results['data']}` ({results['clips_in_data']} clips)", "",
        "| clips/s | " + " | ".join(_threads(t) for t in settings) + " |", "|---|" + "---:|" * len(settings),
        f"| `predict_many`, batch size {ours['throughput'][one]['batch_size']}, decoding included | "
        + " | ".join(f"{ours['throughput'][t]['clips_per_s']:.0f}" for t in settings) + " |",
        f"| decode + resample only (`ser.load_audio`, single-threaded) | {decode['clips_per_s']:.0f} |"
        + " |" * (len(settings) - 1),
        "",
        f"Decoding alone runs at {decode['audio_seconds_per_s']:.0f} s of audio per second "
        f"({decode['ms_per_clip']:.2f} ms per clip).", "",
        "## Goals of issue 5 (reported, not enforced)", "",
    ]
    median_one = ours["latency"][one]["total"]["median_ms"]
    best_throughput = max(ours["throughput"][t]["clips_per_s"] for t in settings)
    ratio = anchor["latency"][one]["total"]["median_ms"] / median_one
    for text, met in (
        (f"<= {GOAL_MS:.0f} ms median end to end per clip on one thread: {median_one:.2f} ms", median_one <= GOAL_MS),
        (f">= {GOAL_CLIPS_PER_S:.0f} clips/s with decoding: {best_throughput:.0f} clips/s",
         best_throughput >= GOAL_CLIPS_PER_S),
        (f">= {GOAL_RATIO:.0f}x faster than the anchor per clip (1 thread): {ratio:.0f}x", ratio >= GOAL_RATIO),
    ):
        lines.append(f"- {'met' if met else '**not met**'}: {text}")
    return "\n".join(lines) + "\n"


def _cell(latency: dict, stage: str) -> str:
    return f"{latency[stage]['median_ms']:.2f} / {latency[stage]['p95_ms']:.2f}" if stage in latency else "-"


def _threads(threads: int | str) -> str:
    return "1 thread" if int(threads) == 1 else f"{threads} threads"


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main(argv=None) -> int:
    args = parse_args(argv)
    results = run(args)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "speed.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.output / "speed.md").write_text(markdown(results))
    print(f"wrote {args.output / 'speed.json'} and {args.output / 'speed.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
