"""Numbers the docs show, read from the docs together with the commands that print them, so
that a test (tests/test_train.py) and benchmarks/doc_numbers.py can re-run the commands and
compare: a number that drifts from its command fails instead of going stale.

Each `Claim` is the `avloc` commands (argument lists, run in order in one folder) and the
numbers the doc says they print, with a margin each: results differ slightly between CPUs
and thread counts (float sums in another order), never between runs on one machine.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"\d+\.\d+|\d+")


@dataclass
class Claim:
    doc: str  # file, relative to the repository
    what: str
    commands: list[list[str]]  # avloc argument lists, run in order
    numbers: list[float]  # what the doc says, in the order the output prints them
    margins: list[float]  # allowed |doc - measured| per number


def _text(doc: str) -> str:
    return (REPO / doc).read_text(encoding="utf-8")


def _block_after(text: str, marker: str) -> list[str]:
    """The lines of the first fenced block after `marker`, continuations joined."""
    start = text.index("```", text.index(marker))
    body = text[text.index("\n", start) + 1:text.index("```", start + 3)]
    return body.replace("\\\n", " ").splitlines()


def paper_notes_mu() -> Claim:
    """The foreground reliability run of docs/paper-notes.md: `avloc train` + `avloc eval`
    and its four printed lines (accuracy, oracle, mu inside / outside, background found)."""
    lines = _block_after(_text("docs/paper-notes.md"), "Measured on the generated data")
    commands = [shlex.split(line)[1:] for line in lines if line.startswith("avloc ")]
    printed = " ".join(line for line in lines if line.startswith("# "))
    # accuracy, snippets, videos, oracle, mu x2, background snippets labelled background
    numbers = [float(x) for x in NUMBER.findall(printed)]
    return Claim("docs/paper-notes.md", "mu separates events", commands, numbers,
                 [3.0, 0, 0, 0, 0.04, 0.04, 5.0])


def paper_notes_tau() -> list[Claim]:
    """The pseudo-label threshold runs of docs/paper-notes.md, one per value of tau."""
    text = _text("docs/paper-notes.md")
    sentence = text[text.index("Measured on the demo data with"):]
    sentence = sentence[:sentence.index(".\n")]
    train, evaluate = re.findall(r"`(avloc [^`]+)`", sentence)[:2]
    claims = []
    for tau, accuracy in re.findall(r"τ = ([\d.]+) gave ([\d.]+) %", sentence.replace("\n", " ")):
        commands = [shlex.split(c.replace("=T", f"={tau}"))[1:] for c in (train, evaluate)]
        claims.append(Claim("docs/paper-notes.md", f"pseudo_tau {tau}", commands,
                            [float(accuracy)], [3.0]))
    return claims


def readme_parsing_demo() -> dict[str, list[float]]:
    """README's parsing demo table: per variant, its six F-scores (%) and the heard-only and
    seen-only shares (%), as `avloc demo --task parsing` prints them."""
    text = _text("README.md")
    table = text[text.index("| variant | seg. audio"):]
    rows = [line for line in table.splitlines()[2:] if line.startswith("| ")]
    out = {}
    for line in rows[:4]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[cells[0]] = [float(x) for x in NUMBER.findall(" ".join(cells[1:]))]
    return out


def measured(output: str, claim: Claim) -> list[float]:
    """The numbers `output` prints, as many as the claim has, from its first one on."""
    return [float(x) for x in NUMBER.findall(output)][: len(claim.numbers)]


def within(claim: Claim, numbers: list[float]) -> bool:
    return len(numbers) == len(claim.numbers) and all(
        abs(a - b) <= m + 1e-9 for a, b, m in zip(claim.numbers, numbers, claim.margins,
                                                 strict=True))
