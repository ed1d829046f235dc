"""Re-run the commands whose output the docs quote, and compare with the quoted numbers.

    .venv/bin/python benchmarks/doc_numbers.py [--only WORD] [--out DIR]

The claims (commands, numbers, margins) are read from the docs by tests/docnumbers.py:
docs/paper-notes.md's foreground-reliability run (also re-run by tests/test_train.py)
and its pseudo-label threshold runs (three 15-epoch runs on the demo data, several
minutes on 2 cores). Each claim's commands run in a fresh folder; the last one's output
is compared with the doc. Prints one line per claim and exits 1 when a number is outside
its margin: then fix the doc (or the code) so that they agree.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from docnumbers import Claim, measured, paper_notes_mu, paper_notes_tau, within  # noqa: E402


def run_claim(claim: Claim, folder: Path) -> list[float]:
    folder.mkdir(parents=True, exist_ok=True)
    output = ""
    for argv in claim.commands:
        done = subprocess.run([sys.executable, "-m", "avloc", *argv], cwd=folder,
                              capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{claim.doc}: {claim.what}: avloc {' '.join(argv)} failed:\n"
                             f"{done.stderr}")
        output = done.stdout
    return measured(output, claim)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="claims whose name contains this (e.g. mu, tau)")
    parser.add_argument("--out", help="folder for the runs (default: a temporary one)")
    args = parser.parse_args()
    claims = [c for c in [paper_notes_mu(), *paper_notes_tau()]
              if not args.only or args.only in c.what]
    root = Path(args.out or tempfile.mkdtemp(prefix="doc-numbers-"))
    bad = 0
    for i, claim in enumerate(claims):
        start = time.perf_counter()
        numbers = run_claim(claim, root / f"claim{i}")
        ok = within(claim, numbers)
        bad += not ok
        print(f"{'ok ' if ok else 'OFF'} {claim.doc}: {claim.what}: doc {claim.numbers}, "
              f"measured {numbers} (margins {claim.margins}; {time.perf_counter() - start:.0f} s)",
              flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
