"""What the commands' parsers share: `command` (a subcommand described by its handler's
docstring) and one helper per flag that several commands take (`flags.out(p, text)` adds
--out, ...), with choice lists from the modules that own them.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import Any

from avloc.config import CHOICES, preset_names
from avloc.extract.backends import (
    AUDIO_BACKENDS,
    DEFAULT_AUDIO,
    DEFAULT_VISUAL,
    DIMS,
    VISUAL_BACKENDS,
)
from avloc.extract.weights import WEIGHT_FILES, WEIGHTS_ENV

# what ArgumentParser.add_subparsers returns: its class is private to argparse, so only
# what the commands use of it is named here
Commands = Any
PRESETS = ", ".join(preset_names())
EPILOG = f"""examples:
  avloc demo                                        # train + compare on the embedded data
  avloc train --config ave --data AVE_DIR --out runs/ave
  avloc train --config ave --data AVE_DIR --out runs/ave1 model.stages=1 loss.gamma=0
  avloc train --resume runs/ave                     # continue an interrupted run
  avloc eval runs/ave --data AVE_DIR --split test --json metrics.json
  avloc reproduce --grid table1 --config ave --data AVE_DIR   # paper's Table 1, 3 seeds, report
presets: {PRESETS} (or a YAML file)
settings: SECTION.NAME=VALUE, anywhere on the line (sections data, model, loss, train,
localize, eval; each setting with its meaning: src/avloc/config/sections.py; why each
default is what it is: docs/paper-notes.md)"""


def command(sub: Commands, name: str, summary: str, run: Callable[[argparse.Namespace], Any] | str,
            epilog: str | None = None) -> argparse.ArgumentParser:
    """A subcommand that calls `run`, whose docstring is the command's description (or a
    description, for a command whose subcommands run). An epilog is printed as written."""
    text = run if isinstance(run, str) else inspect.cleandoc(run.__doc__ or "")
    raw = {"formatter_class": argparse.RawDescriptionHelpFormatter} if epilog else {}
    p = sub.add_parser(name, help=summary, description=text, epilog=epilog, **raw)
    if not isinstance(run, str):
        p.set_defaults(func=run)
    return p


def out(p: argparse.ArgumentParser, text: str, default: str | None = None,
             required: bool = False) -> None:
    p.add_argument("--out", default=default, required=required, help=text)


def data(p: argparse.ArgumentParser,
              text: str = "dataset folder (not needed for the synthetic demo data)",
              required: bool = False) -> None:
    p.add_argument("--data", required=required, help=text)


def overrides(p: argparse.ArgumentParser, text: str = "setting overrides") -> None:
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=text)


def shard(p: argparse.ArgumentParser, items: str, extra: str = "") -> None:
    """--shard I/N, counted from 1 in every command (avloc.util.sharding)."""
    p.add_argument("--shard", metavar="I/N", help=f"only the I-th of N shares of the {items}, "
                   f"counted from 1 (e.g. 2/4, the second of four; for cluster array jobs){extra}")


def json_out(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", help=f"write the metrics here ({what})")


def ties(p: argparse.ArgumentParser, text: str, default: str | None = None) -> None:
    p.add_argument("--ties", default=default, choices=CHOICES["eval.ties"], help=text)


def video(f: argparse.ArgumentParser, image: str) -> None:
    """The data, the video and the image file of a one-video figure."""
    data(f)
    f.add_argument("--video", help="video id (default: the test video the model localizes best)")
    out(f, f"image file to write (default {image})", default=image)


def untuned(p: argparse.ArgumentParser) -> None:
    p.add_argument("--untuned", action="store_true", help="no tuned thresholds, applied or "
                   "reported: action models ignore RUN/localize.yaml (avloc tune), parsing "
                   "models the thresholds tuned on validation; the checkpoint's own localize.*")


def weights_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", metavar="DIR", help=f"folder of the weight files (default "
                   f"${WEIGHTS_ENV}): the back-ends' and the release protocols' files, named "
                   "in `avloc extract --help` and docs/extraction.md")


def backends(p: argparse.ArgumentParser, recorded: bool) -> None:
    """--audio-backend, --visual-backend and their weight files. `recorded`: the checkpoint
    names the back-ends (avloc localize), so a name given here is only checked against it."""
    for kind, names, default in (("audio", AUDIO_BACKENDS, DEFAULT_AUDIO),
                                 ("visual", VISUAL_BACKENDS, DEFAULT_VISUAL)):
        kinds = [f"{n} ({DIMS[n]}-d, " + ("bundled weights; the default)" if n == default else
                                         f"the paper's; needs --{kind}-weights)"
                                         if n in WEIGHT_FILES else "a diagnostic)")
                 for n in names]
        text = ("must match the checkpoint's (checked)" if recorded else ", ".join(kinds))
        # no default in the parser: a flag not given reads None (extract checks it against
        # --protocol, localize against the checkpoint) and extract then takes `default`
        p.add_argument(f"--{kind}-backend", choices=names, help=text)
        needs = [n for n in names if n in WEIGHT_FILES]
        p.add_argument(f"--{kind}-weights", help=f"weight file for {', '.join(needs)} (else "
                       f"${WEIGHTS_ENV}/{', '.join(WEIGHT_FILES[n] for n in needs)})")
