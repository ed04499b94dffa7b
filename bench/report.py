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

from bench.run import Config, Results

SYSTEMS = ["sealbox", "sealbox-s3", "plain", "seed", "nginx"]
BASELINES = ["plain", "seed"]
# Where a baseline lacks a figure, the ratio uses its nearest one: plain has only raw
# uploads, the seed design only multipart ones.
SUBSTITUTES = {"upload_raw": "upload_multipart", "upload_multipart": "upload_raw"}


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    higher_is_better: bool


def figures(config: Config) -> list[Figure]:
    out = []
    for mib in config.sizes_mib:
        size = f"{mib // 1024} GiB" if mib >= 1024 else f"{mib} MiB"
        out += [
            Figure(f"upload_raw@{mib}", f"upload, raw body, {size}", "MiB/s", True),
            Figure(f"upload_multipart@{mib}", f"upload, multipart, {size}", "MiB/s", True),
            Figure(f"upload_tus@{mib}", f"upload, tus in 8 MiB PATCHes, {size}", "MiB/s", True),
            Figure(f"tus_vs_raw@{mib}", f"tus upload / raw upload of the same server, {size}", "×", True),
            Figure(f"download@{mib}", f"download, {size}", "MiB/s", True),
            Figure(f"ttfb@{mib}", f"download time to first byte, {size}", "ms", False),
            Figure(f"cpu_upload@{mib}", f"server CPU per upload, {size}", "s", False),
            Figure(f"cpu_download@{mib}", f"server CPU per download, {size}", "s", False),
            Figure(f"rss@{mib}", f"server peak RSS, {size}", "MiB", False),
        ]
    range_mib = config.range_size >> 20
    range_label = f"{range_mib // 1024} GiB" if range_mib >= 1024 else f"{range_mib} MiB"
    out.append(Figure(f"range@{range_mib}", f"range read of the last 1 MiB of {range_label}, median", "ms", False))
    n, c = config.small_n, config.small_c
    for kind in ("upload", "download"):
        out += [
            Figure(f"small_{kind}_rps", f"4 KiB {kind}s, {n} by {c} clients", "req/s", True),
            Figure(f"small_{kind}_p50", f"4 KiB {kind}s, p50", "ms", False),
            Figure(f"small_{kind}_p99", f"4 KiB {kind}s, p99", "ms", False),
        ]
    return out


def _present(values: list[float | None] | None) -> list[float]:
    return [v for v in values or [] if v is not None]


def ratios(results: Results, figure: str, baseline: str) -> list[float]:
    """sealbox / baseline, computed within each round."""
    ours = results.values.get(figure, {}).get("sealbox", [])
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


def targets(config: Config, results: Results) -> list[dict[str, object]]:
    large = (
        max(s for s in config.sizes_mib if s <= 1024)
        if any(s <= 1024 for s in config.sizes_mib)
        else config.sizes_mib[0]
    )
    small = min(config.sizes_mib)
    checks: list[tuple[str, float | None, str, bool | None]] = []

    def ratio_check(label: str, figure: str, baseline: str, at_least: float) -> None:
        stats = summary(ratios(results, figure, baseline))
        value = stats["median"] if stats else None
        checks.append((label, value, f"≥ {at_least}×", None if value is None else value >= at_least))

    ratio_check(f"upload {large} MiB vs plain", f"upload_raw@{large}", "plain", 0.9)
    ratio_check(f"download {large} MiB vs plain", f"download@{large}", "plain", 0.9)
    tus = summary(_present(results.values.get(f"tus_vs_raw@{large}", {}).get("sealbox")))
    value = tus["median"] if tus else None
    checks.append((f"tus upload {large} MiB vs raw upload", value, "≥ 0.8×", None if value is None else value >= 0.8))
    ratio_check(f"upload {large} MiB vs seed", f"upload_raw@{large}", "seed", 10)
    ratio_check(f"download {large} MiB vs seed", f"download@{large}", "seed", 10)
    rss = {m: summary(_present(results.values.get(f"rss@{m}", {}).get("sealbox"))) for m in config.sizes_mib}
    peak = max((s["max"] for s in rss.values() if s), default=None)
    checks.append(("sealbox peak RSS, every size", peak, "≤ 100 MiB", None if peak is None else peak <= 100))
    if rss.get(large) and rss.get(small):
        growth = rss[large]["median"] / rss[small]["median"]  # type: ignore[index]
        checks.append((f"RSS {large} MiB / RSS {small} MiB", growth, "≤ 1.25×", growth <= 1.25))
    rng = summary(_present(results.values.get(f"range@{config.range_size >> 20}", {}).get("sealbox")))
    value = rng["median"] if rng else None
    checks.append(("range read of the last 1 MiB, median", value, "< 10 ms", None if value is None else value < 10))
    ratio_check("small uploads vs plain (req/s)", "small_upload_rps", "plain", 0.6)
    ratio_check("small downloads vs plain (req/s)", "small_download_rps", "plain", 0.8)
    return [{"target": t, "measured": v, "goal": g, "met": m} for t, v, g, m in checks]


def render(config: Config, results: Results) -> tuple[str, dict[str, object]]:
    shown = [s for s in SYSTEMS if s in config.systems and s not in [x.split(":")[0] for x in results.skipped]]
    rows = []
    doc_figures = []
    for fig in figures(config):
        per_system = {s: summary(_present(results.values.get(fig.key, {}).get(s))) for s in shown}
        fig_ratios = {b: summary(ratios(results, fig.key, b)) for b in BASELINES if b in shown}
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
        cells += [
            _cell(fig_ratios.get(b), config.rounds) + ("×" if fig_ratios.get(b) else "")
            for b in BASELINES
            if b in shown
        ]
        rows.append(f"| {fig.label} ({fig.unit}) | " + " | ".join(cells) + " |")
    header = (
        "| figure | " + " | ".join(shown) + " | " + " | ".join(f"sealbox/{b}" for b in BASELINES if b in shown) + " |"
    )
    rule = "|" + "---|" * (1 + len(shown) + len([b for b in BASELINES if b in shown]))
    info = machine()
    checks = targets(config, results)
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {info['cpu']}, {info['cores']} cores, {info['memory']}; "
        f"Python {info['python']}, cryptography {info['cryptography']}, {info['openssl']}.",
        f"{config.rounds} rounds, systems interleaved; median (min–max); ratios computed within each round.",
        "",
        header,
        rule,
        *rows,
        "",
        "| target | measured | goal | met |",
        "|---|---|---|---|",
        *(
            f"| {c['target']} | {'—' if c['measured'] is None else _fmt(float(c['measured']))} | {c['goal']} | "  # type: ignore[arg-type]
            f"{'—' if c['met'] is None else ('yes' if c['met'] else '**no**')} |"
            for c in checks
        ),
    ]
    if results.skipped:
        lines += ["", "Skipped: " + "; ".join(results.skipped) + "."]
    if results.failures:
        lines += ["", "Failures:", *(f"- {f}" for f in results.failures)]
    document = {
        "machine": info,
        "config": {
            "sizes_mib": config.sizes_mib,
            "rounds": config.rounds,
            "systems": shown,
            "small_n": config.small_n,
            "small_c": config.small_c,
            "range_count": config.range_count,
        },
        "figures": doc_figures,
        "targets": checks,
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
