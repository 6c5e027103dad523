"""`goodhart report RUN_DIR [RUN_DIR ...] --out DIR [--title T] [--intro TEXT]`.

Finds every finished run under the given dirs (PPO, best-of-n, train-rm, ORPO, sweeps), writes
DIR/report.html with its PNGs in DIR/report_files/, and prints the report's path. A static
page: open it from the file system. See docs/report.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from goodhartlab.analysis.report import build_report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="goodhart report",
        description="The Goodhart report (report.html) of finished runs: gold and proxy per "
        "method with Gao et al. fits, best-of-n, length analysis, sweeps, ORPO.",
    )
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                   help="run dirs, or dirs holding runs (searched recursively)")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="where report.html is written")
    p.add_argument("--title", default=None, help="page title (default: The Goodhart report)")
    p.add_argument("--intro", default=None, help="a paragraph shown at the top of the page")
    return p


def main(argv: Sequence[str]) -> int:
    """Parse, build, print the path. A GoodhartError (no runs found) goes up to the CLI."""
    import os

    os.environ.setdefault("MPLBACKEND", "Agg")

    args = parser().parse_args(list(argv))
    path = build_report(args.run_dirs, args.out, title=args.title, intro=args.intro)
    print(path)
    return 0
