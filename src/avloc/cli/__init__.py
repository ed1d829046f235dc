"""The `avloc` command, in argparse: `build_parser` gathers the commands, `main` runs one.

- cli/runs.py    train, eval, tune, demo, reproduce, plot, localize (train or use a model)
- cli/files.py   score, extract, view, data (results files, videos, datasets; no model)
- cli/flags.py   what their parsers share: the flags several commands take

Each command is declared by `add_<command>(subparsers)` right beside `cmd_<command>(args)`,
which calls one function of the package. Nothing here imports torch: `avloc --help` and
`avloc score` start at once. Errors in the user's input (AvlocError) print as one line
and exit with status 1.
"""

from __future__ import annotations

import argparse
import re
import sys

from avloc import __version__
from avloc.cli import files, runs
from avloc.cli.flags import EPILOG
from avloc.util.errors import AvlocError

OVERRIDE = re.compile(r"[A-Za-z_]\w*\.\w+=.*", re.DOTALL)  # SECTION.NAME=VALUE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avloc", description="Weakly-supervised audio-visual action and event localization.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"avloc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (runs.add_train, runs.add_eval, runs.add_tune, runs.add_demo, files.add_score,
                runs.add_reproduce, runs.add_plot, files.add_extract, runs.add_localize,
                files.add_view, files.add_data):
        add(sub)
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments, with settings (KEY=VALUE) taken anywhere on the line: argparse takes
    positional ones only before the first flag that follows them, so the rest are added
    here, in the order given (a later one wins)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "overrides") or not all(OVERRIDE.fullmatch(x) for x in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        status = args.func(args)
    except AvlocError as e:
        print(f"avloc: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("avloc: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)

