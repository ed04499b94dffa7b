"""docs/sdk.md: its examples run, as written, against a real server."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.server import Installation, Server

DOC = Path(__file__).parents[2] / "docs" / "sdk.md"


def block(marker: str) -> str:
    match = re.search(rf"<!-- {marker}:.*?-->\n```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert match, f"docs/sdk.md lost its {marker} block"
    return match.group(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(Installation(tmp_path_factory.mktemp("sdk-guide"))).start()
    yield server
    server.stop()


def run(server: Server, code: str, where: Path) -> str:
    program = f"URL = {server.url!r}\nPASSWORD = {server.admin_password!r}\n" + code
    done = subprocess.run([sys.executable, "-c", program], cwd=where, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_blocking_example(server: Server, tmp_path: Path) -> None:
    output = run(server, block("sdk-example"), tmp_path)
    assert "uploaded report.pdf: 2600000 bytes" in output
    assert f"share this: {server.url}/s/" in output
    assert "second download refused: this link's download limit has been reached" in output
    assert (tmp_path / "copy.pdf").read_bytes() == (tmp_path / "report.pdf").read_bytes()


def test_async_example(server: Server, tmp_path: Path) -> None:
    output = run(server, block("sdk-async-example"), tmp_path)
    assert output.strip() == "4194304 True"
    assert (tmp_path / "generated-copy.bin").read_bytes() == b"".join(bytes([n]) * 65536 for n in range(64))


def test_tree_example(server: Server, tmp_path: Path) -> None:
    output = run(server, block("sdk-tree-example"), tmp_path)
    assert output.splitlines() == [
        "uploaded 3 files, 24000 bytes",
        "again: 3 skipped",
        "['day 0', 'day 1', 'day 2']",
        "downloaded 3 files",
    ]
    for n in range(3):
        assert (tmp_path / "received" / f"day {n}" / "photo.jpg").read_bytes() == b"JPEG" * 1000 * (n + 1)
    with zipfile.ZipFile(tmp_path / "trip.zip") as archive:
        assert sorted(n for n in archive.namelist() if not n.endswith("/")) == [f"day {n}/photo.jpg" for n in range(3)]
