"""Time of one training step (forward, backward, AdamW) of a model config, contiguous or channels-last.

    python -m bench.step_time                      # the default config and the MFCC one before it, both memory formats

One thread, a batch of 16 random 3 s clips, median of 7 steps after 3 warm-up steps: the network's share of a
training run's time (augmentation runs in other processes), for comparing configs on one machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from bench import MFCC_MODEL
from ser import SERConfig, SERForAudioClassification

CONFIGS = {"mfcc": MFCC_MODEL, "default": {}}


def step_ms(overrides: dict, channels_last: bool, batch: int = 16, seconds: float = 3.0) -> float:
    torch.manual_seed(0)
    model = SERForAudioClassification(SERConfig(**overrides)).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters())
    waves, labels = torch.randn(batch, int(16000 * seconds)), torch.randint(0, 8, (batch,))
    times = []
    for _ in range(10):
        started = time.perf_counter()
        loss = model(waves, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times[3:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for name in args.configs:
        for channels_last in (False, True):
            print(json.dumps({"config": name, "channels_last": channels_last,
                              "ms_per_step": round(step_ms(CONFIGS[name], channels_last))}), flush=True)


if __name__ == "__main__":
    main()
