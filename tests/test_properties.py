"""Property-based tests (hypothesis) of the dataset readers and the evaluator.

Two properties, for every reader (generic .npz + JSON, AVE HDF5, ActivityNet 1.2 .npy) and
for the evaluator (ActivityNet JSON files, mAP, snippet accuracy, thresholding):
- random valid inputs never crash and read back what was written;
- random corruptions of a valid input (truncation, flipped bytes, wrong dtypes, NaN/Inf,
  missing keys, wrong types) give the one-line AvlocError, never another exception and
  never a hang (each example runs under an alarm). A corruption that leaves the input
  valid (a flipped bit inside a float, an optional key removed) may load; one that
  cannot be valid (truncation, NaN, a required key removed) must be refused.

Example counts are set per test (`settings(max_examples=...)`); docs/reliability.md
records them and the outcomes (`pytest --hypothesis-show-statistics` prints the events).
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import signal
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from avloc.cli import main
from avloc.config import DataConfig, LocalizeConfig
from avloc.data import load_dataset
from avloc.scoring.anet_json import parse_ground_truth, read_ground_truth, read_predictions
from avloc.scoring.metrics import detection_map, oracle_accuracy, score_files, snippet_accuracy
from avloc.scoring.segments import segments_from_cas, video_class_scores
from avloc.util.errors import AvlocError

# derandomize: the same examples every run, so a failure reproduces; no "explain" phase
# (minutes of re-running a failing example to annotate it)
# the complex-features case warns before it loads (finding 3)
pytestmark = pytest.mark.filterwarnings("ignore:Casting complex values")
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
                database=None, phases=[Phase.explicit, Phase.generate, Phase.shrink])
HANG_SECONDS = 20


def open_finding(number: int, what: str):
    """A bug these tests found in a module owned by someone else, not fixed yet
    (docs/reliability.md, "Open findings"). strict: the fix makes the test XPASS, which
    fails the suite until this mark is removed."""
    return pytest.mark.xfail(strict=True, reason=f"open finding {number}: {what}")


def with_findings(values: list[str], findings: dict[str, Any]) -> list:
    """pytest.param for each value, marked with its open finding when it has one."""
    return [pytest.param(v, marks=findings[v]) if v in findings else v for v in values]


# ---- the harness ------------------------------------------------------------------------
class Hang(Exception):
    pass


@contextmanager
def no_hang(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Fail the example (instead of the whole suite) when reading takes forever."""

    def alarm(signum, frame):  # noqa: ARG001
        raise Hang(f"no answer in {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# Open findings (docs/reliability.md) that random examples can run into: the exception
# types and the module they come from. A random test counts such an example as "known
# finding N" instead of failing, so it still catches anything new; each finding keeps
# its own strict-xfail reproducer below (test_open_finding_reproducers and the exhaustive
# tests). Remove an entry when its finding is fixed.
KNOWN_FINDINGS: list[tuple[int, tuple[type[Exception], ...], str]] = []  # all fixed


def known_finding(e: Exception) -> int | None:
    files = [frame.filename for frame in traceback.extract_tb(e.__traceback__)]
    for number, types, module in KNOWN_FINDINGS:
        if isinstance(e, types) and any(f.endswith(module) for f in files):
            return number
    return None


def attempt(fn: Callable[[], Any], known: bool = False) -> tuple[str, Any]:
    """("ok", result) or ("error", message); with `known`, ("known finding N", text) for
    an exception of an open finding. Any other exception fails the test as it is."""
    with no_hang():
        try:
            return "ok", fn()
        except AvlocError as e:
            message = str(e)
        except Exception as e:
            number = known_finding(e) if known else None
            if number is None:
                raise
            return f"known finding {number}", str(e)
    assert message and "\n" not in message, f"not a one-line message: {message!r}"
    return "error", message


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties")


@contextmanager
def fresh_dir(scratch: Path) -> Iterator[Path]:
    """A new folder per example (hypothesis reruns the body many times per test)."""
    d = Path(tempfile.mkdtemp(dir=scratch))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def flip_bytes(path: Path, flips: list[tuple[int, int]]) -> None:
    blob = bytearray(path.read_bytes())
    for at, bit in flips:
        blob[at % len(blob)] ^= 1 << bit
    path.write_bytes(bytes(blob))


def truncate(path: Path, fraction: float) -> None:
    blob = path.read_bytes()
    path.write_bytes(blob[: int(len(blob) * fraction)])  # strictly shorter: fraction < 1


# byte positions: file headers (first 128), trailers (last 256: zip central directory,
# HDF5 metadata written last) and anywhere; negative positions count from the end
FLIPS = st.lists(st.tuples(st.one_of(st.integers(0, 127), st.integers(-256, -1),
                                     st.integers(0, 10**7)), st.integers(0, 7)),
                 min_size=1, max_size=4)
FRACTION = st.floats(0.0, 0.999)
JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.lists(st.integers(0, 3), max_size=3), st.dictionaries(st.text(max_size=3),
                                                             st.integers(), max_size=2),
)


def json_slots(doc: Any, path: tuple = ()) -> list[tuple]:
    """Every (path to a value) inside a JSON document, for picking one to break."""
    out = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) \
        else []
    for key, value in items:
        out.append((*path, key))
        out.extend(json_slots(value, (*path, key)))
    return out


def at(doc: Any, path: tuple) -> tuple[Any, Any]:
    """(container, key) of the value at `path`."""
    for key in path[:-1]:
        doc = doc[key]
    return doc, path[-1]


