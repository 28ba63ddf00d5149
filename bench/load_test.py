"""The app under load: many `gradio_client` callers at once against `python app.py`, and the server's memory.

    python -m bench.load_test                              # 16 callers x 25 requests = 400
    python -m bench.load_test --callers 16 --requests 63   # 1008 requests, for the "< 50 MB over 1000" check

Starts `app.py` on the embedded default model as a separate process on a free localhost port (as a user would),
waits for the page, sends one warm-up request, then lets every caller (one thread and one `gradio_client.Client`
each, all released together) send its requests one after the other to the named `/predict` endpoint.

The inputs: the 32 fixture clips (tests/fixtures/ravdess, FLAC), the same clips converted by FFmpeg to WAV
(16 kHz mono, or 48 kHz stereo int16 like a browser microphone) and to MP3, and, every `--bad-every`-th request,
an unusable input: 3 s of digital silence, a text file named .wav, random bytes named .wav, a 0.1 s clip.

Counted:
- a valid request is served when the answer is a Label of all 8 emotions whose confidences sum to 1, in order,
  and equal (within 1e-4) the first answer for the same file: the same file must get the same answer however
  many requests run beside it. Anything else (an exception, a malformed or different answer) is a failure;
- a bad input is answered when the client raises `AppError` carrying the app's message for that input (and no
  server-side temporary path); any other outcome, an answer included, is a wrong answer.
- latency is each `client.predict` call as the caller sees it (upload, queue, prediction, answer);
- memory is the resident set of the server process and its children (psutil), after the warm-up request and
  after the last request, plus a sample every 0.5 s (its peak, and its value at every tenth of the requests),
  each also split into its anonymous part (heap) and the rest (file-backed pages of the shared libraries). The
  growth from the first tenth of the requests to the end shows the trend once every worker thread and code path
  has been used; the growth from the warm-up request includes that start-up.

Writes load.json and load.md to --output and prints the table. Exits with 1 if a valid request failed or a bad
input was answered wrongly, 2 if the app could not be started.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.app_server import ROOT, running_app

FIXTURE = ROOT / "tests" / "fixtures" / "ravdess"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "load"
EMOTIONS = {"neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"}
TOLERANCE = 1e-4  # two answers for the same file may differ by this much (thread scheduling, float summation)


@dataclass(frozen=True)
class Input:
    name: str  # unique, e.g. "wav/03-01-05-01-01-01-01.wav"
    path: Path
    kind: str  # flac, wav, wav48k, mp3 for valid inputs; silence, text, random, short for bad ones
    expected: str | None = None  # for a bad input: a regular expression the error message must match


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load_test", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callers", type=int, default=16, help="concurrent callers (default: 16)")
    parser.add_argument("--requests", type=int, default=25, help="requests per caller (default: 25)")
    parser.add_argument("--bad-every", type=int, default=8,
                        help="every N-th request sends an unusable input; 0 for none (default: 8)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="folder for load.json and load.md")
    parser.add_argument("--startup-timeout", type=float, default=300, help="seconds to wait for the app (default: 300)")
    args = parser.parse_args(argv)
    if args.callers < 1 or args.requests < 1 or args.bad_every < 0:
        parser.error("--callers and --requests must be at least 1, --bad-every at least 0")
    return args


# --- inputs -------------------------------------------------------------------------------------------------------

def _ffmpeg(source: Path, target: Path, *options: str) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source), *options, str(target)],
                   check=True)
    return target


def prepare_inputs(folder: Path) -> tuple[list[Input], list[Input]]:
    """The valid inputs (fixture FLACs and their WAV / MP3 conversions) and the unusable ones, written to `folder`."""
    clips = sorted(FIXTURE.glob("Actor_*/*.flac"))
    if not clips:
        raise SystemExit(f"error: no fixture clips in {FIXTURE}")
    valid = []
    for number, clip in enumerate(clips):
        valid.append(Input(f"flac/{clip.name}", clip, "flac"))
        if number % 2:  # half at 16 kHz mono, half as a browser microphone records: 48 kHz, stereo, 16-bit
            wav = _ffmpeg(clip, folder / f"{clip.stem}.48k.wav", "-ar", "48000", "-ac", "2", "-c:a", "pcm_s16le")
            valid.append(Input(f"wav48k/{wav.name}", wav, "wav48k"))
        else:
            wav = _ffmpeg(clip, folder / f"{clip.stem}.wav", "-ar", "16000", "-ac", "1")
            valid.append(Input(f"wav/{wav.name}", wav, "wav"))
        mp3 = _ffmpeg(clip, folder / f"{clip.stem}.mp3", "-b:a", "128k")
        valid.append(Input(f"mp3/{mp3.name}", mp3, "mp3"))

    silence = folder / "silence.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "anullsrc=r=48000:cl=mono:d=3", "-c:a", "pcm_s16le", str(silence)], check=True)
    text = folder / "notes.wav"
    text.write_text("this is not audio, only a text file with the wrong name\n" * 50)
    noise = folder / "random.wav"
    noise.write_bytes(_random_bytes(5000))
    short = _ffmpeg(clips[4], folder / "short.wav", "-ss", "1.5", "-t", "0.1")
    bad = [
        Input("bad/silence.wav", silence, "silence", r"No speech found: the audio is silent"),
        Input("bad/notes.wav", text, "text", r"not a readable audio file.*please use an audio file"),
        Input("bad/random.wav", noise, "random", r"not a readable audio file"),
        Input("bad/short.wav", short, "short", r"the clip is \d+ ms long.*at least 200 ms"),
    ]
    return valid, bad


def _random_bytes(size: int) -> bytes:
    import random

    return random.Random(0).randbytes(size)


def schedule(args: argparse.Namespace, valid: list[Input], bad: list[Input]) -> list[list[Input]]:
    """Each caller's inputs in order: request k overall is a bad input when k % bad_every == bad_every - 1;
    valid inputs and bad inputs are each taken round-robin, so every file is sent several times."""
    plan, n_valid, n_bad = [], 0, 0
    for caller in range(args.callers):
        row = []
        for i in range(args.requests):
            k = caller * args.requests + i
            if args.bad_every and k % args.bad_every == args.bad_every - 1:
                row.append(bad[n_bad % len(bad)])
                n_bad += 1
            else:
                # Stride through the valid inputs so that neighbours in time are different files and formats.
                row.append(valid[(n_valid * 37) % len(valid)])
                n_valid += 1
        plan.append(row)
    return plan


# --- the server ---------------------------------------------------------------------------------------------------

def rss_mb(pid: int) -> tuple[float, float]:
    """Resident memory of the process and all its children, in MiB: (all of it, the anonymous part). The rest
    is file-backed (shared libraries' pages, which grow as new code paths run for the first time, then stop)."""
    import psutil

    total = shared = 0
    try:
        process = psutil.Process(pid)
        for p in [process, *process.children(recursive=True)]:
            try:
                info = p.memory_info()
            except psutil.NoSuchProcess:
                continue
            total += info.rss
            shared += getattr(info, "shared", 0)  # Linux: RssFile + RssShmem
    except psutil.NoSuchProcess:
        return float("nan"), float("nan")
    return total / 2**20, (total - shared) / 2**20


class MemorySampler(threading.Thread):
    """Samples the server's RSS every `every` seconds, with the number of requests completed at that moment."""

    def __init__(self, pid: int, completed, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.completed, self.every = pid, completed, every
        self.samples: list[tuple[float, int, float, float]] = []  # (s since start, requests done, RSS, anon)
        self._stop_event = threading.Event()
        self._start = time.perf_counter()

    def run(self):
        while not self._stop_event.is_set():
            self.samples.append((time.perf_counter() - self._start, self.completed(), *rss_mb(self.pid)))
            self._stop_event.wait(self.every)

    def stop(self):
        self._stop_event.set()
        self.join()


# --- the callers --------------------------------------------------------------------------------------------------

def new_client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, analytics_enabled=False, download_files=False)


def label_problem(result) -> str | None:
    """What is wrong with a /predict answer (a gr.Label value), or None."""
    if not isinstance(result, dict) or not isinstance(result.get("confidences"), list):
        return f"not a Label value: {str(result)[:200]}"
    scores = {c.get("label"): c.get("confidence") for c in result["confidences"]}
    if set(scores) != EMOTIONS or len(result["confidences"]) != len(EMOTIONS):
        return f"labels {sorted(map(str, scores))} are not the 8 emotions"
    values = list(scores.values())
    if not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in values):
        return f"confidences out of [0, 1]: {values}"
    if abs(sum(values) - 1) > 1e-3:
        return f"confidences sum to {sum(values):.6f}"
    if values != sorted(values, reverse=True) or result.get("label") != next(iter(scores)):
        return "the label is not the most likely emotion, or the confidences are not in order"
    return None


