"""Tables, JSON, ratios and targets from a benchmark run."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench import copyparty, measure
from bench.measure import MIB
from bench.run import Config, Results

SYSTEMS = ["sealbox", "sealbox-s3", "sealbox-pg-s3", "plain", "seed", "nginx", "copyparty", "s3-direct"]
# The ratio columns: each system against its reference, computed within each round.
PAIRS = [("sealbox", "plain"), ("sealbox", "seed"), ("sealbox", "copyparty"), ("sealbox-s3", "s3-direct")]
# Where a baseline lacks a figure, the ratio uses its nearest one: plain has only raw
# uploads, the seed design only multipart ones.
SUBSTITUTES = {"upload_raw": "upload_multipart", "upload_multipart": "upload_raw"}


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    higher_is_better: bool


def size_label(mib: int) -> str:
    return f"{mib // 1024} GiB" if mib >= 1024 and mib % 1024 == 0 else f"{mib} MiB"


def part_label() -> str:
    return size_label(measure.default_part_size() // MIB) if measure.default_part_size() >= MIB else "<1 MiB"


def figures(config: Config) -> list[Figure]:
    out = [Figure("rss_ready", "server peak RSS after start and sign-in", "MiB", False)]
    part = part_label()
    for mib in config.sizes_mib:
        size = size_label(mib)
        out += [
            Figure(f"upload_raw@{mib}", f"upload, raw body, {size}", "MiB/s", True),
            Figure(f"upload_multipart@{mib}", f"upload, multipart, {size}", "MiB/s", True),
            Figure(f"upload_tus@{mib}", f"upload, tus in 8 MiB parts, {size}", "MiB/s", True),
            Figure(f"tus_vs_raw@{mib}", f"tus upload in 8 MiB parts / raw upload, {size}", "×", True),
            Figure(
                f"upload_tus_default@{mib}", f"upload, tus in {part} parts (clients' default), {size}", "MiB/s", True
            ),
            Figure(f"tus_default_vs_raw@{mib}", f"tus upload in {part} parts / raw upload, {size}", "×", True),
            Figure(f"download@{mib}", f"download, {size}", "MiB/s", True),
            Figure(f"ttfb@{mib}", f"download time to first byte, {size}", "ms", False),
            Figure(f"cpu_upload@{mib}", f"server CPU per upload, {size}", "s", False),
            Figure(f"cpu_upload_tus@{mib}", f"server CPU per tus upload, 8 MiB parts, {size}", "s", False),
            Figure(f"cpu_upload_tus_default@{mib}", f"server CPU per tus upload, {part} parts, {size}", "s", False),
            Figure(f"cpu_download@{mib}", f"server CPU per download, {size}", "s", False),
            Figure(f"rss@{mib}", f"server peak RSS, {size}", "MiB", False),
        ]
    range_mib = config.range_size >> 20
    out.append(
        Figure(f"range@{range_mib}", f"range read of the last 1 MiB of {size_label(range_mib)}, median", "ms", False)
    )
    n, c = config.small_n, config.small_c
    for kind in ("upload", "download"):
        out += [
            Figure(f"small_{kind}_rps", f"4 KiB {kind}s, {n} by {c} clients", "req/s", True),
            Figure(f"small_{kind}_p50", f"4 KiB {kind}s, p50", "ms", False),
            Figure(f"small_{kind}_p99", f"4 KiB {kind}s, p99", "ms", False),
        ]
    if measure.default_part_size() == measure.TUS_PATCH:
        # One measurement serves both (see run._measure_tus): show it once.
        out = [f for f in out if "tus_default" not in f.key]
    return out


def _present(values: list[float | None] | None) -> list[float]:
    return [v for v in values or [] if v is not None]


def ratios(results: Results, figure: str, baseline: str, system: str = "sealbox") -> list[float]:
    """system / baseline, computed within each round."""
    ours = results.values.get(figure, {}).get(system, [])
    theirs = results.values.get(figure, {}).get(baseline)
    if not _present(theirs):
        kind, _, size = figure.partition("@")
        if kind in SUBSTITUTES:
            theirs = results.values.get(f"{SUBSTITUTES[kind]}@{size}", {}).get(baseline)
    return [a / b for a, b in zip(ours, theirs or [], strict=False) if a is not None and b]


def summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _fmt(number: float) -> str:
    if number >= 100:
        return f"{number:,.0f}"
    if number >= 10:
        return f"{number:.1f}"
    return f"{number:.2f}"


def _cell(stats: dict[str, float] | None, rounds: int) -> str:
    if stats is None:
        return "—"
    if rounds == 1 or stats["min"] == stats["max"]:
        return _fmt(stats["median"])
    return f"{_fmt(stats['median'])} ({_fmt(stats['min'])}–{_fmt(stats['max'])})"


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from cryptography.hazmat.backends.openssl.backend import backend

    versions = {name: metadata.version(name) for name in ("cryptography", "fastapi", "uvicorn", "sqlalchemy")}
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "memory": _memory(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "openssl": backend.openssl_version_text(),
        **versions,
    }


def _memory() -> str:
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return "unknown"
    return f"{kib / (1 << 20):.0f} GiB"


Check = dict[str, object]


def _check(target: str, value: float | None, goal: str, met: bool | None) -> Check:
    return {"target": target, "measured": value, "goal": goal, "met": met}


def _at_least(target: str, values: list[float], goal: float) -> Check:
    stats = summary(values)
    value = stats["median"] if stats else None
    return _check(target, value, f"≥ {goal}×", None if value is None else value >= goal)


def _at_most(target: str, value: float | None, goal: float, unit: str) -> Check:
    return _check(target, value, f"≤ {goal}{unit}", None if value is None else value <= goal)


def _large(config: Config) -> int:
    """The size the targets speak of: 1 GiB, or the largest size below it."""
    fitting = [s for s in config.sizes_mib if s <= 1024]
    return max(fitting) if fitting else min(config.sizes_mib)


def _peak_rss(config: Config, results: Results, system: str) -> float | None:
    keys = ["rss_ready", *(f"rss@{m}" for m in config.sizes_mib)]
    values = [v for key in keys for v in _present(results.values.get(key, {}).get(system))]
    return max(values, default=None)


def targets(config: Config, results: Results) -> list[Check]:
    """The rows of issue 15's targets table, in its order, each measured in this run."""
    large = _large(config)
    size = size_label(large)
    checks: list[Check] = []
    for key, parts in (("tus", "8 MiB parts"), ("tus_default", f"the clients' default part size ({part_label()})")):
        values = _present(results.values.get(f"{key}_vs_raw@{large}", {}).get("sealbox"))
        checks.append(_at_least(f"tus upload {size} / raw upload, {parts}", values, 0.8))
    c = config.small_c
    checks.append(
        _at_least(f"4 KiB downloads vs plain, {c} clients", ratios(results, "small_download_rps", "plain"), 0.6)
    )
    checks.append(_at_least(f"4 KiB uploads vs plain, {c} clients", ratios(results, "small_upload_rps", "plain"), 0.8))
    versus = [(f"upload_raw@{m}", f"upload {size_label(m)}, raw body") for m in config.sizes_mib]
    versus += [(f"download@{m}", f"download {size_label(m)}") for m in config.sizes_mib]
    versus += [
        ("small_upload_rps", f"4 KiB uploads, {c} clients"),
        ("small_download_rps", f"4 KiB downloads, {c} clients"),
    ]
    for key, label in versus:
        checks.append(_at_least(f"vs copyparty: {label}", ratios(results, key, "copyparty"), 1.0))
    # How sealbox's own clients upload (tus, their default part size) against copyparty's PUT:
    # its resumable uploader speaks a browser protocol the bench does not drive.
    tus = results.values.get(f"upload_tus_default@{large}", {}).get("sealbox", [])
    put = results.values.get(f"upload_raw@{large}", {}).get("copyparty", [])
    values = [a / b for a, b in zip(tus, put, strict=False) if a is not None and b]
    checks.append(_at_least(f"vs copyparty: upload {size}, sealbox's clients (tus) vs its PUT", values, 1.0))
    for m in config.sizes_mib:
        # Lower is better: sealbox's peak over copyparty's must not exceed 1.
        stats = summary(ratios(results, f"rss@{m}", "copyparty"))
        value = stats["median"] if stats else None
        checks.append(_at_most(f"vs copyparty: server peak RSS, {size_label(m)}", value, 1.0, "×"))
    checks.append(_at_least(f"download {size} vs plain", ratios(results, f"download@{large}", "plain"), 0.85))
    for key, label, goal in (("upload_raw", "upload", 0.9), ("download", "download", 0.8)):
        values = ratios(results, f"{key}@{large}", "s3-direct", system="sealbox-s3")
        checks.append(_at_least(f"sealbox-s3 vs s3-direct, {label} {size}", values, goal))
    for system, label in (("sealbox", "SQLite + disk"), ("sealbox-pg-s3", "PostgreSQL + S3")):
        checks.append(_at_most(f"peak RSS, every size, {label}", _peak_rss(config, results, system), 100, " MiB"))
    return checks


