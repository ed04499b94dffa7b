"""copyparty, the peer measured beside sealbox: installed from PyPI into a virtualenv of its
own, once, and reused by later runs.

The environment lives in ``$SEALBOX_BENCH_CACHE`` (default ``~/.cache/sealbox-bench``) as
``copyparty-venv``; remove it to measure a newer release. It is built under a temporary
name and renamed when complete, so an interrupted install is never taken for a finished one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

INSTALL_TIMEOUT = 300


def cache_dir() -> Path:
    configured = os.environ.get("SEALBOX_BENCH_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sealbox-bench"


class NotInstallable(Exception):
    """copyparty could not be installed here; the message says why."""


def _venv() -> Path:
    return cache_dir() / "copyparty-venv"


def installed() -> Path | None:
    """The interpreter of copyparty's virtualenv if it is installed, without installing it."""
    interpreter = _venv() / "bin" / "python"
    return interpreter if _works(interpreter) else None


def python() -> Path:
    """The interpreter of copyparty's virtualenv, creating the environment on first use."""
    venv = _venv()
    interpreter = venv / "bin" / "python"
    if _works(interpreter):
        return interpreter
    shutil.rmtree(venv, ignore_errors=True)
    building = venv.with_name(f"{venv.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.parent.mkdir(parents=True, exist_ok=True)
    try:
        _run([sys.executable, "-m", "venv", str(building)])
        _run([str(building / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              "copyparty"])  # fmt: skip
        building.rename(venv)
    except NotInstallable:
        shutil.rmtree(building, ignore_errors=True)
        raise
    if not _works(interpreter):
        raise NotInstallable(f"the environment in {venv} cannot import copyparty")
    return interpreter


def version(interpreter: Path) -> str:
    result = subprocess.run(
        [str(interpreter), "-c", "from importlib.metadata import version; print(version('copyparty'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def _works(interpreter: Path) -> bool:
    if not interpreter.exists():
        return False
    result = subprocess.run([str(interpreter), "-c", "import copyparty"], capture_output=True, check=False)
    return result.returncode == 0


def _run(cmd: list[str]) -> None:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NotInstallable(f"{cmd[2:4]} failed: {exc}") from exc
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise NotInstallable(f"`{' '.join(cmd[1:4])}` exited with {result.returncode}: {last[0][:200]}")