# ---- generic layout: .npz per video + ActivityNet JSON ------------------------------------
CLASSES = ["jump", "run", "swim"]


@st.composite
def generic_specs(draw) -> dict[str, Any]:
    """A valid generic dataset: JSON document and per-video features."""
    da, dv = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    dtype = draw(st.sampled_from(["float16", "float32", "float64"]))
    n = draw(st.integers(1, 5))
    database, features = {}, {}
    for i in range(n):
        duration = draw(st.integers(2, 40)) / 2  # seconds, on a 0.5 s grid
        segments = []
        for _ in range(draw(st.integers(0, 3))):
            a, b = sorted(draw(st.floats(0, duration)) for _ in range(2))
            segments.append({"segment": [a, b], "label": draw(st.sampled_from(CLASSES))})
        vid = f"v{i}"
        database[vid] = {"subset": draw(st.sampled_from(["training", "validation", "testing"])),
                         "duration": duration, "annotations": segments}
        t = max(1, round(duration))  # 1 s snippets
        rng = np.random.default_rng(i)
        features[vid] = {"audio": rng.standard_normal((t, da)).astype(dtype),
                         "visual": rng.standard_normal((t, dv)).astype(dtype)}
    return {"doc": {"version": "test", "classes": list(CLASSES), "database": database},
            "features": features}


def write_generic(root: Path, spec: dict[str, Any]) -> Path:
    (root / "features").mkdir(parents=True)
    (root / "annotations.json").write_text(json.dumps(spec["doc"]))
    for vid, arrays in spec["features"].items():
        np.savez(root / "features" / f"{vid}.npz", **arrays)
    return root


GENERIC = DataConfig(format="generic", snippet_seconds=1.0)


@settings(max_examples=100, **SETTINGS)
@given(spec=generic_specs())
def test_generic_valid_inputs_load_as_written(scratch, spec):
    with fresh_dir(scratch) as root:
        kind, ds = attempt(lambda: load_dataset(GENERIC, write_generic(root, spec)))
    assert kind == "ok", ds
    videos = {v.vid: v for split in ds.splits.values() for v in split}
    assert set(videos) == set(spec["doc"]["database"])
    for vid, entry in spec["doc"]["database"].items():
        want = {CLASSES.index(a["label"]) for a in entry["annotations"]}
        assert set(np.flatnonzero(videos[vid].labels)) == want
        np.testing.assert_array_equal(videos[vid].audio,
                                      spec["features"][vid]["audio"].astype(np.float32))
        assert len(ds.annotations[vid].segments) == len(entry["annotations"])


REQUIRED_JSON = {"database", "subset", "duration", "segment", "label"}


def break_json(path: Path, doc: Any, how: str, pick: int, flips: list, fraction: float,
               value: Any, required: set[str], numbers: Callable[[tuple], bool]) -> bool:
    """Corrupt the JSON document written at `path` one way; True when no valid input can
    result (so the reader must refuse it). `doc` is changed in place (pass a copy)."""
    if how == "truncate":
        truncate(path, fraction)
        return True
    if how == "flip":
        flip_bytes(path, flips)
        return False
    slots = [s for s in json_slots(doc) if how != "nan" or numbers(s)]
    container, key = at(doc, slots[pick % len(slots)])
    if how == "drop-key":
        del container[key]
    else:
        container[key] = float("nan") if how == "nan" else value
    path.write_text(json.dumps(doc))
    return how == "nan" or (how == "drop-key" and key in required)


JSON_FAULTS = ["truncate", "flip", "drop-key", "wrong-type", "nan"]
REQUIRED_JSON = {"database", "subset", "duration", "segment", "label"}


def generic_number(slot: tuple) -> bool:
    return slot[-1] == "duration" or slot[-2:-1] == ("segment",)


@pytest.mark.parametrize("how", JSON_FAULTS)
@settings(max_examples=60, **SETTINGS)
@given(spec=generic_specs(), pick=st.integers(0, 10**6), flips=FLIPS, fraction=FRACTION,
       value=JSON_VALUES)
def test_generic_corrupt_json_gives_the_clean_error(scratch, how, spec, pick, flips, fraction,
                                                    value):
    with fresh_dir(scratch) as root:
        write_generic(root, spec)
        must_fail = break_json(root / "annotations.json", copy.deepcopy(spec["doc"]), how,
                               pick, flips, fraction, value, REQUIRED_JSON, generic_number)
        kind, _ = attempt(lambda: load_dataset(GENERIC, root), known=True)
    event(f"{how}: {kind}")
    if must_fail:
        assert kind != "ok"


WRONG_VALUES = [None, True, -1, 0, 1.5, float("nan"), float("inf"), "", "x", [], [1, 2, 3], {},
                {"a": 1}]


def test_every_wrong_type_at_every_place_of_a_generic_json(tmp_path):
    """Exhaustive companion of the random test: each value above at each place of a small
    valid document (13 values x every key and list item)."""
    spec = {"doc": {"version": "t", "classes": ["jump", "run"], "snippet_seconds": 1.0,
                    "task": "action", "database": {
                        "a": {"subset": "training", "duration": 4.0, "annotations": [
                            {"segment": [0.5, 2.0], "label": "run"}]},
                        "b": {"subset": "validation", "duration": 3.0, "annotations": []}}},
            "features": {v: {"audio": np.ones((t, 2), np.float32),
                             "visual": np.ones((t, 3), np.float32)} for v, t in (("a", 4),
                                                                                 ("b", 3))}}
    root = write_generic(tmp_path / "g", spec)
    tried, bad = 0, {}
    for slot in json_slots(spec["doc"]):
        for value in WRONG_VALUES:
            doc = copy.deepcopy(spec["doc"])
            container, key = at(doc, slot)
            container[key] = value
            write_json(root / "annotations.json", doc)
            tried += 1
            try:
                attempt(lambda: load_dataset(GENERIC, root))
            except Exception as e:  # noqa: BLE001 (collected, reported below)
                bad.setdefault(type(e).__name__, []).append(f"{slot} = {value!r}")
    assert tried > 200
    assert not bad, {k: f"{len(v)} cases, e.g. {v[0]}" for k, v in bad.items()}