class Recorder:
    """Collects the outcome of every request, and the first answer for every file (the reference for the rest)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.records: list[dict] = []
        self.reference: dict[str, dict[str, float]] = {}

    def completed(self) -> int:
        return len(self.records)

    def add(self, **record):
        with self.lock:
            self.records.append(record)

    def same_as_first(self, name: str, scores: dict[str, float]) -> str | None:
        with self.lock:
            first = self.reference.setdefault(name, scores)
        worst = max(abs(first[k] - scores[k]) for k in first)
        return None if worst <= TOLERANCE else f"differs from the first answer for this file by {worst:.2e}"


def one_request(client, item: Input) -> tuple[str, str, float]:
    """Send one input; return (outcome, detail, latency in seconds). Outcomes: served, failed (valid inputs),
    answered, wrong (bad inputs)."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    start = time.perf_counter()
    try:
        result = client.predict(handle_file(str(item.path)), api_name="/predict")
    except AppError as error:
        latency = time.perf_counter() - start
        message = str(error)
        if item.expected is None:
            return "failed", f"AppError: {message}", latency
        if not re.search(item.expected, message, flags=re.S | re.I):
            return "wrong", f"AppError without the expected message /{item.expected}/: {message}", latency
        if "/gradio/" in message or str(item.path.parent) in message:
            return "wrong", f"the message leaks a path: {message}", latency
        return "answered", message, latency
    except Exception as error:  # noqa: BLE001 - any other failure is what a load test is here to count
        latency = time.perf_counter() - start
        detail = f"{type(error).__name__}: {error}"[:500]
        return ("failed" if item.expected is None else "wrong"), detail, latency
    latency = time.perf_counter() - start
    if item.expected is not None:
        return "wrong", f"got an answer instead of an error: {str(result)[:200]}", latency
    problem = label_problem(result)
    if problem:
        return "failed", problem, latency
    return "served", json.dumps({c["label"]: c["confidence"] for c in result["confidences"]}), latency


