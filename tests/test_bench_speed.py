"""`python -m bench.speed --quick` runs end to end on a tiny input and writes every figure it promises.

Speed itself is reported, not tested: no assertion here depends on how fast the machine is."""

import json
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import FIXTURE_CLIPS, ROOT

import ser

pytestmark = pytest.mark.slow  # a benchmark run end to end


@pytest.fixture(scope="module")
def quick_run(random_checkpoint, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench_speed")
    data = folder / "clips"
    data.mkdir()
    for clip in FIXTURE_CLIPS[:2]:
        shutil.copy(clip, data / clip.name)
    (data / "broken.wav").write_bytes(b"not audio at all")  # throughput counts it as skipped
    out = folder / "out"
    run = subprocess.run([sys.executable, "-m", "bench.speed", "--quick", "--data", str(data),
                          "--model", str(random_checkpoint), "--output", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads((out / "speed.json").read_text()), (out / "speed.md").read_text(), data


def positive_latency(latency: dict, stages: tuple, runs: int):
    for stage in stages:
        assert latency[stage]["runs"] == runs
        assert 0 < latency[stage]["median_ms"] <= latency[stage]["p95_ms"], stage


def test_json_has_every_system_stage_and_thread_setting(quick_run, random_checkpoint):
    results, _, data = quick_run
    threads = [str(t) for t in results["thread_settings"]]
    assert threads[0] == "1" and results["machine"]["usable_cores"] == int(threads[-1])
    assert results["machine"]["cpu"] and results["machine"]["versions"]["torch"] == torch.__version__
    assert results["clip"]["path"] in {str(data / c.name) for c in FIXTURE_CLIPS[:2]}
    assert results["clip"]["seconds"] > 3

    systems = results["systems"]
    ours, onnx, anchor, librosa = (systems[k] for k in ("ours", "onnx", "anchor", "librosa"))
    for t in threads:
        positive_latency(ours["latency"][t], ("decode", "front_end", "network", "total"), 10)
        positive_latency(onnx["latency"][t], ("decode", "model", "total"), 10)
        positive_latency(anchor["latency"][t], ("decode", "front_end", "network", "total"), 2)
        positive_latency(librosa["latency"][t], ("decode", "front_end", "total"), 10)
        throughput = ours["throughput"][t]
        assert throughput["clips"] == 3 and throughput["failed"] == 1 and throughput["clips_per_s"] > 0
        assert results["matmul_peak"][t]["gflop_s"] > 0
        for system in (ours, anchor):
            assert 0 < system["efficiency"][t]["achieved_gflop_s"]
            assert system["efficiency"][t]["fraction_of_peak"] > 0
    assert ours["decode_throughput"]["clips_per_s"] > 0 and ours["decode_throughput"]["audio_seconds_per_s"] > 0
    assert onnx["max_probability_difference_vs_pytorch"] < 1e-4


def test_sizes_and_operation_counts_are_those_of_the_models(quick_run, random_checkpoint):
    results, _, _ = quick_run
    ours, anchor = results["systems"]["ours"], results["systems"]["anchor"]
    model = ser.SERForAudioClassification(ser.SERConfig())
    assert ours["parameters"] == sum(p.numel() for p in model.parameters())
    assert ours["size_on_disk_bytes"] == (random_checkpoint / "model.safetensors").stat().st_size
    # a ~3.5 s clip is scored whole (one forward pass), as the model was trained
    assert ours["windows_per_clip"] == 1 and anchor["windows_per_clip"] == 1
    assert 0 < ours["front_end_macs"] < ours["macs"] and ours["front_end_macs"] + ours["network_macs"] == ours["macs"]
    assert 300e6 < anchor["parameters"] < 330e6  # wav2vec2-large-xlsr-53: ~315M
    assert anchor["macs"] > 100 * ours["macs"]


def test_markdown_has_the_comparison_tables(quick_run):
    _, markdown, _ = quick_run
    for heading in ("## Ours vs the wav2vec2-large anchor", "## Latency by stage", "## Throughput over",
                    "## Goals of issue 5"):
        assert heading in markdown
    assert "| latency, 1 thread, median (ms) |" in markdown
    assert "--quick" in markdown


def test_only_a_busy_start_flags_the_timings(quick_run):
    """The 1-minute load average at the end counts the benchmark's own runs, so it cannot say the machine was busy."""
    from bench.speed import markdown

    results = quick_run[0]
    machine = results["machine"]
    own_load = markdown({**results, "machine": {**machine, "load_average_start": 0.1, "load_average_end": 1.3}})
    shared = markdown({**results, "machine": {**machine, "load_average_start": 1.2, "load_average_end": 1.3}})
    assert "busy" not in own_load and "the machine was busy (load average 1.2 at the start)" in shared