BAD_ARRAYS = {
    "strings": lambda a: np.full(a.shape, "x"),
    "complex": lambda a: a.astype(np.complex64) * 1j,
    "datetime": lambda a: np.zeros(a.shape, dtype="datetime64[s]"),
    "one-dim": lambda a: a.reshape(-1),
    "three-dim": lambda a: a[None],
    "no-snippets": lambda a: a[:0],
    "no-dims": lambda a: a[:, :0],
    "nan": lambda a: np.where(np.arange(a.size).reshape(a.shape) == 0, np.nan, a),
    "inf": lambda a: np.where(np.arange(a.size).reshape(a.shape) == a.size - 1, -np.inf, a),
    "other-length": lambda a: np.concatenate([a, a, a]),
    "other-dims": lambda a: np.concatenate([a, a], axis=1),
    "int": lambda a: (a * 10).astype(np.int32),  # castable: may load
    "bool": lambda a: a > 0,  # castable: may load
}


def break_npz(root: Path, spec: dict[str, Any], how: str, pick: int, modality: str,
              flips: list, fraction: float) -> bool:
    """Corrupt one video's .npz one way; True when the reader must refuse the result."""
    vids = list(spec["features"])
    vid = vids[pick % len(vids)]
    path = root / "features" / f"{vid}.npz"
    arrays = dict(spec["features"][vid])
    if how == "truncate":
        truncate(path, fraction)
    elif how == "flip":
        flip_bytes(path, flips)
        return False
    elif how == "missing-key":
        del arrays[modality]
        np.savez(path, **arrays)
    elif how == "delete-file":
        path.unlink()
    else:
        arrays[modality] = BAD_ARRAYS[how](arrays[modality])
        np.savez(path, **arrays)
        if how in ("int", "bool"):
            return False
        if how == "other-dims":  # an error unless this is the only video
            return len(vids) > 1
        if how == "no-dims" and modality == "audio":  # (T, 0) audio: visual-only data, an
            return len(vids) > 1  # error only beside videos that have audio
    return True


NPZ_FAULTS = ["truncate", "missing-key", "delete-file", *BAD_ARRAYS]


NPZ_FINDINGS: dict[str, Any] = {}  # findings 3 (complex, datetime64 features): fixed


@pytest.mark.parametrize("how", with_findings(NPZ_FAULTS, NPZ_FINDINGS))
@settings(max_examples=30, **SETTINGS)
@given(spec=generic_specs(), pick=st.integers(0, 10**6),
       modality=st.sampled_from(["audio", "visual"]), flips=FLIPS, fraction=FRACTION)
def test_generic_corrupt_npz_gives_the_clean_error(scratch, how, spec, pick, modality, flips,
                                                   fraction):
    with fresh_dir(scratch) as root:
        write_generic(root, spec)
        must_fail = break_npz(root, spec, how, pick, modality, flips, fraction)
        kind, _ = attempt(lambda: load_dataset(GENERIC, root), known=True)
    event(f"{how}: {kind}")
    if must_fail:
        assert kind != "ok", how


@settings(max_examples=300, **SETTINGS)
@given(spec=generic_specs(), pick=st.integers(0, 10**6), flips=FLIPS)
def test_generic_flipped_npz_bytes_give_the_clean_error(scratch, spec, pick, flips):
    """A flip inside the float data loads (undetectable without a checksum); a flip in the
    zip structure must be the clean error."""
    with fresh_dir(scratch) as root:
        write_generic(root, spec)
        break_npz(root, spec, "flip", pick, "audio", flips, 0.0)
        kind, _ = attempt(lambda: load_dataset(GENERIC, root), known=True)
    event(f"flip: {kind}")


def test_every_single_bit_flip_of_an_npz_gives_the_clean_error(tmp_path):
    """Exhaustive where random flips rarely land: each of the ~4 400 single-bit flips of a
    small .npz (zip headers, central directory, .npy headers, data) is tried."""
    from avloc.data.generic import read_npz

    path = tmp_path / "v.npz"
    np.savez(path, audio=np.ones((3, 2), np.float32), visual=np.ones((3, 2), np.float32))
    blob = path.read_bytes()
    bad: dict[str, list[tuple[int, int]]] = {}  # exception type -> (byte, bit) flipped
    for at in range(len(blob)):
        for bit in range(8):
            path.write_bytes(blob[:at] + bytes([blob[at] ^ (1 << bit)]) + blob[at + 1:])
            try:
                attempt(lambda: read_npz(path, "v"))
            except Exception as e:  # noqa: BLE001 (collected, reported below)
                bad.setdefault(type(e).__name__, []).append((at, bit))
    assert not bad, {k: f"{len(v)} flips, first at (byte, bit) {v[0]}" for k, v in bad.items()}


