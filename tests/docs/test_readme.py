"""The README's commands stay true: its walkthrough runs against a real server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.server import Installation, Server

README = Path(__file__).parents[2] / "README.md"


def walkthrough() -> str:
    text = README.read_text()
    match = re.search(r"<!-- walkthrough:.*?-->\n```sh\n(.*?)```", text, re.DOTALL)
    assert match, "README.md lost its walkthrough block"
    return match.group(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(Installation(tmp_path_factory.mktemp("readme"))).start()
    yield server
    server.stop()


def test_readme_two_commands_are_the_ones_we_run() -> None:
    text = README.read_text()
    assert "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/sealbox serve" in text
    assert "./scripts/test.sh" in text
    assert "./scripts/test.sh" in (README.parent / ".ci" / "run").read_text()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_walkthrough_runs(server: Server, tmp_path: Path) -> None:
    report = os.urandom(5000)
    (tmp_path / "report.pdf").write_bytes(report)
    script = walkthrough().replace("URL=http://127.0.0.1:8000", f"URL={server.url}")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PASSWORD": server.admin_password or ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "copy.pdf").read_bytes() == report
    assert (tmp_path / "seed-copy.pdf").read_bytes() == report
    assert (tmp_path / "shared-copy.pdf").read_bytes() == report
    assert (tmp_path / "first100.bin").read_bytes() == report[:100]
    for name in ("report.pdf", "report (2).pdf", "report (3).pdf"):
        assert f'"name":"{name}"' in result.stdout
    with zipfile.ZipFile(tmp_path / "reports.zip") as archive:
        assert archive.read("2026/december/report.pdf") == report
    assert result.stdout.rstrip().endswith("204")
