"""The benchmark harness keeps working: one quick run on tiny sizes. No timing is asserted."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bench.__main__ import main

ROOT = Path(__file__).parents[2]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the harness drives transfers with curl")
def test_quick_run_writes_tables_with_every_system_and_the_targets(tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out), "--dir", str(tmp_path / "work")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    markdown = (out / "latest.md").read_text()
    document = json.loads((out / "latest.json").read_text())
    systems = document["config"]["systems"]
    assert {"sealbox", "sealbox-s3", "sealbox-pg-s3", "plain", "seed", "s3-direct"} <= set(systems)
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        assert "nginx: not installed" in markdown
    if "copyparty" not in systems:  # only when it cannot be installed, and then it says why
        assert "copyparty: could not be installed from PyPI" in markdown
    assert document["failures"] == [], document["failures"]
    figures = {figure["key"]: figure for figure in document["figures"]}
    keys = ("upload_raw@1", "upload_tus@1", "tus_vs_raw@2", "download@2", "rss@2", "range@2", "small_upload_rps")
    for key in (*keys, "small_download_p99", "rss_ready", "cpu_upload_tus@2"):
        values = figures[key]["values"]["sealbox"]
        assert values
        assert all(v is not None and v > 0 for v in values)
    for system in ("sealbox-pg-s3", "s3-direct", *(["copyparty"] if "copyparty" in systems else [])):
        assert all(v > 0 for v in figures["upload_raw@2"]["values"][system]), system
        assert all(v > 0 for v in figures["download@2"]["values"][system]), system
    assert all(v > 0 for v in figures["rss_ready"]["values"]["sealbox-pg-s3"])
    assert "s3-direct" not in figures["rss@2"]["values"]  # its process is shared: no peak of its own
    assert figures["download@2"]["ratios"]["sealbox/plain"] is not None
    assert figures["upload_multipart@1"]["ratios"]["sealbox/seed"] is not None
    assert figures["download@2"]["ratios"]["sealbox-s3/s3-direct"] is not None
    assert {"cpu", "cores", "python", "cryptography", "openssl"} <= set(document["machine"])
    assert "| figure | sealbox | sealbox-s3 | sealbox-pg-s3 | plain | seed" in markdown
    assert document["config"]["client_part_size"] > 0
    targets = {target["target"]: target for target in document["targets"]}
    assert len(targets) == 18
    if "copyparty" in systems:  # every row has its figures
        assert all(target["measured"] is not None for target in targets.values()), targets
    assert markdown.index("Targets (issue 15):") > markdown.index("Earlier targets")
    assert not list((tmp_path / "work").iterdir()), "scratch space is removed"


def test_an_unknown_system_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--systems", "sealbox,copyprty", "--dir", str(tmp_path / "work")])
    assert exit_info.value.code == 2
    assert "unknown system(s) copyprty; known: sealbox, sealbox-s3, sealbox-pg-s3" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()