# ---- AVE: Annotations.txt + HDF5 ----------------------------------------------------------
AVE = DataConfig(format="ave", snippet_seconds=1.0)
AVE_CLASSES = ["Church bell", "Bark", "Acoustic guitar"]


@st.composite
def ave_specs(draw) -> dict[str, Any]:
    n = draw(st.integers(3, 8))
    rows = []
    for _ in range(n):
        s = draw(st.integers(0, 10))
        e = draw(st.integers(s, 10))
        rows.append((draw(st.sampled_from(AVE_CLASSES)), f"vid{draw(st.integers(0, n))}", s, e))
    perm = draw(st.permutations(range(n)))
    cut1 = draw(st.integers(1, n - 2))
    cut2 = draw(st.integers(cut1 + 1, n - 1))
    orders = {"train": perm[:cut1], "val": perm[cut1:cut2], "test": perm[cut2:]}
    dv = draw(st.integers(1, 6))
    rng = np.random.default_rng(n)
    return {"rows": rows, "orders": orders, "header": draw(st.booleans()),
            "audio": rng.standard_normal((n, 10, 4)).astype(np.float32),
            "visual": rng.standard_normal((n, 10, dv)).astype(np.float32)}


def h5_write(path: Path, array: Any, key: str = "avadataset") -> None:
    with h5py.File(path, "w") as f:
        f[key] = array


def write_ave(root: Path, spec: dict[str, Any]) -> Path:
    lines = ["Category&VideoID&Quality&StartTime&EndTime"] if spec["header"] else []
    lines += [f"{c}&{v}&good&{s}&{e}" for c, v, s, e in spec["rows"]]
    (root / "Annotations.txt").write_text("\n".join(lines) + "\n")
    for split, order in spec["orders"].items():
        h5_write(root / f"{split}_order.h5", np.array(order, dtype=np.int64), key="order")
    h5_write(root / "audio_feature.h5", spec["audio"])
    h5_write(root / "visual_feature.h5", spec["visual"])
    return root


@settings(max_examples=100, **SETTINGS)
@given(spec=ave_specs())
def test_ave_valid_inputs_load_as_written(scratch, spec):
    with fresh_dir(scratch) as root:
        kind, ds = attempt(lambda: load_dataset(AVE, write_ave(root, spec)))
    assert kind == "ok", ds
    assert {s: len(v) for s, v in ds.splits.items()} == \
        {s: len(o) for s, o in spec["orders"].items()}
    for split, order in spec["orders"].items():
        for video, row in zip(ds.splits[split], order, strict=True):
            np.testing.assert_array_equal(video.audio, spec["audio"][row])
            category, _, s, e = spec["rows"][row]
            assert ds.classes[int(np.flatnonzero(video.labels)[0])] == category
            truth = ds.annotations[video.vid].snippet_labels
            assert (truth > 0).sum() == e - s


AVE_FILES = ["Annotations.txt", "train_order.h5", "val_order.h5", "test_order.h5",
             "audio_feature.h5", "visual_feature.h5"]


def ave_bad_array(how: str, spec: dict[str, Any], which: str) -> Any:
    a = spec[which]
    return {
        "strings": np.full(a.shape, b"x", dtype="S1"),
        "nan": np.where(np.arange(a.size).reshape(a.shape) == a.size // 2, np.nan, a),
        "inf": np.where(np.arange(a.size).reshape(a.shape) == 0, np.inf, a),
        "two-dim": a[:, :, 0],
        "fewer-rows": a[:-1],
        "no-snippets": a[:, :0],
        "no-dims": a[:, :, :0],
        "int": (a * 10).astype(np.int16),  # castable: may load
    }[how]


def break_ave(root: Path, spec: dict[str, Any], how: str, pick: int, flips: list,
              fraction: float, line: str) -> bool:
    """Corrupt the AVE directory one way; True when the reader must refuse the result."""
    name = AVE_FILES[pick % len(AVE_FILES)]
    which = "audio" if pick % 2 else "visual"
    split = ["train", "val", "test"][pick % 3]
    if how == "truncate":
        truncate(root / name, fraction)
        return name != "Annotations.txt"  # a cut inside the last number can leave it valid
    if how == "flip":
        flip_bytes(root / name, flips)
        return False
    if how == "garbage-line":
        text = (root / "Annotations.txt").read_text().splitlines()
        text.insert(pick % (len(text) + 1), line)
        (root / "Annotations.txt").write_text("\n".join(text) + "\n")
        return False  # "x&y&z&1&2" is a valid line (then the row counts disagree)
    if how == "missing-key":
        h5_write(root / f"{which}_feature.h5", spec[which], key="features")
    elif how.startswith("order"):
        order = list(spec["orders"][split])
        bad = {"order-range": [*order, len(spec["rows"]) + pick % 5],
               "order-float": [o + 0.5 for o in order],
               "order-twice": [*order, (order if split == "train" else
                                        spec["orders"]["train"])[0]]}[how]
        h5_write(root / f"{split}_order.h5", np.array(bad), key="order")
    else:
        h5_write(root / f"{which}_feature.h5", ave_bad_array(how, spec, which))
        return how != "int"
    return True


AVE_FAULTS = ["truncate", "garbage-line", "missing-key", "order-range", "order-twice",
              "order-float", "nan", "inf", "two-dim", "fewer-rows", "no-snippets", "int",
              "strings", "no-dims"]


AVE_FINDINGS: dict[str, Any] = {}  # finding 5 (zero-dim features): fixed


@pytest.mark.parametrize("how", with_findings(AVE_FAULTS, AVE_FINDINGS))
@settings(max_examples=30, **SETTINGS)
@given(spec=ave_specs(), pick=st.integers(0, 10**6), flips=FLIPS, fraction=FRACTION,
       line=st.text(max_size=30))
def test_ave_corrupt_files_give_the_clean_error(scratch, how, spec, pick, flips, fraction,
                                                line):
    with fresh_dir(scratch) as root:
        write_ave(root, spec)
        must_fail = break_ave(root, spec, how, pick, flips, fraction, line)
        kind, _ = attempt(lambda: load_dataset(AVE, root), known=True)
    event(f"{how}: {kind}")
    if must_fail:
        assert kind != "ok", how


@settings(max_examples=300, **SETTINGS)
@given(spec=ave_specs(), pick=st.integers(0, 10**6), flips=FLIPS)
def test_ave_flipped_bytes_give_the_clean_error(scratch, spec, pick, flips):
    with fresh_dir(scratch) as root:
        write_ave(root, spec)
        break_ave(root, spec, "flip", pick, flips, 0.0, "")
        kind, _ = attempt(lambda: load_dataset(AVE, root), known=True)
    event(f"flip: {kind}")


# ---- ActivityNet 1.2, W-TALC layout: pickled object arrays --------------------------------
ANET = DataConfig(format="anet12", snippet_seconds=0.64)
ANET_FILES = ["classlist", "subset", "videoname", "duration", "segments", "labels"]
VISUAL_FILE = "ActivityNet1.2-I3D-JOINTFeatures.npy"
AUDIO_FILE = "ActivityNet1.2-VGGish-Features.npy"


def objects(items: list) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):
        out[i] = x
    return out


