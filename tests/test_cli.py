"""The `avloc` parser: every command described and handled, choice lists taken from the
modules that own them, and no torch import before a command runs."""

from __future__ import annotations

import argparse
import subprocess
import sys

from avloc.cli import build_parser
from avloc.config import CHOICES
from avloc.data.base import SPLITS
from avloc.extract.backends import AUDIO_BACKENDS, VISUAL_BACKENDS


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = (), func=None):
    """(path, (parser, handler)) of every command that runs, subcommands included; a
    subcommand without a handler of its own runs its parent's."""
    func = parser.get_default("func") or func
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, (parser, func)
    for action in subs:
        for name, sub in action.choices.items():
            yield from commands(sub, (*path, name), func)


def option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(a for a in parser._actions if flag in a.option_strings)


def test_every_command_has_a_description_and_a_handler():
    found = dict(commands(build_parser()))
    assert {p[0] for p in found} == {"train", "eval", "tune", "demo", "score", "reproduce",
                                     "plot", "extract", "localize", "view", "data"}
    for path, (parser, func) in found.items():
        assert parser.description and callable(func), path


def test_choices_come_from_the_modules_that_own_them():
    found = {path: parser for path, (parser, _) in commands(build_parser())}
    for path in (("extract",), ("localize",)):
        assert option(found[path], "--audio-backend").choices == AUDIO_BACKENDS
        assert option(found[path], "--visual-backend").choices == VISUAL_BACKENDS
    assert option(found[("eval",)], "--split").choices == SPLITS
    for path in (("eval",), ("score",)):
        assert option(found[path], "--ties").choices == CHOICES["eval.ties"]
    assert option(found[("data", "convert")], "--format").choices == CHOICES["data.format"]


def test_the_parser_needs_no_torch():
    code = "import sys, avloc.cli; avloc.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_settings_are_taken_anywhere_on_the_line_in_order():
    from avloc.cli import parse

    args = parse(["train", "model.stages=1", "--data", "D", "--out", "O", "train.progress=false",
                  "--config", "anet12", "model.stages=0"])
    assert args.config == "anet12" and args.out == "O"
    assert args.overrides == ["model.stages=1", "train.progress=false", "model.stages=0"]


def test_unknown_arguments_are_still_refused_and_version_is_printed(capsys):
    import pytest

    from avloc.cli import main, parse

    for argv in (["train", "--out", "O", "--bogus"], ["score", "a", "b", "x.y=1"]):
        with pytest.raises(SystemExit) as stop:
            parse(argv)
        assert stop.value.code == 2
        assert "unrecognized arguments" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    from avloc import __version__

    assert capsys.readouterr().out.strip() == f"avloc {__version__}"
