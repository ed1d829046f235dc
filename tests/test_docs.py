"""The docs against the code: every function, module and setting they name exists, and the
numbers they derive are what the code computes (docs/scaling.md's sizes and FLOPs). The
numbers that need a training run are checked by tests/test_train.py
(`test_paper_notes_numbers_are_what_the_command_prints`) and benchmarks/doc_numbers.py."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import avloc
from avloc.config import Config, load_config
from avloc.util.profiling import count_flops

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
NAME = re.compile(r"`((?:avloc\.)?[a-z_][a-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
FILE_ENDINGS = {"txt", "json", "jsonl", "pt", "md", "log", "h5", "npy", "npz", "csv", "yaml",
                "py", "pth", "mp4", "gz", "prev", "bad", "png"}
SETTINGS = {f"{s}.{n}" for s, values in Config().to_dict().items() for n in values}


def _modules() -> dict[str, list[str]]:
    """Short name (as the docs write it: `run_folder`, `checks`, `anet_json`) -> the full
    module names it may stand for."""
    found: dict[str, list[str]] = {}
    for info in pkgutil.walk_packages(avloc.__path__, "avloc."):
        found.setdefault(info.name.rsplit(".", 1)[1], []).append(info.name)
    for full in [m for names in found.values() for m in names]:  # data.checks, train.loop
        parts = full.split(".")[1:]
        for i in range(len(parts) - 1):
            found.setdefault(".".join(parts[i:]), []).append(full)
    return found


MODULES = _modules()


def _resolves(name: str) -> bool:
    """A setting, or a module (written from any of its trailing package names) with the
    named attributes."""
    if name in SETTINGS:
        return True
    parts = name.removeprefix("avloc.").split(".")
    for i in range(len(parts), 0, -1):
        for module in MODULES.get(".".join(parts[:i]), []):
            obj = importlib.import_module(module)
            try:
                for attr in parts[i:]:
                    obj = _attribute(obj, attr)
                return True
            except AttributeError:
                continue
    return False


def _attribute(obj: object, name: str) -> object:
    """getattr, and a dataclass's fields (those with a default factory are no class
    attributes)."""
    if dataclasses.is_dataclass(obj) and name in {f.name for f in dataclasses.fields(obj)}:
        return None
    return getattr(obj, name)


def _named_in_docs() -> list[tuple[str, str]]:
    """(doc, dotted name) for every backticked name whose first part is an avloc module
    or a settings section; file names and other libraries' names are left out."""
    sections = set(Config().to_dict())
    out = []
    for doc in DOCS:
        for name in sorted(set(NAME.findall(doc.read_text(encoding="utf-8")))):
            first = name.removeprefix("avloc.").split(".")[0]
            if name.rsplit(".", 1)[1] in FILE_ENDINGS:
                continue
            if first in MODULES or first in sections:
                out.append((doc.name, name))
    return out


def test_every_function_module_and_setting_the_docs_name_exists() -> None:
    named = _named_in_docs()
    assert len(named) > 100  # the scan finds the docs' references at all
    missing = [f"{doc}: {name}" for doc, name in named if not _resolves(name)]
    assert not missing, "the docs name what the code does not have: " + "; ".join(missing)


def test_a_stale_name_would_be_found() -> None:
    assert not _resolves("data.checks.load_json_strict")  # was in docs/reliability.md
    assert _resolves("data.checks.holdout") and _resolves("runs.layout.RUN_FILES")
    assert _resolves("config.RESUMABLE") and _resolves("data.val_fraction")
    assert not _resolves("data.no_such_setting")


def _doc(name: str) -> str:
    return " ".join((REPO / "docs" / name).read_text(encoding="utf-8").split())


def test_scaling_sizes_and_flops_are_what_the_code_computes() -> None:
    """docs/scaling.md and docs/benchmarks.md: the L x L score matrix of the longest
    video (5,625 snippets) in float32, and a training step's FLOPs at the paper's
    settings (count_flops takes cfg.model, as the docs show it)."""
    scaling, bench = _doc("scaling.md"), _doc("benchmarks.md")
    mib = round(5625**2 * 4 / 2**20)
    assert mib == 121
    assert f"Lambda = X_u-hat^T W X_v-hat is {mib} MiB (5,625² × 4 B)" in scaling
    assert f"soft-max; {mib} MiB each" in bench
    assert "count_flops(cfg.model, audio_dim, visual_dim, num_classes, L, backward=False)" \
        in scaling
    anet, ave = load_config("anet12"), load_config("ave")
    assert (anet.model.d_x, anet.model.stages) == (ave.model.d_x, ave.model.stages) == (1024, 2)
    anet_step = 30 * count_flops(anet.model, 128, 2048, 100, 374, backward=True) / 1e9
    ave_step = 30 * count_flops(ave.model, 128, 2048, 28, 10, backward=True) / 1e9
    assert f"(L = 374) is {anet_step:.0f} GFLOP, one of 30 AVE videos (L = 10) " \
        f"{ave_step:.1f} GFLOP" in scaling
    assert f"{anet_step:.1f} GFLOP per ActivityNet step, {ave_step:.1f} per AVE step" in bench


@pytest.mark.parametrize("doc", ["README.md", "docs/extraction.md"])
def test_one_install_line_for_the_video_extra(doc: str) -> None:
    """From a checkout (avloc is not on PyPI): the line the error message gives."""
    from avloc.extract.weights import VIDEO_INSTALL

    text = (REPO / doc).read_text(encoding="utf-8")
    assert VIDEO_INSTALL in text
    assert "pip install avloc[video]" not in text and 'pip install "avloc[video]"' not in text


def test_the_doc_claims_parse_into_commands_and_numbers() -> None:
    """benchmarks/doc_numbers.py re-runs these; here only that the docs still hold them."""
    from docnumbers import paper_notes_mu, paper_notes_tau

    mu = paper_notes_mu()
    assert [argv[0] for argv in mu.commands] == ["train", "eval"] and len(mu.numbers) == 7
    tau = paper_notes_tau()
    assert [c.what for c in tau] == ["pseudo_tau 0.5", "pseudo_tau 0.7", "pseudo_tau 0.8"]
    assert tau[0].commands[0][-2:] == ["loss.pseudo_tau=0.5", "train.epochs=15"]
    assert all(len(c.numbers) == 1 for c in tau)