def save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, arr, allow_pickle=True)


@st.composite
def anet_specs(draw) -> dict[str, Any]:
    n = draw(st.integers(2, 5))
    videos = []
    for i in range(n):
        duration = draw(st.integers(2, 60)) * 0.64
        segs, labs = [], []
        for _ in range(draw(st.integers(0, 3))):
            a, b = sorted(draw(st.floats(0, duration)) for _ in range(2))
            segs.append([a, b])
            labs.append(draw(st.sampled_from(["Archery", "Bowling"])).encode())
        videos.append({"name": f"video_{i}", "subset": draw(st.sampled_from(
            [b"training", b"validation"])), "duration": duration, "segments": segs,
            "labels": labs, "url": f"https://www.youtube.com/watch?v=ID{i:09d}".encode()})
    return {"videos": videos}


def write_anet(root: Path, spec: dict[str, Any]) -> Path:
    vs = spec["videos"]
    arrays = {
        "classlist": np.array([b"Archery", b"Bowling"]),
        "subset": np.array([v["subset"] for v in vs]),
        "videoname": np.array([v["name"].encode() for v in vs]),
        "duration": np.array([v["duration"] for v in vs]),
        "segments": objects([v["segments"] for v in vs]),
        "labels": objects([v["labels"] for v in vs]),
        "url": np.array([v["url"] for v in vs]),
    }
    for name, arr in arrays.items():
        save_npy(root / f"{name}.npy", arr)
    rng = np.random.default_rng(len(vs))
    lengths = [max(1, round(v["duration"] / 0.64)) for v in vs]
    save_npy(root / VISUAL_FILE, objects([rng.standard_normal((t, 6)).astype(np.float32)
                                          for t in lengths]))
    save_npy(root / AUDIO_FILE, objects([rng.standard_normal((t, 4)).astype(np.float32)
                                         for t in lengths]))
    return root


@settings(max_examples=100, **SETTINGS)
@given(spec=anet_specs())
def test_anet_valid_inputs_load_as_written(scratch, spec):
    with fresh_dir(scratch) as root:
        kind, ds = attempt(lambda: load_dataset(ANET, write_anet(root, spec)))
    assert kind == "ok", ds
    videos = {v.vid: v for split in ds.splits.values() for v in split}
    assert len(videos) == len(spec["videos"])
    for i, v in enumerate(spec["videos"]):
        got = videos[f"ID{i:09d}"]
        want = {["Archery", "Bowling"].index(x.decode()) for x in v["labels"]}
        assert set(np.flatnonzero(got.labels)) == want
        assert len(ds.annotations[got.vid].segments) == len(v["segments"])


def break_anet(root: Path, spec: dict[str, Any], how: str, pick: int, flips: list,
               fraction: float) -> bool:
    """Corrupt the W-TALC directory one way; True when the reader must refuse the result."""
    files = [f"{n}.npy" for n in ANET_FILES] + [VISUAL_FILE, AUDIO_FILE]
    name = files[pick % len(files)]
    videos = spec["videos"]
    i = pick % len(videos)
    if how == "truncate":
        truncate(root / name, fraction)
    elif how == "flip":
        flip_bytes(root / name, flips)
        return False
    elif how in ("nan-duration", "string-duration"):
        d = np.array([v["duration"] for v in videos], dtype=object)
        d[i] = float("nan") if how == "nan-duration" else "long"
        save_npy(root / "duration.npy", d)
    elif how == "shorter-array":
        arr = np.load(root / name, allow_pickle=True)
        save_npy(root / name, arr[:-1])
        if name == "classlist.npy":  # fine unless a video is labelled with the lost class
            return any(b"Bowling" in v["labels"] for v in videos)
    elif how in ("segment-shape", "labels-mismatch"):
        segs, labs = [v["segments"] for v in videos], [v["labels"] for v in videos]
        if how == "segment-shape":
            segs[i], labs[i] = [[1.0, 2.0, 3.0]], [b"Archery"]
        else:
            labs[i] = [*labs[i], b"Archery"]
        save_npy(root / "segments.npy", objects(segs))
        save_npy(root / "labels.npy", objects(labs))
    else:
        target = VISUAL_FILE if pick % 2 else AUDIO_FILE
        arr = np.load(root / target, allow_pickle=True)
        x = arr[i]
        if how == "feature-count":
            arr = arr[:-1]
        else:
            arr[i] = {"feature-nan": np.where(np.arange(x.size).reshape(x.shape) == 0, np.nan,
                                              x),
                      "feature-1d": x.reshape(-1),
                      "feature-strings": np.full(x.shape, "x"),
                      "feature-none": None}[how]
        save_npy(root / target, arr)
    return True


