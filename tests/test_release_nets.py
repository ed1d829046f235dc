"""The releases' networks (avloc.extract.release_nets): shapes, and Keras's VGG-19 HDF5
layout read into torch (kernels (3, 3, in, out) -> (out, in, 3, 3))."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from avloc.extract.release_nets import R2Plus1D18, VGG19Pool5, load_keras_vgg19
from avloc.util.errors import AvlocError


def test_r2plus1d_pools_an_8_frame_clip_to_512():
    torch.manual_seed(0)
    net = R2Plus1D18().eval()
    with torch.inference_mode():
        out = net.pooled(torch.randn(1, 3, 8, 112, 112))
    assert out.shape == (1, 512) and torch.isfinite(out).all()
    assert "layer1.0.conv1.0.3.weight" in net.state_dict()  # torchvision's key names


def _write_keras(path, net, keras2=True):
    rng = np.random.default_rng(0)
    kernels = {}
    with h5py.File(path, "w") as handle:
        names = [name for name, _ in net.keras_names()]
        handle.attrs["layer_names"] = [n.encode() for n in names]
        for name, conv in net.keras_names():
            out_c, in_c = conv.weight.shape[:2]
            kernel = rng.normal(size=(3, 3, in_c, out_c)).astype(np.float32) * 0.01
            group = handle.create_group(name)
            weight_names = ([f"{name}/kernel:0", f"{name}/bias:0"] if keras2
                            else [f"{name}_W_1:0", f"{name}_b_1:0"])
            group.attrs["weight_names"] = [w.encode() for w in weight_names]
            group[weight_names[0]] = kernel
            group[weight_names[1]] = np.arange(out_c, dtype=np.float32)
            kernels[name] = kernel
    return kernels


@pytest.mark.parametrize("keras2", [True, False])
def test_keras_vgg19_weights_load_transposed(tmp_path, keras2):
    net = VGG19Pool5()
    kernels = _write_keras(tmp_path / "vgg19.h5", net, keras2)
    load_keras_vgg19(tmp_path / "vgg19.h5", net)
    name, conv = net.keras_names()[3]
    k = kernels[name]
    assert torch.equal(conv.weight[5, 2], torch.from_numpy(k[:, :, 2, 5]))
    assert conv.bias[7] == 7


def test_keras_file_without_a_layer_is_one_line(tmp_path):
    with h5py.File(tmp_path / "bad.h5", "w") as handle:
        handle.create_group("block1_conv1")
    with pytest.raises(AvlocError, match="bad.h5: layer block1_conv1 holds 0 weights"):
        load_keras_vgg19(tmp_path / "bad.h5", VGG19Pool5())
