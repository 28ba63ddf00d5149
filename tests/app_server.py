"""The app as the app and browser tests start it: `bench.app_server`, yielding only the URL."""

from contextlib import contextmanager
from pathlib import Path

from bench.app_server import ROOT, running_app as _running_app

__all__ = ["ROOT", "running_app"]


@contextmanager
def running_app(*args: str, env: dict | None = None, workdir: Path, startup_timeout: float = 300):
    """Run the app as a user would (see `bench.app_server.running_app`), yield its URL, stop it afterwards."""
    with _running_app(*args, env=env, workdir=workdir, startup_timeout=startup_timeout) as (url, _):
        yield url