def earlier_targets(config: Config, results: Results) -> list[Check]:
    """Targets of earlier issues that still hold and are still checked."""
    large, small = _large(config), min(config.sizes_mib)
    size = size_label(large)
    checks = [
        _at_least(f"upload {size} vs plain", ratios(results, f"upload_raw@{large}", "plain"), 0.9),
        _at_least(f"upload {size} vs seed", ratios(results, f"upload_raw@{large}", "seed"), 10),
        _at_least(f"download {size} vs seed", ratios(results, f"download@{large}", "seed"), 10),
    ]
    rss = {m: summary(_present(results.values.get(f"rss@{m}", {}).get("sealbox"))) for m in (small, large)}
    big, little = rss[large], rss[small]
    if big and little and large != small:
        growth = big["median"] / little["median"]
        checks.append(_at_most(f"peak RSS {size} / peak RSS {size_label(small)}", growth, 1.25, "×"))
    rng = summary(_present(results.values.get(f"range@{config.range_size >> 20}", {}).get("sealbox")))
    value = rng["median"] if rng else None
    checks.append(
        _check("range read of the last 1 MiB, median", value, "< 10 ms", None if value is None else value < 10)
    )
    return checks


def _target_rows(checks: list[Check]) -> list[str]:
    rows = ["| target | measured | goal | met |", "|---|---|---|---|"]
    for check in checks:
        measured = check["measured"]
        met = check["met"]
        shown = "—" if measured is None else _fmt(float(measured))  # type: ignore[arg-type]
        verdict = "—" if met is None else ("met" if met else "**missed**")
        rows.append(f"| {check['target']} | {shown} | {check['goal']} | {verdict} |")
    return rows