def caller(number: int, url: str, items: list[Input], recorder: Recorder, barrier: threading.Barrier):
    """One caller: its own client, created before the start, then its requests one after the other."""
    try:
        client = new_client(url)
    except Exception as error:  # noqa: BLE001
        barrier.wait()
        for i, item in enumerate(items):
            recorder.add(caller=number, index=i, input=item.name, kind=item.kind, valid=item.expected is None,
                         outcome="failed" if item.expected is None else "wrong", latency_s=None, start=None,
                         detail=f"could not create the client: {type(error).__name__}: {error}"[:500])
        return
    barrier.wait()  # everyone starts together
    try:
        for i, item in enumerate(items):
            start = time.perf_counter()
            outcome, detail, latency = one_request(client, item)
            if outcome == "served":
                scores = json.loads(detail)
                problem = recorder.same_as_first(item.name, scores)
                outcome, detail = ("failed", problem) if problem else (outcome, max(scores, key=scores.get))
            recorder.add(caller=number, index=i, input=item.name, kind=item.kind, valid=item.expected is None,
                         outcome=outcome, latency_s=latency, start=start, detail=detail)
    finally:
        client.close()


# --- the report ---------------------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n q / 100), at least 1
    return ordered[int(rank) - 1]


def summarize(records: list[dict], elapsed: float) -> dict:
    valid = [r for r in records if r["valid"]]
    bad = [r for r in records if not r["valid"]]
    served = [r for r in valid if r["outcome"] == "served"]
    latencies = [r["latency_s"] for r in served]
    bad_latencies = [r["latency_s"] for r in bad if r["outcome"] == "answered"]
    by_kind = {}
    for r in records:
        counts = by_kind.setdefault(r["kind"], {})
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    return {
        "requests": len(records),
        "valid_requests": len(valid),
        "valid_served": len(served),
        "valid_failed": len(valid) - len(served),
        "bad_requests": len(bad),
        "bad_answered_with_message": sum(r["outcome"] == "answered" for r in bad),
        "bad_answered_wrongly": sum(r["outcome"] != "answered" for r in bad),
        "latency_valid_s": ({"p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
                             "max": max(latencies), "mean": sum(latencies) / len(latencies)} if latencies else None),
        "latency_bad_s": ({"p50": percentile(bad_latencies, 50), "max": max(bad_latencies)}
                          if bad_latencies else None),
        "elapsed_s": elapsed,
        "throughput_rps": len(records) / elapsed if elapsed > 0 else None,
        "valid_throughput_rps": len(served) / elapsed if elapsed > 0 else None,
        "outcomes_by_kind": by_kind,
        "problems": [r for r in records if r["outcome"] in ("failed", "wrong")][:50],
        "bad_messages": sorted({f"{r['kind']}: {r['detail']}" for r in bad if r["outcome"] == "answered"}),
    }


