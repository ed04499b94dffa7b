"""The benchmark harness keeps working: one quick run on tiny sizes. No timing is asserted."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the harness drives transfers with curl")
def test_quick_run_writes_tables_with_every_system(tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out), "--dir", str(tmp_path / "work")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    markdown = (out / "latest.md").read_text()
    document = json.loads((out / "latest.json").read_text())
    systems = document["config"]["systems"]
    assert {"sealbox", "sealbox-s3", "plain", "seed"} <= set(systems)
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        assert "nginx: not installed" in markdown
    assert document["failures"] == [], document["failures"]
    figures = {figure["key"]: figure for figure in document["figures"]}
    keys = ("upload_raw@1", "upload_tus@1", "tus_vs_raw@2", "download@2", "rss@2", "range@2", "small_upload_rps")
    for key in (*keys, "small_download_p99"):
        values = figures[key]["values"]["sealbox"]
        assert values
        assert all(v is not None and v > 0 for v in values)
    assert figures["download@2"]["ratios"]["plain"] is not None
    assert figures["upload_multipart@1"]["ratios"]["seed"] is not None
    assert {"cpu", "cores", "python", "cryptography", "openssl"} <= set(document["machine"])
    assert "| figure | sealbox | sealbox-s3 | plain | seed" in markdown
    assert figures["download@2"]["values"]["sealbox-s3"]
    assert len(document["targets"]) == 10
    assert any(target["target"].startswith("tus upload") for target in document["targets"])
    assert not list((tmp_path / "work").iterdir()), "scratch space is removed"