def render(config: Config, results: Results) -> tuple[str, dict[str, object]]:
    skipped = [x.split(":")[0] for x in results.skipped]
    shown = [s for s in SYSTEMS if s in config.systems and s not in skipped]
    pairs = [(a, b) for a, b in PAIRS if a in shown and b in shown]
    rows = []
    doc_figures = []
    for fig in figures(config):
        per_system = {s: summary(_present(results.values.get(fig.key, {}).get(s))) for s in shown}
        fig_ratios = {f"{a}/{b}": summary(ratios(results, fig.key, b, system=a)) for a, b in pairs}
        if not any(per_system.values()):
            continue
        doc_figures.append(
            {
                "key": fig.key,
                "label": fig.label,
                "unit": fig.unit,
                "higher_is_better": fig.higher_is_better,
                "values": results.values.get(fig.key, {}),
                "summary": per_system,
                "ratios": fig_ratios,
            }
        )
        cells = [_cell(per_system[s], config.rounds) for s in shown]
        cells += [_cell(ratio, config.rounds) + ("×" if ratio else "") for ratio in fig_ratios.values()]
        rows.append(f"| {fig.label} ({fig.unit}) | " + " | ".join(cells) + " |")
    header = "| figure | " + " | ".join([*shown, *(f"{a}/{b}" for a, b in pairs)]) + " |"
    rule = "|" + "---|" * (1 + len(shown) + len(pairs))
    info = machine()
    interpreter = copyparty.installed() if "copyparty" in shown else None
    if interpreter is not None:
        info["copyparty"] = copyparty.version(interpreter)
    checks = targets(config, results)
    earlier = earlier_targets(config, results)
    versions = f"Python {info['python']}, cryptography {info['cryptography']}, {info['openssl']}"
    if "copyparty" in info:
        versions += f", copyparty {info['copyparty']}"
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {info['cpu']}, {info['cores']} cores, {info['memory']}; "
        f"{versions}.",
        f"{config.rounds} rounds, systems interleaved; median (min–max); ratios computed within each round.",
        "",
        header,
        rule,
        *rows,
    ]
    if results.skipped:
        lines += ["", "Skipped: " + "; ".join(results.skipped) + "."]
    if results.failures:
        lines += ["", "Failures:", *(f"- {f}" for f in results.failures)]
    lines += ["", "Earlier targets, still checked:", "", *_target_rows(earlier)]
    lines += ["", "Targets (issue 15):", "", *_target_rows(checks)]
    document = {
        "machine": info,
        "config": {
            "sizes_mib": config.sizes_mib,
            "rounds": config.rounds,
            "systems": shown,
            "small_n": config.small_n,
            "small_c": config.small_c,
            "range_count": config.range_count,
            "client_part_size": measure.default_part_size(),
        },
        "figures": doc_figures,
        "targets": checks,
        "earlier_targets": earlier,
        "skipped": results.skipped,
        "failures": results.failures,
    }
    return "\n".join(lines) + "\n", document


def write(out: Path, markdown: str, document: dict[str, object]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.md").write_text(markdown)
    (out / "latest.json").write_text(json.dumps(document, indent=2) + "\n")


def update_readme(readme: Path, markdown: str, command: str) -> None:
    text = readme.read_text()
    block = f"<!-- performance: start -->\n`{command}`\n\n{markdown}<!-- performance: end -->"
    new, count = re.subn(
        r"<!-- performance: start -->.*?<!-- performance: end -->", lambda _: block, text, flags=re.DOTALL
    )
    if count != 1:
        raise SystemExit("README.md has no performance block to update")
    readme.write_text(new)
