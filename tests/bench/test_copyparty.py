"""copyparty, as the bench runs it: installed from PyPI on first use, one account, one volume."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from bench.systems import Running, Unavailable, free_port, start_copyparty

from bench import copyparty


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    try:
        server = start_copyparty(tmp_path, free_port())
    except Unavailable as exc:
        pytest.skip(f"copyparty: {exc}")
    yield server
    server.stop()


def test_copyparty_takes_a_put_and_serves_it_back_to_its_account_only(running: Running, tmp_path: Path) -> None:
    body = os.urandom(100_000)
    put = httpx.put(f"{running.url}/f.bin", content=body, headers=running.headers)
    assert put.status_code == 201, put.text
    assert (tmp_path / "data" / "f.bin").read_bytes() == body  # in the volume, as sent
    assert httpx.get(f"{running.url}/f.bin", headers=running.headers).content == body
    assert httpx.get(f"{running.url}/f.bin").status_code in (401, 403)
    wrong = httpx.put(f"{running.url}/g.bin", content=body, headers={"PW": "wrong"})
    assert wrong.status_code in (401, 403)
    assert not (tmp_path / "data" / "g.bin").exists()
    assert running.proc.pid in running.pids()


def test_copyparty_keeps_its_settings_in_the_scratch_space(running: Running, tmp_path: Path) -> None:
    assert (tmp_path / "config" / "copyparty").is_dir()
    interpreter = copyparty.installed()
    assert interpreter is not None
    assert copyparty.version(interpreter)[0].isdigit()


def test_a_copyparty_that_cannot_be_installed_is_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEALBOX_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # as without network: pip finds nothing
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "nowhere"))
    with pytest.raises(Unavailable, match=r"could not be installed from PyPI \(.*pip install.* exited with 1"):
        start_copyparty(tmp_path / "work", free_port())
    assert copyparty.installed() is None
    assert list((tmp_path / "cache").iterdir()) == []  # no half-built environment is left to be taken for one
