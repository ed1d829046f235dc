"""`avloc.util.io.load_npy`: W-TALC's pickled .npy files load as NumPy would load them, and a
crafted one cannot run code (issue 15): not through the API, not through `avloc train`."""

from __future__ import annotations

import ast
import builtins
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_data_anet import _objects, _save, write_small_anet

from avloc.config import DataConfig
from avloc.data.anet import ANNOTATION_DIR, VISUAL_FILE, load_anet12
from avloc.util.errors import AvlocError
from avloc.util.io import load_npy

SRC = Path(__file__).resolve().parents[1] / "src" / "avloc"
ANET_FILES = ("classlist", "subset", "videoname", "duration", "segments", "labels", "labels_all",
              "url")


class Payload:
    """Unpickling calls `call(*args)`: what a crafted file would do."""

    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def _same(a, b) -> bool:
    """Deep equality of what two loads returned: arrays (any dtype), lists, bytes, numbers."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.hasobject:
            return all(_same(x, y) for x, y in zip(a.ravel(), b.ravel(), strict=True))
        return np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b, strict=True)))
    return type(a) is type(b) and a == b


def _evil(path: Path, payload: Payload) -> Path:
    """A .npy object array whose second entry runs `payload` when unpickled."""
    _save(path, _objects([b"Archery", payload]))
    return path


@pytest.mark.parametrize("name", ANET_FILES)
def test_real_anet_files_load_as_numpy_loads_them(anet_dir: Path, name: str) -> None:
    path = anet_dir / f"{name}.npy"
    want = np.load(path, allow_pickle=True, encoding="bytes")
    got = load_npy(path)
    assert _same(got, want)
    if name == "segments":  # Python 2 pickles: lists of [start, end] floats
        assert got.dtype == object and isinstance(got[0], list) and got[0] == [[5.46484, 86.71838]]
    if name == "labels":
        assert got[0] == [b"Dodgeball"]


def test_wtalc_style_arrays_written_here_load_identically(tmp_path: Path) -> None:
    feats = _objects([np.arange(12, dtype=np.float32).reshape(3, 4), np.zeros((0, 4)),
                      np.float64(2.5), [[1.0, 2.0]], (b"a", "b"), {"k": 1}, None])
    _save(tmp_path / "f.npy", feats)
    assert _same(load_npy(tmp_path / "f.npy"), np.load(tmp_path / "f.npy", allow_pickle=True))
    plain = np.linspace(0, 1, 7).reshape(7, 1)
    np.save(tmp_path / "plain.npy", plain)
    np.testing.assert_array_equal(load_npy(tmp_path / "plain.npy"), plain)


@pytest.mark.parametrize("payload, refused", [
    (Payload(os.system, "touch MARKER"), f"{os.system.__module__}.system"),
    (Payload(builtins.exec, "open('MARKER', 'w').close()"), "builtins.exec"),
    (Payload(builtins.eval, "open('MARKER', 'w').close()"), "builtins.eval"),
    (Payload(getattr, "x", "upper"), "builtins.getattr"),
    (Payload(np.save, "MARKER.npy", 0), "numpy.save"),
])
def test_crafted_object_array_is_refused_and_runs_nothing(
    tmp_path: Path, monkeypatch, payload: Payload, refused: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = _evil(tmp_path / "classlist.npy", payload)
    with pytest.raises(AvlocError) as err:
        load_npy(path)
    message = str(err.value)
    assert message.startswith(f"{path}: refused to unpickle {refused} ")
    assert "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classlist.npy"]  # no MARKER*


def test_crafted_file_in_a_protocol_4_stream_is_refused(tmp_path: Path) -> None:
    """STACK_GLOBAL with a dotted name (protocol 4) reaches find_class too."""
    stream = pickle.dumps(Payload(os.system, "touch MARKER"), protocol=4)
    header = np.lib.format.header_data_from_array_1_0(np.empty(1, dtype=object))
    with open(tmp_path / "x.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(stream)
    with pytest.raises(AvlocError, match=r"x\.npy: refused to unpickle .*system"):
        load_npy(tmp_path / "x.npy")


def test_pickle_that_is_not_the_announced_array(tmp_path: Path) -> None:
    header = np.lib.format.header_data_from_array_1_0(np.empty(3, dtype=object))
    with open(tmp_path / "x.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        pickle.dump([1, 2, 3], f)
    with pytest.raises(AvlocError, match=r"x\.npy: the pickled data is not the \(3,\) array"):
        load_npy(tmp_path / "x.npy")
    (tmp_path / "x.npy").write_bytes((tmp_path / "x.npy").read_bytes()[:70])  # truncated
    with pytest.raises(AvlocError, match=r"x\.npy: cannot read as \.npy"):
        load_npy(tmp_path / "x.npy")


def test_crafted_annotation_refused_by_the_reader(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    root = write_small_anet(tmp_path / "anet")
    _evil(root / ANNOTATION_DIR / "classlist.npy", Payload(os.system, "touch MARKER"))
    with pytest.raises(AvlocError, match=r"classlist\.npy: refused to unpickle \w+\.system"):
        load_anet12(DataConfig(format="anet12", snippet_seconds=0.64), root)
    assert not (tmp_path / "MARKER").exists()


def test_crafted_feature_file_through_avloc_train(tmp_path: Path) -> None:
    root = write_small_anet(tmp_path / "anet")
    features = np.load(root / VISUAL_FILE, allow_pickle=True)
    features[2] = Payload(os.system, "touch MARKER")  # one video's features
    (root / VISUAL_FILE).unlink()
    _save(root / VISUAL_FILE, features)
    run = subprocess.run(
        [sys.executable, "-m", "avloc", "train", "--config", "anet12", "--data", str(root),
         "--out", str(tmp_path / "run"), "train.epochs=1", "model.d_x=8"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith(f"avloc: error: {root / VISUAL_FILE}: refused to unpickle ")
    assert not (tmp_path / "MARKER").exists() and not (tmp_path / "run").exists()


def test_every_np_load_in_avloc_is_without_pickle() -> None:
    """Besides load_npy's own plain-array read, every np.load passes allow_pickle=False."""
    unsafe = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "load" and getattr(node.func.value, "id", "") in
                    ("np", "numpy")):
                flags = {k.arg: k.value for k in node.keywords}
                no_pickle = flags.get("allow_pickle")
                if not (isinstance(no_pickle, ast.Constant) and no_pickle.value is False):
                    unsafe.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not unsafe, unsafe


def test_codecs_encode_serves_latin1_bytes_only(tmp_path: Path) -> None:
    """Protocol-2 pickles from Python 3 spell bytes as _codecs.encode(str, 'latin1')."""
    arr = _objects([[b"Archery", b"\xe9t\xe9"]])
    with open(tmp_path / "p2.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(arr))
        pickle.dump(arr, f, protocol=2)
    assert b"_codecs" in (tmp_path / "p2.npy").read_bytes()
    assert load_npy(tmp_path / "p2.npy")[0] == [b"Archery", b"\xe9t\xe9"]
    import codecs

    with open(tmp_path / "rot.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(arr))
        pickle.dump(_objects([Payload(codecs.encode, "text", "rot13")]), f, protocol=2)
    with pytest.raises(AvlocError, match=r"rot\.npy: cannot read as \.npy \(ValueError: "
                                         r"_codecs\.encode\(str, 'rot13'\) is not bytes\)"):
        load_npy(tmp_path / "rot.npy")
