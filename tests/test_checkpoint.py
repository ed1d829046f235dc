"""Checkpoints from disk or from strangers: truncated, corrupted, foreign, pickled objects.

Every failure is a one-line AvlocError naming the file; a pickled object is refused
without running; a corrupted byte never loads as silently different weights.
"""

from __future__ import annotations

import errno
import pickle
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import avloc.checkpoint as ck
from avloc.checkpoint import load_model, read_checkpoint, save_checkpoint
from avloc.cli import main
from avloc.config import Config, ModelConfig
from avloc.model import build_model
from avloc.util.errors import AvlocError

CLASSES = ["a", "b", "c"]


def payload(seed: int = 0) -> dict:
    """What `avloc train` writes into best.pt, for a tiny model."""
    torch.manual_seed(seed)
    cfg = Config(model=ModelConfig(d_x=8))
    model = build_model(cfg.model, 5, 6, len(CLASSES))
    return {"config": cfg.to_dict(), "classes": CLASSES, "feature_dims": [5, 6],
            "task": "event", "snippet_seconds": 1.0, "extractors": None,
            "model": model.state_dict(), "epoch": 3}


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_checkpoint(path, payload())
    return path


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A folder the property tests overwrite one file in, example after example."""
    return tmp_path_factory.mktemp("scratch")


def outcome(e: AvlocError) -> str:
    """The kind of refusal, for hypothesis statistics (docs/reliability.md)."""
    text = str(e)
    for kind in ("checksum mismatch", "not a loadable", "not an avloc", "lacks", "NaN/Inf",
                 "version"):
        if kind in text:
            return kind
    return text.split(": ", 1)[-1][:40]


def refused(path: Path, *phrases: str) -> str:
    """read_checkpoint fails with a one-line AvlocError naming `path` and each phrase."""
    with pytest.raises(AvlocError) as err:
        read_checkpoint(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    for phrase in phrases:
        assert phrase in message
    return message


def test_round_trip_is_exact(good):
    ckpt = read_checkpoint(good)
    want = payload()
    assert ckpt["format"] == ck.FORMAT and ckpt["version"] == ck.VERSION
    assert ckpt["checksum"] == ck.payload_checksum(ckpt)
    for name, weight in want["model"].items():
        assert torch.equal(ckpt["model"][name], weight)
    model, cfg, _ = load_model(good)
    assert cfg.model.d_x == 8 and not model.training


@pytest.mark.parametrize("keep", [0, 1, 100, 1000, -200, -22, -1])
def test_truncated_file_is_refused(good, tmp_path, keep):
    data = good.read_bytes()
    bad = tmp_path / "best.pt"
    bad.write_bytes(data[:keep] if keep >= 0 else data[:len(data) + keep])
    refused(bad, "not a loadable avloc checkpoint")


def test_truncated_checkpoint_through_the_cli_is_one_line(good, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(good.read_bytes()[:500])
    assert main(["eval", str(run)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("avloc: error:") and "best.pt" in err[0]


class Innocent:
    """Any class at all: weights_only refuses to build objects it does not know."""

    def __init__(self) -> None:
        self.value = 1


class Payload:
    """Unpickling calls open(MARKER, "w"): a stand-in for code an attacker would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_checkpoint_carrying_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "innocent.pt"
    torch.save({**payload(), "format": ck.FORMAT, "version": 1, "extra": Innocent()}, path)
    refused(path, "not a loadable avloc checkpoint")