ANET_FAULTS = ["truncate", "nan-duration", "string-duration", "shorter-array", "segment-shape",
               "labels-mismatch", "feature-nan", "feature-1d", "feature-strings",
               "feature-count", "feature-none"]


@pytest.mark.parametrize("how", ANET_FAULTS)
@settings(max_examples=30, **SETTINGS)
@given(spec=anet_specs(), pick=st.integers(0, 10**6), flips=FLIPS, fraction=FRACTION)
def test_anet_corrupt_files_give_the_clean_error(scratch, how, spec, pick, flips, fraction):
    with fresh_dir(scratch) as root:
        write_anet(root, spec)
        must_fail = break_anet(root, spec, how, pick, flips, fraction)
        kind, _ = attempt(lambda: load_dataset(ANET, root), known=True)
    event(f"{how}: {kind}")
    if must_fail:
        assert kind != "ok", how


@settings(max_examples=300, **SETTINGS)
@given(spec=anet_specs(), pick=st.integers(0, 10**6), flips=FLIPS)
def test_anet_flipped_bytes_give_the_clean_error(scratch, spec, pick, flips):
    """The annotation files are pickles: a flipped byte can make the unpickler raise almost
    anything; the reader must still answer with its one-line error."""
    with fresh_dir(scratch) as root:
        write_anet(root, spec)
        break_anet(root, spec, "flip", pick, flips, 0.0)
        kind, _ = attempt(lambda: load_dataset(ANET, root), known=True)
    event(f"flip: {kind}")


