"""``python -m bench``: see bench/README.md."""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from bench.report import render, update_readme, write
from bench.run import Config, run
from bench.systems import STARTERS, stop_shared

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="sealbox against its baselines, side by side.")
    parser.add_argument("--sizes", default="64,1024", help="file sizes in MiB, comma-separated (default 64,1024)")
    parser.add_argument("--large", action="store_true", help="add a 4 GiB file")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, systems interleaved in each (default 3)")
    parser.add_argument(
        "--systems",
        default="sealbox,sealbox-s3,sealbox-pg-s3,plain,seed,nginx,copyparty,s3-direct",
        help="which systems to run",
    )
    parser.add_argument(
        "--small-n", type=int, default=2000, help="4 KiB uploads and downloads each; 0 skips them (default 2000)"
    )
    parser.add_argument("--small-c", type=int, default=16, help="concurrent clients for small files (default 16)")
    parser.add_argument("--range-count", type=int, default=20, help="range reads per server (default 20)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round: checks the harness works")
    parser.add_argument("--dir", type=Path, default=ROOT / "bench" / ".work", help="scratch space (removed after)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where latest.md/json go")
    parser.add_argument("--readme", action="store_true", help="also put the table in README.md")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.systems.split(",")) - set(STARTERS))
    if unknown:
        parser.error(f"unknown system(s) {', '.join(unknown)}; known: {', '.join(STARTERS)}")
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.large:
        sizes.append(4096)
    if args.quick:
        sizes, args.rounds, args.small_n, args.range_count = [1, 2], 1, 48, 3
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=args.dir))
    config = Config(sizes, args.rounds, args.systems.split(","), args.small_n, args.small_c, args.range_count, work)
    try:
        results = run(config)
    finally:
        stop_shared()
        shutil.rmtree(work, ignore_errors=True)
    markdown, document = render(config, results)
    print(markdown)
    write(args.out, markdown, document)
    if args.readme:
        command = "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:])
        update_readme(ROOT / "README.md", markdown, command.replace(" --readme", "").strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
