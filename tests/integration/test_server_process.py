"""The process that ``sealbox serve`` becomes: what it loads and how it allocates
(docs/deploy.md, "Sizing"). Memory itself is measured by bench, not asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.integration.server import Installation, Server


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_served_process_limits_malloc_arenas_and_serves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    server = Server(Installation(tmp_path)).start()
    try:
        assert server.proc is not None
        assert _environ(server.proc.pid).get("MALLOC_ARENA_MAX") == "2"
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        server.stop()


def test_an_operators_malloc_arena_setting_is_kept(tmp_path: Path) -> None:
    server = Server(Installation(tmp_path, extra_env={"MALLOC_ARENA_MAX": "4"})).start()
    try:
        assert server.proc is not None
        assert _environ(server.proc.pid).get("MALLOC_ARENA_MAX") == "4"
    finally:
        server.stop()


def test_server_entry_builds_the_app_without_the_cli_console_library() -> None:
    # The same imports as a worker of ``sealbox serve``: the server module first, then
    # the app. structlog must work without rich, and nothing the server needs may want it.
    code = (
        "import sys, sealbox.api.server, sealbox.api.app, sealbox.api.protocol, uvicorn.main\n"
        "print(sys.modules.get('rich') is None, 'pygments' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["True", "False"], out.stderr
