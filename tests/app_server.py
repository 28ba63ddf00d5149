"""Start `python app.py` on a free localhost port for the app and browser tests."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(*args: str, env: dict | None = None, workdir: Path, startup_timeout: float = 300):
    """Run the app as a user would, yield its URL, stop it afterwards.

    Args:
        args: extra command-line arguments for app.py.
        env: extra environment variables.
        workdir: folder for the server's log and Gradio's temporary upload files.
        startup_timeout: seconds to wait for the page before giving up (a loaded CI machine is slow to import torch).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "app.log"
    environment = {**os.environ, "GRADIO_TEMP_DIR": str(workdir / "gradio"), "HF_HUB_OFFLINE": "1",
                   "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    environment.pop("GRADIO_SERVER_NAME", None)
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), *args],
                                   cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"app.py exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"app.py did not serve {url} in {startup_timeout} s:\n{log_path.read_text()}")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