def test_pickled_code_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({**payload(), "format": ck.FORMAT, "version": 1, "hook": Payload(marker)}, path)
    refused(path, "not a loadable avloc checkpoint")
    assert not marker.exists()
    with pytest.raises(AvlocError):  # nor through the command line
        load_model(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is live: plain pickle runs it
    assert marker.exists()


def test_plain_pickle_file_is_refused(tmp_path):
    path = tmp_path / "pickle.pt"
    path.write_bytes(pickle.dumps({"format": ck.FORMAT}))
    refused(path, "not a loadable avloc checkpoint")


@pytest.mark.parametrize(
    "content, phrase",
    [
        (torch.zeros(3), "not an avloc checkpoint"),
        ({"model": {}}, "not an avloc checkpoint"),
        ({"format": "other-tool", "version": 1}, "not an avloc checkpoint"),
        ([1, 2, 3], "not an avloc checkpoint"),
    ],
)
def test_foreign_torch_files_are_refused(tmp_path, content, phrase):
    path = tmp_path / "foreign.pt"
    torch.save(content, path)
    refused(path, phrase)


def save_raw(path: Path, body: dict, checksum: bool = True) -> Path:
    """Write a checkpoint dict as given (a valid checksum unless told otherwise)."""
    body = {"format": ck.FORMAT, "version": ck.VERSION, **body}
    if checksum:
        body["checksum"] = ck.payload_checksum(body)
    torch.save(body, path)
    return path


@pytest.mark.parametrize("missing", ["config", "classes", "feature_dims", "model"])
def test_missing_entries_are_named(tmp_path, missing):
    body = {k: v for k, v in payload().items() if k != missing}
    refused(save_raw(tmp_path / "m.pt", body), "lacks", missing)


@pytest.mark.parametrize(
    "key, value, phrase",
    [
        ("feature_dims", [5], "feature_dims"),
        ("feature_dims", [5, -6], "feature_dims"),
        ("feature_dims", ["5", 6], "feature_dims"),
        ("feature_dims", [5, 0], "feature_dims"),  # no visual; [0, 6] (no audio) is fine
        ("feature_dims", [-1, 6], "feature_dims"),
        ("classes", [], "classes"),
        ("classes", [1, 2, 3], "classes"),
        ("config", [], "config"),
        ("model", {"w": [1.0]}, "'model'"),
        ("model", [torch.zeros(2)], "'model'"),
        ("version", 99, "newer avloc"),
        ("version", "2", "version"),
        ("version", 0, "version"),
    ],
)
def test_wrong_types_are_named(tmp_path, key, value, phrase):
    refused(save_raw(tmp_path / "t.pt", {**payload(), key: value}), phrase)


def test_nan_weights_are_refused(tmp_path):
    body = payload()
    name = next(iter(body["model"]))
    body["model"][name] = body["model"][name].clone()
    body["model"][name][0] = float("nan")
    refused(save_raw(tmp_path / "nan.pt", body), "NaN/Inf", name)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.uint8])
def test_weights_of_a_non_float_dtype_are_refused(tmp_path, dtype):
    """load_state_dict would cast them silently into the float parameters."""
    body = payload()
    name = "action_head.weight"
    body["model"][name] = body["model"][name].to(dtype)
    refused(save_raw(tmp_path / "dtype.pt", body), name, str(dtype).removeprefix("torch."))


def test_weights_of_another_shape_are_a_one_line_error(tmp_path):
    body = payload()
    body["feature_dims"] = [7, 6]  # the stored f_u expects 5 audio dims
    path = save_raw(tmp_path / "shape.pt", body)
    with pytest.raises(AvlocError) as err:
        load_model(path)
    assert "\n" not in str(err.value) and "do not fit" in str(err.value)


def test_settings_that_do_not_validate_are_named(tmp_path):
    body = payload()
    body["config"]["model"]["stages"] = -1
    with pytest.raises(AvlocError, match=r"model.stages"):
        load_model(save_raw(tmp_path / "cfg.pt", body))


def test_checksum_mismatch_is_refused(tmp_path):
    body = payload()
    body = {"format": ck.FORMAT, "version": ck.VERSION, **body}
    body["checksum"] = ck.payload_checksum(body)
    body["model"]["action_head.bias"] = body["model"]["action_head.bias"] + 1e-7
    path = tmp_path / "edited.pt"
    torch.save(body, path)
    refused(path, "checksum mismatch")


def test_version_1_files_without_checksum_still_load(tmp_path):
    body = {"format": ck.FORMAT, "version": 1, **payload()}
    torch.save(body, tmp_path / "v1.pt")
    assert read_checkpoint(tmp_path / "v1.pt")["epoch"] == 3


def read_or_refused(path):
    """The checkpoint, or None when refused with the one-line error (counted as an event)."""
    try:
        ckpt = read_checkpoint(path)
    except AvlocError as e:
        assert "\n" not in str(e)
        event(f"refused: {outcome(e)}")
        return None
    event("loaded, identical")
    return ckpt


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), min_size=1,
                     max_size=3))
