"""The I3D building blocks of the I3D feature releases: the network loads a pytorch-i3d
layout state dict (random weights stand in for rgb_imagenet.pt), TV-L1 flow follows
dense_flow's scaling, the window arithmetic matches a plain loop, and W-TALC's 25 fps
frames are FFmpeg's constant-rate output (release_grid.cfr_output, the one model of it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avloc.extract.i3d import FEATURE_DIM, InceptionI3d, load_i3d, same_padding
from avloc.extract.release_grid import cfr_output, chunk_starts
from avloc.util.errors import AvlocError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def rgb_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "rgb_imagenet.pt"
    torch.save(InceptionI3d(3).state_dict(), path)
    return path


def test_keys_are_pytorch_i3d_names():
    with torch.device("meta"):
        state = InceptionI3d(2).state_dict()
    assert len(state) == 344
    assert state["Conv3d_1a_7x7.conv3d.weight"].shape == (64, 2, 7, 7, 7)
    for suffix in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        assert f"Conv3d_1a_7x7.bn.{suffix}" in state
    assert state["Mixed_5c.b3b.conv3d.weight"].shape == (128, 832, 1, 1, 1)
    assert state["logits.conv3d.weight"].shape == (400, 1024, 1, 1, 1)
    assert state["logits.conv3d.bias"].shape == (400,)
    assert not any(key.startswith("logits.bn") for key in state)


def test_same_padding_is_tensorflows():
    # 224 / stride 2, kernel 7: 5 in all, the odd one at the back; 7 / stride 2: k - 1
    assert same_padding((16, 224, 7), (7, 7, 7), (2, 2, 2)) == (3, 3, 2, 3, 2, 3)
    assert same_padding((3, 3, 3), (1, 1, 1), (1, 1, 1)) == (0, 0, 0, 0, 0, 0)


def test_load_and_features(rgb_file):
    net = load_i3d(rgb_file, "rgb")
    assert not net.training
    torch.manual_seed(1)
    x = torch.rand(1, 3, 16, 224, 224) * 2 - 1  # (B, C, T, H, W) in [-1, 1]
    seen = []
    net.Mixed_5c.register_forward_hook(lambda module, args, out: seen.append(out))
    with torch.inference_mode():
        feats = net.features(x)
    mixed = seen[0]  # (1, 1024, 2, 7, 7)
    assert mixed.shape == (1, FEATURE_DIM, 2, 7, 7)
    assert feats.shape == (1, FEATURE_DIM) and torch.isfinite(feats).all()
    # the release's AvgPool3d((2, 7, 7), stride 1)[..., 0, 0, 0] is this mean for 16 frames
    pooled = torch.nn.functional.avg_pool3d(mixed, (2, 7, 7), stride=1)[:, :, 0, 0, 0]
    torch.testing.assert_close(feats, pooled)


def test_missing_key_names_the_file(rgb_file, tmp_path):
    state = torch.load(rgb_file, weights_only=True)
    del state["Mixed_5c.b3b.conv3d.weight"]
    broken = tmp_path / "broken.pt"
    torch.save(state, broken)
    with pytest.raises(AvlocError, match="broken.pt") as err:
        load_i3d(broken, "rgb")
    assert "\n" not in str(err.value) and "Mixed_5c.b3b.conv3d.weight" in str(err.value)


def test_rgb_file_is_not_flow(rgb_file):
    with pytest.raises(AvlocError, match="Conv3d_1a_7x7.conv3d.weight has shape"):
        load_i3d(rgb_file, "flow")


def _cv2_optflow():
    try:
        import cv2
    except ImportError:
        return None
    return cv2 if hasattr(cv2, "optflow") else None


@pytest.mark.skipif(
    _cv2_optflow() is None, reason="cv2.optflow missing: pip install opencv-contrib-python-headless"
)
def test_tvl1_square_moving_right():
    from avloc.extract.flow import flow_to_uint8, tvl1_flow, uint8_to_unit

    _cv2_optflow().setNumThreads(1)
    texture = np.random.default_rng(0).integers(120, 250, (20, 20)).astype(np.uint8)
    gray = np.full((2, 64, 64), 40, np.uint8)  # (N, H, W)
    gray[0, 22:42, 20:40] = texture
    gray[1, 22:42, 22:42] = texture  # 2 px to the right
    flow = tvl1_flow(gray)
    assert flow.shape == (1, 64, 64, 2) and flow.dtype == np.float32
    assert flow.min() >= -1 and flow.max() <= 1
    inside = flow[0, 24:40, 24:38]  # (h, w, 2) within the square in both frames
    assert inside[..., 0].mean() == pytest.approx(2 / 20, abs=0.02)
    assert inside[..., 1].mean() == pytest.approx(0, abs=0.02)
    # dense_flow's map: clipped at the bound, zero flow is 128 (+1/255 in unit scale)
    assert flow_to_uint8(np.array([-25.0, -20.0, 0.0, 20.0, 30.0])).tolist() == [0, 0, 128, 255,
                                                                                 255]
    assert uint8_to_unit(np.array([0, 255], np.uint8)).tolist() == [-1.0, 1.0]


def test_cv2_without_optflow_is_one_line(monkeypatch):
    from types import SimpleNamespace

    from avloc.extract import flow

    monkeypatch.setattr(flow, "need", lambda name: SimpleNamespace())  # plain opencv-python
    with pytest.raises(AvlocError, match="opencv-contrib-python-headless") as err:
        flow.raw_flow(np.zeros((2, 8, 8), np.uint8))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("num_frames", [0, 15, 16, 17, 31, 32, 100, 101])
@pytest.mark.parametrize("stride", [4, 16])
def test_chunk_starts_match_a_loop(num_frames, stride):
    expected = []
    start = 0
    while start + 16 <= num_frames:
        expected.append(start)
        start += stride
    assert chunk_starts(num_frames, stride).tolist() == expected
    if num_frames > 16:  # Finspire13's script: last start (n - 16) // stride * stride
        assert expected[-1] == (num_frames - 16) // stride * stride
    if stride == 16:
        assert len(expected) == num_frames // 16  # W-TALC: non-overlapping, tail dropped


@pytest.mark.parametrize("native", [24.0, 25.0, 29.97, 30.0, 50.0, 59.94])
def test_25_fps_output_keeps_pace_with_the_frame_on_screen(native):
    """ffmpeg -r 25 of a constant-rate input: in order, one frame per output slot, never
    more than about one output frame away from the frame on screen at k / 25."""
    count = int(3.3 * native)
    out = cfr_output(np.arange(count) / native, 25, 1 / native)
    screen = np.floor(np.arange(len(out)) * native / 25 + 1e-9)  # the frame at k / 25
    assert out[0] == 0 and (np.diff(out) >= 0).all() and out[-1] >= count - 2
    assert abs(len(out) - count * 25 / native) <= 2
    assert np.abs(out - screen).max() <= native / 25 + 1
    if native == 25:
        assert out.tolist() == list(range(count))
    if native == 30:  # one frame in six dropped
        steps = np.diff(out)
        assert set(steps.tolist()) == {1, 2} and abs((steps == 2).sum() - count / 6) <= 2
