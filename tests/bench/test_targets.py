"""The targets table: issue 15's rows, computed from a run's figures within each round."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.report import render, targets
from bench.run import Config, Results

from bench import measure

SIZES = [64, 1024]


def config(tmp_path: Path) -> Config:
    systems = ["sealbox", "sealbox-s3", "sealbox-pg-s3", "plain", "copyparty", "s3-direct"]
    return Config(SIZES, 2, systems, 2000, 16, 20, tmp_path)


def results() -> Results:
    """Two rounds of made-up figures whose ratios are easy to check by hand."""
    r = Results()

    def put(figure: str, **per_system: list[float | None]) -> None:
        for system, values in per_system.items():
            for value in values:
                r.add(figure, system.replace("_", "-"), value)

    for mib in SIZES:
        put(f"upload_raw@{mib}", sealbox=[400, 300], plain=[500, 500], copyparty=[400, 200])
        put(f"download@{mib}", sealbox=[900, 800], plain=[1000, 1000], copyparty=[1800, 1600])
        put(f"rss@{mib}", sealbox=[80, 81], sealbox_pg_s3=[90, 120], copyparty=[40, 40])
    put("upload_raw@1024", sealbox_s3=[180, 150], s3_direct=[200, 200])
    put("download@1024", sealbox_s3=[300, 400], s3_direct=[600, 400])
    put("tus_vs_raw@1024", sealbox=[0.7, 0.9])
    put("tus_default_vs_raw@1024", sealbox=[0.5, 0.6])
    put("upload_tus_default@1024", sealbox=[200, 150])
    put("rss_ready", sealbox=[70, 99], sealbox_pg_s3=[95, 96])
    put("small_upload_rps", sealbox=[800, 900], plain=[1000, 1000], copyparty=[800, 1000])
    put("small_download_rps", sealbox=[500, 700], plain=[1000, 1000], copyparty=[1000, 1000])
    return r


def by_name(checks: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(check["target"]): check for check in checks}


def test_targets_are_the_issue_rows_in_its_order(tmp_path: Path) -> None:
    part = measure.default_part_size() >> 20
    names = [str(check["target"]) for check in targets(config(tmp_path), results())]
    assert names == [
        "tus upload 1 GiB / raw upload, 8 MiB parts",
        f"tus upload 1 GiB / raw upload, the clients' default part size ({part} MiB)",
        "4 KiB downloads vs plain, 16 clients",
        "4 KiB uploads vs plain, 16 clients",
        "vs copyparty: upload 64 MiB, raw body",
        "vs copyparty: upload 1 GiB, raw body",
        "vs copyparty: download 64 MiB",
        "vs copyparty: download 1 GiB",
        "vs copyparty: 4 KiB uploads, 16 clients",
        "vs copyparty: 4 KiB downloads, 16 clients",
        "vs copyparty: upload 1 GiB, sealbox's clients (tus) vs its PUT",
        "vs copyparty: server peak RSS, 64 MiB",
        "vs copyparty: server peak RSS, 1 GiB",
        "download 1 GiB vs plain",
        "sealbox-s3 vs s3-direct, upload 1 GiB",
        "sealbox-s3 vs s3-direct, download 1 GiB",
        "peak RSS, every size, SQLite + disk",
        "peak RSS, every size, PostgreSQL + S3",
    ]


@pytest.mark.parametrize(
    ("target", "measured", "met"),
    [
        ("tus upload 1 GiB / raw upload, 8 MiB parts", 0.8, True),  # median of 0.7 and 0.9
        ("4 KiB downloads vs plain, 16 clients", 0.6, True),
        ("4 KiB uploads vs plain, 16 clients", 0.85, True),
        # ratios within each round: 400/400 and 300/200, not 350/300
        ("vs copyparty: upload 1 GiB, raw body", 1.25, True),
        ("vs copyparty: download 1 GiB", 0.5, False),
        ("vs copyparty: 4 KiB uploads, 16 clients", 0.95, False),
        ("vs copyparty: upload 1 GiB, sealbox's clients (tus) vs its PUT", 0.625, False),  # 200/400, 150/200
        ("vs copyparty: server peak RSS, 1 GiB", 2.0125, False),  # lower is better
        ("download 1 GiB vs plain", 0.85, True),
        ("sealbox-s3 vs s3-direct, upload 1 GiB", 0.825, False),
        ("sealbox-s3 vs s3-direct, download 1 GiB", 0.75, False),
        ("peak RSS, every size, SQLite + disk", 99, True),  # the peak after sign-in counts
        ("peak RSS, every size, PostgreSQL + S3", 120, False),  # the highest round, not the median
    ],
)
def test_each_target_is_measured_within_rounds_and_judged(
    tmp_path: Path, target: str, measured: float, met: bool
) -> None:
    check = by_name(targets(config(tmp_path), results()))[target]
    assert check["measured"] == pytest.approx(measured)
    assert check["met"] is met


def test_the_default_part_size_has_its_own_row(tmp_path: Path) -> None:
    checks = targets(config(tmp_path), results())
    default = next(c for c in checks if "default part size" in str(c["target"]))
    assert default["measured"] == pytest.approx(0.55)
    assert default["met"] is False


def test_a_target_without_figures_is_neither_met_nor_missed(tmp_path: Path) -> None:
    partial = results()
    del partial.values["upload_raw@1024"]["s3-direct"]
    check = by_name(targets(config(tmp_path), partial))["sealbox-s3 vs s3-direct, upload 1 GiB"]
    assert check["measured"] is None
    assert check["met"] is None


def test_the_targets_close_the_markdown(tmp_path: Path) -> None:
    r = results()
    r.skipped.append("nginx: not installed")
    markdown, document = render(config(tmp_path), r)
    tail = markdown[markdown.index("Targets (issue 15):") :]
    assert "Skipped" not in tail
    assert "| download 1 GiB vs plain | 0.85 | ≥ 0.85× | met |" in tail
    assert "| sealbox-s3 vs s3-direct, download 1 GiB | 0.75 | ≥ 0.8× | **missed** |" in tail
    assert "| peak RSS, every size, PostgreSQL + S3 | 120 | ≤ 100 MiB | **missed** |" in tail
    assert markdown.rstrip().splitlines()[-1].startswith("| peak RSS, every size, PostgreSQL + S3 |")
    assert "| sealbox/plain | sealbox/copyparty | sealbox-s3/s3-direct |" in markdown
    assert len(document["targets"]) == 18  # type: ignore[arg-type]
