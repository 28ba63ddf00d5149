"""Start `python app.py` on a free localhost port, as a user would: for the load test and the app tests."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(*args: str, env: dict | None = None, workdir: Path,
                startup_timeout: float = 300) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run `python app.py --port PORT *args`, yield (url, process) once the page answers, stop it afterwards.

    Args:
        args: extra command-line arguments for app.py.
        env: extra environment variables. The app's own settings (SER_MODEL, SER_MAX_SECONDS, GRADIO_SERVER_NAME)
            are not inherited from this shell, so the app runs with its defaults unless `env` sets them.
        workdir: folder for the server's log (app.log) and Gradio's temporary upload files (gradio/).
        startup_timeout: seconds to wait for the page before giving up (a loaded machine is slow to import torch).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "app.log"
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("GRADIO_SERVER_NAME", "SER_MODEL", "SER_MAX_SECONDS")}
    environment.update({"GRADIO_TEMP_DIR": str(workdir / "gradio"), "HF_HUB_OFFLINE": "1",
                        "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})})
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), *args],
                                   cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"app.py exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"app.py did not serve {url} in {startup_timeout:g} s:\n"
                                       f"{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