def server_log(log_path: Path) -> dict:
    """The server's tracebacks, split into the app's own messages (`gr.Error`, which Gradio prints with a traceback
    for every unusable input) and everything else (real errors), with the last line of each."""
    lines = log_path.read_text(errors="replace").splitlines() if log_path.is_file() else []
    user, other = [], []
    for number, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last):"):
            # The exception line is the first one after the traceback that is not indented.
            last = next((x for x in lines[number + 1:] if x and not x.startswith(" ")), "?")
            (user if last.startswith("gradio.exceptions.Error") else other).append(last[:300])
        elif line.startswith(("ERROR", "CRITICAL")):
            other.append(line[:300])
    return {"lines": len(lines), "gr_error_tracebacks": len(user), "errors": other}


def source_version() -> str:
    """The git commit of the app that ran, and whether the working tree had changes."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def command_line(args: argparse.Namespace) -> str:
    parts = ["python", "-m", "bench.load_test", "--callers", str(args.callers), "--requests", str(args.requests)]
    if args.bad_every != 8:
        parts += ["--bad-every", str(args.bad_every)]
    return shlex.join(parts)


def markdown(results: dict) -> str:
    s, m, log, app = results["summary"], results["memory_mb"], results["server_log"], results["app"]
    lat = s["latency_valid_s"] or {"p50": float("nan"), "p95": float("nan"), "max": float("nan")}
    ms = lambda seconds: f"{seconds * 1000:.0f} ms"  # noqa: E731
    rows = [
        ("requests served (answers to valid and bad inputs)",
         f"{s['valid_served'] + s['bad_answered_with_message']} of {s['requests']}"),
        ("valid requests served / failed", f"{s['valid_served']} / **{s['valid_failed']}** of {s['valid_requests']}"),
        ("bad inputs answered with their message / wrongly",
         f"{s['bad_answered_with_message']} / **{s['bad_answered_wrongly']}** of {s['bad_requests']}"),
        ("latency of valid requests, p50 / p95 / max", f"{ms(lat['p50'])} / {ms(lat['p95'])} / {ms(lat['max'])}"),
        ("throughput (all requests; valid served)", f"{s['throughput_rps']:.1f} req/s; "
                                                    f"{s['valid_throughput_rps']:.1f} req/s "
                                                    f"({s['requests']} in {s['elapsed_s']:.1f} s)"),
        ("server RSS after the warm-up request (anonymous part)", f"{m['before']:.0f} MB ({m['before_anon']:.0f} MB)"),
        ("server RSS after all requests (anonymous part)", f"{m['after']:.0f} MB ({m['after_anon']:.0f} MB)"),
        ("growth (anonymous part)", f"**{m['growth']:+.1f} MB** ({m['growth_anon']:+.1f} MB); "
                                    "goal: under 50 MB over 1000 requests"),
        (f"growth from {m['at_tenths'][0]['requests']} requests (10 %) to the end",
         f"{m['growth_after_first_tenth']:+.1f} MB"),
        ("growth over the second half of the requests", f"{m['growth_second_half']:+.1f} MB"),
        ("peak RSS while serving", f"{m['peak']:.0f} MB"),
        ("errors in the server log", f"{len(log['errors'])} (besides {log['gr_error_tracebacks']} tracebacks Gradio "
                                     "prints for the app's own messages)"),
    ]
    lines = [
        "# The app under load",
        "",
        f"`{results['command']}` on {results['machine']['description']}, {results['date']}; load average "
        f"{results['machine']['load_before']:.1f} before, {results['machine']['load_after']:.1f} after.",
        "",
        f"`app.py` (git {app['source']}) on the embedded model ({app['concurrency']} predictions at once, queue of "
        f"{app['queue_size']}), {results['callers']} concurrent `gradio_client` callers x "
        f"{results['requests_per_caller']} requests on `/predict`. Inputs: {results['inputs']}.",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in rows],
        "",
        "Latency is what a caller sees for one `client.predict` (upload, queue, prediction, answer), while "
        f"{results['callers']} callers share {app['concurrency']} prediction slots, so most of it is "
        "queueing. A valid request counts as served only when it gets all 8 emotions, in order, summing to 1, and "
        "the same answer (within 1e-4) as the first request for the same file. RSS is the server process with its "
        "children (psutil); its anonymous part is the heap, the rest mostly pages of shared libraries (torch, FFmpeg) "
        "read in as code runs for the first time; MB are MiB.",
    ]
    if results["machine"]["load_before"] > 1.0 or results["machine"]["load_after"] > 1.0:
        lines += ["", f"**Note:** other work shared the CPU (load average {results['machine']['load_before']:.1f} "
                      "before the run): latency and throughput are upper and lower bounds."]
    if s["problems"]:
        lines += ["", "Problems (first 10):", ""]
        lines += [f"- {p['kind']} `{p['input']}`: {p['outcome']}: {p['detail']}" for p in s["problems"][:10]]
    return "\n".join(lines) + "\n"


def machine() -> dict:
    from importlib.metadata import version

    description = (f"{platform.machine()}, {os.cpu_count()} CPUs "
                   f"({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} usable), "
                   f"Python {platform.python_version()}, gradio {version('gradio')}, "
                   f"gradio_client {version('gradio_client')}")
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "description": description, "load_before": os.getloadavg()[0]}


def app_settings() -> dict:
    """CONCURRENCY, QUEUE_SIZE and MAX_FILE_SIZE from app.py's source, without importing it (and torch) here."""
    import ast

    settings = {}
    for node in ast.parse((ROOT / "app.py").read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("CONCURRENCY", "QUEUE_SIZE", "MAX_FILE_SIZE"):
                settings[name.lower()] = ast.literal_eval(node.value)
    return settings


def run_load(args, url: str, pid: int, plan: list[list[Input]], warm_up: Input) -> dict:
    """Warm up, measure RSS, release the callers, wait for them, measure RSS again."""
    warm_client = new_client(url)
    try:
        outcome, detail, warm_latency = one_request(warm_client, warm_up)
    finally:
        warm_client.close()
    if outcome != "served":
        raise RuntimeError(f"the warm-up request failed: {detail}")
    time.sleep(1.0)
    before, before_anon = rss_mb(pid)
    print(f"warm-up answered in {warm_latency:.2f} s; server RSS {before:.0f} MB; "
          f"{args.callers} callers x {args.requests} requests...", file=sys.stderr)

    recorder = Recorder()
    barrier = threading.Barrier(args.callers + 1)
    threads = [threading.Thread(target=caller, args=(n, url, plan[n], recorder, barrier), daemon=True)
               for n in range(args.callers)]
    for thread in threads:
        thread.start()
    sampler = MemorySampler(pid, recorder.completed)
    barrier.wait()  # every caller has its client: go
    start = time.perf_counter()
    sampler.start()
    total, reported = args.callers * args.requests, 0
    while any(thread.is_alive() for thread in threads):
        time.sleep(0.5)
        done = recorder.completed()
        if done - reported >= max(1, total // 10):
            reported = done
            print(f"  {done}/{total} requests, server RSS {rss_mb(pid)[0]:.0f} MB", file=sys.stderr)
    elapsed = time.perf_counter() - start
    sampler.stop()
    time.sleep(1.0)
    after, after_anon = rss_mb(pid)

    samples = sampler.samples

    def first_at(done_at_least: int) -> tuple[float, float]:
        """RSS and its anonymous part at the first sample when this many requests were done."""
        hits = [(mb, anon) for _, done, mb, anon in samples if done >= done_at_least]
        return hits[0] if hits else (after, after_anon)

    tenths = [{"requests": total * tenth // 10, "rss_mb": round(first_at(total * tenth // 10)[0], 1),
               "anon_mb": round(first_at(total * tenth // 10)[1], 1)} for tenth in range(1, 11)]
    memory = {"before": before, "after": after, "growth": after - before,
              "before_anon": before_anon, "after_anon": after_anon, "growth_anon": after_anon - before_anon,
              "growth_after_first_tenth": after - first_at(total // 10)[0],
              "growth_second_half": after - first_at(total // 2)[0],
              "peak": max([mb for _, _, mb, _ in samples] + [before, after]), "at_tenths": tenths}
    records = sorted(recorder.records, key=lambda r: (r["caller"], r["index"]))
    for record in records:
        record["start"] = None if record["start"] is None else round(record["start"] - start, 4)
    return {"records": records, "elapsed": elapsed, "warm_latency": warm_latency, "memory": memory,
            "samples": [{"t_s": round(t, 2), "requests_done": d, "rss_mb": round(mb, 1), "anon_mb": round(anon, 1)}
                        for t, d, mb, anon in samples]}


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # the client reads it too: no telemetry
    info = machine()
    with tempfile.TemporaryDirectory(prefix="load_test_") as scratch:
        workdir = Path(scratch)
        (workdir / "inputs").mkdir()
        valid, bad = prepare_inputs(workdir / "inputs")
        plan = schedule(args, valid, bad)
        print(f"{len(valid)} valid inputs, {len(bad)} bad ones; starting app.py...", file=sys.stderr)
        try:
            with running_app(workdir=workdir, startup_timeout=args.startup_timeout) as (url, process):
                print(f"app.py serves {url} (pid {process.pid})", file=sys.stderr)
                run = run_load(args, url, process.pid, plan, valid[0])
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        log = server_log(workdir / "app.log")
    info["load_after"] = os.getloadavg()[0]

    kinds = {}
    for item in valid + bad:
        kinds[item.kind] = kinds.get(item.kind, 0) + 1
    summary = summarize(run["records"], run["elapsed"])
    results = {
        "command": command_line(args),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": info,
        "app": {"model": "embedded default model", "source": source_version(), **app_settings()},
        "callers": args.callers,
        "requests_per_caller": args.requests,
        "bad_every": args.bad_every,
        "inputs": (f"{kinds.get('flac', 0)} FLAC fixture clips and the same as {kinds.get('wav', 0)} WAV 16 kHz mono, "
                   f"{kinds.get('wav48k', 0)} WAV 48 kHz stereo and {kinds.get('mp3', 0)} MP3 128 kbit/s"
                   + (f"; every {args.bad_every}th request a bad input, in turn: 3 s of silence, a text file named "
                      ".wav, 5000 random bytes named .wav, a 0.1 s clip" if args.bad_every else "")),
        "warmup_latency_s": run["warm_latency"],
        "summary": summary,
        "memory_mb": run["memory"],
        "server_log": {**log, "errors": log["errors"][:50]},
        "memory_samples": run["samples"][:: max(1, len(run["samples"]) // 200)],
    }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "load.json").write_text(json.dumps(results, indent=1) + "\n")
    table = markdown(results)
    (args.output / "load.md").write_text(table)
    print(table)
    print(f"wrote {args.output / 'load.json'} and {args.output / 'load.md'}", file=sys.stderr)
    return 1 if summary["valid_failed"] or summary["bad_answered_wrongly"] else 0


if __name__ == "__main__":
    sys.exit(main())
