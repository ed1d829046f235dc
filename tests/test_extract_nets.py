"""The paper's networks (VGGish, ResNet-152) load user weight files in the torchvggish /
torchvision layouts. Real weights are not available here, so random ones of the right
architecture are saved and loaded; missing or wrong files give one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avloc.extract.audio import VggishBackend
from avloc.extract.nets import VGGish, resnet152
from avloc.extract.visual import ResNet152Backend
from avloc.extract.weights import WEIGHTS_ENV
from avloc.util.errors import AvlocError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def vggish_file(tmp_path_factory):
    torch.manual_seed(0)
    state = VGGish().state_dict()
    state["pproc.pca_matrix"] = torch.eye(128)  # saved full torchvggish models carry these
    state["pproc.pca_means"] = torch.zeros(128, 1)
    path = tmp_path_factory.mktemp("weights") / "vggish.pth"
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet152.pth"
    torch.save(resnet152().state_dict(), path)
    return path


def meta_state(net_class) -> dict:
    """Keys and shapes without allocating or initialising 60-70 M parameters."""
    with torch.device("meta"):
        return net_class().state_dict()


def test_vggish_keys_are_torchvggish_keys():
    state = meta_state(VGGish)
    convs = [f"features.{i}.{p}" for i in (0, 3, 6, 8, 11, 13) for p in ("weight", "bias")]
    fcs = [f"embeddings.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")]
    assert list(state) == convs + fcs
    assert state["embeddings.0.weight"].shape == (4096, 512 * 4 * 6)


def test_vggish_backend_maps_audio_to_128d_snippets(vggish_file):
    backend = VggishBackend(vggish_file)
    wave = np.random.default_rng(0).normal(0, 0.1, 3 * 16000).astype(np.float32)
    out = backend.embed(wave, 3, 1.0)
    assert out.shape == (3, 128) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0  # the embedding ends in a ReLU
    assert (backend.name, backend.dim) == ("vggish", 128)


def test_vggish_found_through_the_weights_folder(vggish_file, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(vggish_file.parent))
    assert VggishBackend().net.features[0].weight.shape == (64, 1, 3, 3)


def test_missing_weight_files_say_which_file_and_where(monkeypatch, tmp_path):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    with pytest.raises(AvlocError) as err:
        VggishBackend()
    message = str(err.value)
    assert "vggish.pth" in message and "--audio-weights PATH" in message
    assert f"${WEIGHTS_ENV}/vggish.pth" in message and "\n" not in message
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(AvlocError, match=f"{tmp_path}/resnet152.pth does not exist"):
        ResNet152Backend()
    with pytest.raises(AvlocError, match="--visual-weights PATH"):
        ResNet152Backend()
    with pytest.raises(AvlocError, match="weight file of back-end resnet152 does not exist"):
        ResNet152Backend(tmp_path / "nope.pth")


def test_wrong_weight_files_are_one_line_errors(tmp_path, resnet_file):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a torch file")
    with pytest.raises(AvlocError, match="not a readable torch weight file"):
        VggishBackend(garbage)
    with pytest.raises(AvlocError, match=r"not a VGGish \(torchvggish layout\) state dict"):
        VggishBackend(resnet_file)
    small = tmp_path / "small.pth"  # right keys, wrong shapes, wrapped as {"state_dict": ...}
    torch.save({"state_dict": {key: torch.zeros(2) for key in meta_state(VGGish)}}, small)
    with pytest.raises(AvlocError, match=r"features.0.weight has shape \(2,\), expected"):
        VggishBackend(small)


def test_resnet152_matches_torchvision_layout():
    with torch.device("meta"):
        net = resnet152()
    state = net.state_dict()
    assert len(state) == 932  # torchvision's resnet152().state_dict() has 932 entries
    assert sum(p.numel() for p in net.parameters()) == 60_192_808  # torchvision's count
    shapes = {
        "conv1.weight": (64, 3, 7, 7),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer3.35.conv2.weight": (256, 256, 3, 3),
        "layer4.2.bn3.running_var": (2048,),
        "fc.weight": (1000, 2048),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape
    assert "layer2.0.downsample.1.num_batches_tracked" in state


def test_resnet152_backend_pools_2048d_and_classifies(resnet_file):
    backend = ResNet152Backend(resnet_file, batch_size=2)
    # one small image keeps this fast: global pooling takes any size
    frames = np.random.default_rng(0).integers(0, 256, (1, 1, 32, 32, 3), dtype=np.uint8)
    feats = backend.embed(frames)
    assert feats.shape == (1, 2048) and feats.dtype == np.float32 and feats.min() >= 0
    state = torch.load(resnet_file, weights_only=True)
    with torch.inference_mode():  # the saved fc applied to the pooled features
        logits = torch.from_numpy(feats) @ state["fc.weight"].T + state["fc.bias"]
    got = backend.classify(frames[:, 0])
    np.testing.assert_allclose(got, logits.numpy(), rtol=1e-4, atol=1e-4)