# ---- the evaluator: ActivityNet JSON, mAP, accuracy, thresholding -------------------------
@st.composite
def detection_case(draw) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ground-truth document and a results document over the same videos; predicted
    labels are classes of the ground truth (any other label is an error by design)."""
    labels = ["a", "b", "c"]
    database, results = {}, {}
    for i in range(draw(st.integers(1, 5))):
        duration = draw(st.floats(1, 100))
        anns = []
        for _ in range(draw(st.integers(0, 4))):
            s, e = sorted(draw(st.floats(0, duration)) for _ in range(2))
            anns.append({"segment": [s, e], "label": draw(st.sampled_from(labels))})
        database[f"v{i}"] = {"subset": "validation", "duration": duration, "annotations": anns}
        dets = []
        for _ in range(draw(st.integers(0, 5))):
            s = draw(st.floats(0, duration - 0.01))
            e = draw(st.floats(s + 0.001, duration))
            dets.append({"label": draw(st.sampled_from(labels)), "segment": [s, e],
                         "score": draw(st.floats(-5, 5))})
        results[f"v{i}"] = dets
    present = {a["label"] for v in database.values() for a in v["annotations"]}
    for label in set(labels) - present:  # every label is a class of the ground truth
        database["v0"]["annotations"].append({"segment": [0.0, 1.0], "label": label})
    return {"database": database}, {"version": "VERSION 1.2", "results": results}


def write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


@settings(max_examples=150, **SETTINGS)
@given(case=detection_case())
def test_map_of_valid_inputs_is_a_fraction_and_perfect_predictions_score_1(scratch, case):
    gt_doc, pred_doc = case
    with fresh_dir(scratch) as d:
        kind, metrics = attempt(lambda: score_files(write_json(d / "gt.json", gt_doc),
                                                    write_json(d / "pred.json", pred_doc)))
    assert kind == "ok", metrics
    values = [*metrics["mAP"].values(), metrics["average_mAP"]]
    assert all(0.0 <= v <= 1.0 for v in values)
    # the ground truth itself, as detections of distinct scores, is perfect wherever an
    # instance has positive length (a zero-length one cannot reach tIoU 0.5)
    gt = parse_ground_truth(gt_doc, "gt")
    perfect = {vid: [] for vid in gt_doc["database"]}
    for i, (vid, seg, label) in enumerate(zip(gt.video, gt.segment, gt.label, strict=True)):
        if seg[1] > seg[0]:
            perfect[vid].append({"label": label, "segment": seg.tolist(), "score": -float(i)})
    result = detection_map(gt, perfect)
    for label, ap in result["per_class_AP"].items():
        degenerate = any(seg[1] <= seg[0] for seg, lab in zip(gt.segment, gt.label,
                                                               strict=True) if lab == label)
        if not degenerate:
            assert ap == [1.0] * len(ap), label


REQUIRED_EVAL = {"database", "results", "duration", "annotations", "segment", "label", "score"}


def eval_number(slot: tuple) -> bool:
    return slot[-1] in ("duration", "score") or slot[-2:-1] == ("segment",)


def break_eval(d: Path, case: tuple, which: str, how: str, pick: int, flips: list,
               fraction: float, value: Any) -> tuple[Path, Path, bool]:
    """Write the ground truth and the results, one of them corrupted one way."""
    gt_doc, pred_doc = copy.deepcopy(case)
    doc = gt_doc if which == "gt" else pred_doc
    gt, pred = write_json(d / "gt.json", gt_doc), write_json(d / "pred.json", pred_doc)
    target = gt if which == "gt" else pred
    if how == "nan" and not any(map(eval_number, json_slots(doc))):
        return gt, pred, False  # a results file without detections has no number to break
    required = REQUIRED_EVAL - ({"annotations"} if which == "pred" else set())
    must_fail = break_json(target, doc, how, pick, flips, fraction, value, required,
                           eval_number)
    return gt, pred, must_fail


@pytest.mark.parametrize("how", [h for h in JSON_FAULTS if h != "flip"])
@pytest.mark.parametrize("which", ["gt", "pred"])
@settings(max_examples=40, **SETTINGS)
@given(case=detection_case(), pick=st.integers(0, 10**6), flips=FLIPS, fraction=FRACTION,
       value=JSON_VALUES)
def test_corrupt_ground_truth_or_results_give_the_clean_error(
    scratch, which, how, case, pick, flips, fraction, value
):
    with fresh_dir(scratch) as d:
        gt, pred, must_fail = break_eval(d, case, which, how, pick, flips, fraction, value)
        kind, _ = attempt(lambda: score_files(gt, pred), known=True)
    event(f"{which} {how}: {kind}")
    if must_fail:
        assert kind != "ok", (which, how)


@pytest.mark.parametrize("which", ["gt", "pred"])
@settings(max_examples=150, **SETTINGS)
@given(case=detection_case(), flips=FLIPS)
def test_flipped_bytes_in_ground_truth_or_results_give_the_clean_error(scratch, which, case,
                                                                       flips):
    with fresh_dir(scratch) as d:
        gt, pred, _ = break_eval(d, case, which, "flip", 0, flips, 0.0, None)
        kind, _ = attempt(lambda: score_files(gt, pred), known=True)
    event(f"{which} flip: {kind}")


def test_every_wrong_type_at_every_place_of_ground_truth_and_results(tmp_path):
    gt_doc = {"version": "v", "database": {
        "a": {"subset": "validation", "duration": 10.0, "annotations": [
            {"segment": [1.0, 4.0], "label": "x"}, {"segment": [5.0, 5.0], "label": "y"}]},
        "b": {"subset": "validation", "duration": 5.0, "annotations": []}}}
    pred_doc = {"version": "VERSION 1.2", "external_data": {"used": False}, "results": {
        "a": [{"label": "x", "segment": [1.0, 3.5], "score": 0.9},
              {"label": "y", "segment": [4.0, 6.0], "score": 0.1}], "b": []}}
    gt, pred = tmp_path / "gt.json", tmp_path / "pred.json"
    tried, bad = 0, {}
    for which, original in (("gt", gt_doc), ("pred", pred_doc)):
        for slot in json_slots(original):
            for value in WRONG_VALUES:
                doc = copy.deepcopy(original)
                container, key = at(doc, slot)
                container[key] = value
                write_json(gt, doc if which == "gt" else gt_doc)
                write_json(pred, doc if which == "pred" else pred_doc)
                tried += 1
                try:
                    attempt(lambda: score_files(gt, pred))
                except Exception as e:  # noqa: BLE001 (collected, reported below)
                    bad.setdefault(type(e).__name__, []).append(f"{which} {slot} = {value!r}")
    assert tried > 400
    assert not bad, {k: f"{len(v)} cases, e.g. {v[0]}" for k, v in bad.items()}


def _subset_list(d: Path) -> Callable[[], Any]:
    spec = {"doc": {"classes": ["run"], "database": {"v": {
        "subset": [], "duration": 2.0, "annotations": []}}},
        "features": {"v": {"audio": np.ones((2, 2)), "visual": np.ones((2, 2))}}}
    return lambda: load_dataset(GENERIC, write_generic(d, spec))


def _empty_npz(d: Path) -> Callable[[], Any]:
    spec = {"doc": {"classes": ["run"], "database": {"v": {
        "subset": "training", "duration": 2.0, "annotations": []}}},
        "features": {"v": {"audio": np.ones((2, 2)), "visual": np.ones((2, 2))}}}
    write_generic(d, spec)
    (d / "features" / "v.npz").write_bytes(b"")
    return lambda: load_dataset(GENERIC, d)


def _ave_strings(d: Path) -> Callable[[], Any]:
    spec = {"rows": [("Bark", "a", 0, 5), ("Bark", "b", 1, 2), ("Bark", "c", 3, 9)],
            "orders": {"train": [0], "val": [1], "test": [2]}, "header": False,
            "audio": np.ones((3, 10, 4), np.float32),
            "visual": np.full((3, 10, 2), b"x", dtype="S1")}
    return lambda: load_dataset(AVE, write_ave(d, spec))


def _flipped_h5(d: Path) -> Callable[[], Any]:
    from avloc.data.ave import read_order

    path = d / "train_order.h5"
    h5_write(path, np.array([0, 1, 2]), key="order")
    flip_bytes(path, [(16, 4)])
    return lambda: read_order(path, 5)


def _not_utf8(d: Path) -> Callable[[], Any]:
    (d / "gt.json").write_bytes(b"\xfb{}")
    return lambda: read_ground_truth(d / "gt.json")


def _anet_not_utf8(d: Path) -> Callable[[], Any]:
    spec = {"videos": [{"name": "video_0", "subset": b"training", "duration": 3.2,
                        "segments": [], "labels": [], "url": b"https://youtu.be/?v=A"}]}
    write_anet(d, spec)
    save_npy(d / "classlist.npy", np.array([b"Archery", b"Bowl\xe7"]))
    return lambda: load_dataset(ANET, d)


@pytest.mark.parametrize("finding, make", [
    pytest.param(1, _subset_list, id="1-subset-is-a-list"),  # all fixed
    pytest.param(2, _empty_npz, id="2-empty-npz"),
    pytest.param(4, _ave_strings, id="4-ave-string-features"),
    pytest.param(6, _flipped_h5, id="6-ave-corrupted-h5"),
    pytest.param(7, _not_utf8, id="7-json-not-utf8"),
    pytest.param(9, _anet_not_utf8, id="9-anet-name-not-utf8"),
])
def test_open_finding_reproducers(tmp_path, finding, make):
    """The minimal input of each open finding that raises: must be the one-line error."""
    kind, _ = attempt(make(tmp_path))
    assert kind == "error", finding


@pytest.mark.parametrize("reader", ["evaluator", "generic"])
def test_deeply_nested_json_is_the_clean_error(tmp_path, reader):
    """100 000 nested brackets: Python's json recurses and raises RecursionError."""
    from avloc.scoring.anet_json import read_ground_truth

    path = tmp_path / "deep.json"
    path.write_text('{"database": ' + "[" * 100_000 + "]" * 100_000 + "}")
    load = read_ground_truth if reader == "evaluator" else (
        lambda p: load_dataset(GENERIC, p.parent))
    (tmp_path / "features").mkdir(exist_ok=True)
    if reader == "generic":
        path.rename(tmp_path / "annotations.json")
        path = tmp_path / "annotations.json"
    kind, _ = attempt(lambda: load(path))
    assert kind == "error"


