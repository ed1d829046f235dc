"""The runs a figure shows: each one's model (with its tuned post-processing), the data it
was trained on, and its outputs on one video."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avloc.util.errors import AvlocError


@dataclass
class LoadedRun:
    label: str
    model: Any  # AVLocModel in eval mode
    cfg: Any  # Config
    ckpt: dict[str, Any]


def run_label(run_dir: Path) -> str:
    """runs/<variant>/seed<k> -> '<variant> (seed k)'; any other folder: its name."""
    run_dir = Path(run_dir)
    if run_dir.name.startswith("seed") and run_dir.name[4:].isdigit():
        return f"{run_dir.parent.name} (seed {run_dir.name[4:]})"
    return run_dir.name


def load_run(run_dir: str | Path) -> LoadedRun:
    """A run's model, with its tuned post-processing (RUN/localize.yaml) when it has one,
    so the predicted segments drawn are those `avloc eval` scores."""
    from avloc.scoring.tuned_model import load_tuned_model

    m = load_tuned_model(run_dir)
    return LoadedRun(run_label(Path(run_dir)), m.model, m.cfg, m.ckpt)


def load_data(run: LoadedRun, data_root: str | Path | None, others: Sequence[LoadedRun] = ()):
    """The dataset the run was trained on (its stored data settings), checked against it."""
    from avloc.checkpoint import check_compatible
    from avloc.data import load_dataset

    ds = load_dataset(run.cfg.data, data_root)
    for r in (run, *others):
        check_compatible(ds, r.ckpt, r.label)
    return ds


def find_video(ds, vid: str) -> tuple[Any, str]:
    for split, videos in ds.splits.items():
        for v in videos:
            if v.vid == vid:
                return v, split
    some = ", ".join(v.vid for v in ds.splits.get("test", [])[:3])
    raise AvlocError(f"video {vid!r}: not in the data (test videos are named like {some})")


def predict_one(run: LoadedRun, video) -> Any:
    from avloc.scoring.predict import predict

    return predict(run.model, [video])[0]