@example(flips=[(11890, 0)])  # a tensor's stride became 0: the checksum crashed (fixed)
def test_flipped_bytes_never_load_as_different_weights(good, scratch, flips):
    """PyTorch's zip reader skips CRCs: without the checksum 95 % of single-bit flips load
    silently. Now a flip is refused with the one-line error, or it lands in bytes that
    carry no content (zip timestamps, padding) and the loaded checkpoint is identical."""
    blob = bytearray(good.read_bytes())
    for at, bit in flips:
        blob[at % len(blob)] ^= 1 << bit
    path = scratch / "flipped.pt"
    path.write_bytes(bytes(blob))
    ckpt = read_or_refused(path)
    if ckpt is None:
        return
    want = read_checkpoint(good)
    assert ckpt.keys() == want.keys()
    for name, weight in want["model"].items():
        assert torch.equal(ckpt["model"][name], weight)
    assert {k: v for k, v in ckpt.items() if k != "model"} == \
        {k: v for k, v in want.items() if k != "model"}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, 10**6), junk=st.binary(max_size=64))
def test_truncated_or_extended_files_give_the_clean_error(good, scratch, cut, junk):
    """Any prefix of a checkpoint, optionally followed by junk bytes: AvlocError or (for
    junk after a complete zip, which zip readers tolerate) the intact checkpoint."""
    blob = good.read_bytes()
    path = scratch / "cut.pt"
    path.write_bytes(blob[: cut % (len(blob) + 1)] + junk)
    ckpt = read_or_refused(path)
    if ckpt is None:
        return
    assert ckpt["checksum"] == read_checkpoint(good)["checksum"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, payload(0), keep_previous=True)
    before = path.read_bytes()

    def disk_full(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck.torch, "save", disk_full)
    with pytest.raises(AvlocError, match="cannot write checkpoint .No space left on device."):
        save_checkpoint(path, payload(1), keep_previous=True)
    assert path.read_bytes() == before
    assert not (tmp_path / "last.pt.prev").exists()  # nothing rotated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_keep_previous_rotates_only_complete_files(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, payload(0), keep_previous=True)
    save_checkpoint(path, payload(1), keep_previous=True)
    old, new = read_checkpoint(tmp_path / "last.pt.prev"), read_checkpoint(path)
    w0, w1 = payload(0)["model"], payload(1)["model"]
    assert all(torch.equal(old["model"][k], w0[k]) for k in w0)
    assert all(torch.equal(new["model"][k], w1[k]) for k in w1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "last.pt.prev"]


def test_resume_with_every_checkpoint_broken_is_an_error_that_keeps_them(tmp_path, capsys):
    """Both last.pt and last.pt.prev broken: report it, rename nothing, start nothing."""
    from avloc.config import load_config
    from avloc.train import train

    out = tmp_path / "run"
    cfg = load_config("demo", ["model.d_x=8", "data.synth_videos=8", "train.epochs=1",
                               "train.progress=false"])
    train(cfg, None, out)
    for name in ("last.pt", "last.pt.prev"):
        if not (out / name).exists():
            (out / name).write_bytes((out / "last.pt").read_bytes())
        (out / name).write_bytes((out / name).read_bytes()[:300])
    names = sorted(p.name for p in out.iterdir())
    assert main(["train", "--resume", str(out)]) == 1
    captured = capsys.readouterr()
    assert "no loadable checkpoint" in captured.err and len(captured.err.splitlines()) == 1
    assert captured.out.count("warning") == 2  # each one reported
    assert sorted(p.name for p in out.iterdir()) == names


def test_checkpoint_of_other_classes_is_refused_on_resume(tmp_path, capsys):
    from avloc.config import load_config
    from avloc.data.synthetic import make_synthetic
    from avloc.train import resume, train

    out = tmp_path / "run"
    cfg = load_config("demo", ["model.d_x=8", "data.synth_videos=8", "train.epochs=1",
                               "train.progress=false"])
    train(cfg, None, out)
    ds = make_synthetic(cfg.data)
    ds.classes = [f"other{c}" for c in range(len(ds.classes))]
    with pytest.raises(AvlocError, match="class list differs"):
        resume(out, dataset=ds)
