"""Make docs/view-parsing.png and docs/view-event.png, the pictures of `avloc view` for the
parsing and event tasks (docs/view.png, detection, is tools/view_example.py's):

    .venv/bin/python tools/view_tasks_example.py [--work DIR] [--llp ../shared/data/llp]

1. parsing: the `llp_demo` preset on LLP-structured generated data laid on the real LLP
   lists and test events (`--llp`), `avloc eval --out` on its test split, `avloc view`,
   a screenshot of the first test clip with an event heard but not seen;
2. event: the `demo` preset (AVE-like generated data), `avloc eval --out`, `avloc view`,
   a screenshot of one test video (`--event-video`).
Screenshots at 1366 x 900 in Debian's Chromium (Playwright, from the dev extra).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from view_example import avloc, screenshot  # noqa: E402

SIZE = (1366, 900)  # a laptop's screen


def first_heard_only(ground_truth: Path) -> str:
    """The first clip where some event is heard and never seen."""
    for vid, entry in json.loads(ground_truth.read_text())["database"].items():
        heard = {a["label"] for a in entry["annotations"] if a["modality"] == "audio"}
        seen = {a["label"] for a in entry["annotations"] if a["modality"] == "visual"}
        if heard - seen and seen:
            return vid
    raise SystemExit(f"{ground_truth}: no clip with an event heard only")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", help="working folder (default: a new temp folder)")
    ap.add_argument("--llp", default=str(REPO.parent / "shared" / "data" / "llp"),
                    help="the real LLP annotation folder (its lists and test events)")
    ap.add_argument("--event-video", default="test_00002", help="the event test video to show")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="avloc-view-tasks-"))
    avloc("train", "--config", "llp_demo", "--data", args.llp, "--out", str(work / "parse"),
          "train.progress=false")
    avloc("eval", str(work / "parse"), "--split", "test", "--out", str(work / "parse-ev"))
    avloc("view", str(work / "parse-ev"))
    vid = first_heard_only(work / "parse-ev" / "ground_truth.json")
    screenshot(work / "parse-ev" / "view" / "index.html", vid, REPO / "docs" / "view-parsing.png",
               SIZE, seek=False)
    avloc("train", "--config", "demo", "--out", str(work / "event"), "train.progress=false")
    avloc("eval", str(work / "event"), "--split", "test", "--out", str(work / "event-ev"))
    avloc("view", str(work / "event-ev"))
    screenshot(work / "event-ev" / "view" / "index.html", args.event_video,
               REPO / "docs" / "view-event.png", SIZE, seek=False)
    print(f"wrote docs/view-parsing.png and docs/view-event.png (work folder {work})")


if __name__ == "__main__":
    main()