def test_cli_score_of_a_corrupt_file_is_one_line(tmp_path, capsys):
    gt = write_json(tmp_path / "gt.json", {"database": {"v": {
        "subset": "validation", "duration": 5.0,
        "annotations": [{"segment": [1, 2], "label": "a"}]}}})
    (tmp_path / "pred.json").write_text('{"results": {"v": [{"label": "a", "segm')
    assert main(["score", str(gt), str(tmp_path / "pred.json")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("avloc: error:") and "pred.json" in err[0]
    assert read_ground_truth(gt).durations == {"v": 5.0}
    with pytest.raises(AvlocError, match="not valid JSON"):
        read_predictions(tmp_path / "pred.json")


@settings(max_examples=150, **SETTINGS)
@given(lengths=st.lists(st.integers(0, 20), min_size=0, max_size=6), classes=st.integers(1, 5),
       seed=st.integers(0, 2**31), shift=st.integers(-2, 2))
def test_snippet_accuracy_is_a_fraction_or_the_clean_error(lengths, classes, seed, shift):
    """Any number of videos of any length, predictions of matching or other lengths."""
    rng = np.random.default_rng(seed)
    truth = [rng.integers(0, classes + 1, t) for t in lengths]
    pred = [rng.integers(0, classes + 1, max(0, t + shift)) for t in lengths]
    kind, acc = attempt(lambda: snippet_accuracy(pred, truth))
    event(f"accuracy: {kind}")
    if shift == 0 and sum(lengths) > 0:
        assert kind == "ok" and 0.0 <= acc <= 1.0
        assert snippet_accuracy(truth, truth) == 1.0
        assert 0.0 <= oracle_accuracy(truth) <= 1.0
    if shift != 0 and any(lengths):
        assert kind == "error"


@settings(max_examples=150, **SETTINGS)
@given(t=st.integers(1, 60), c=st.integers(1, 5), seed=st.integers(0, 2**31),
       constant=st.booleans(), seconds=st.sampled_from([0.64, 1.0]),
       duration_scale=st.floats(0.5, 1.5), threshold=st.floats(0, 0.99),
       step=st.sampled_from([0.0, 0.1, 0.25]), smooth=st.integers(1, 5),
       min_snippets=st.integers(1, 4), nms=st.sampled_from([0.0, 0.3, 0.7]),
       class_filter=st.sampled_from(["mean", "none"]))
def test_thresholding_gives_valid_segments(t, c, seed, constant, seconds, duration_scale,
                                           threshold, step, smooth, min_snippets, nms,
                                           class_filter):
    """Any activation sequence (flat ones included) and any valid localize settings:
    segments inside the video, end > start, known labels, finite scores, best first."""
    rng = np.random.default_rng(seed)
    cas = np.full((t, c), 0.3) if constant else rng.random((t, c))
    classes = [f"c{i}" for i in range(c)]
    duration = t * seconds * duration_scale
    cfg = LocalizeConfig(class_filter=class_filter, act_threshold=threshold,
                         act_threshold_step=step, smooth=smooth, min_snippets=min_snippets,
                         nms_iou=nms)
    with no_hang():
        out = segments_from_cas(cas, video_class_scores(cas), seconds, classes, cfg, duration)
    scores = [d["score"] for d in out]
    assert scores == sorted(scores, reverse=True)
    for d in out:
        s, e = d["segment"]
        assert 0.0 <= s < e <= duration + 1e-9
        assert d["label"] in classes and math.isfinite(d["score"])
    event(f"segments: {'some' if out else 'none'}")
