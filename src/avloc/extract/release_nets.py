"""The releases' other networks in plain torch, with the keys of the files people have:
VGG-19's convolutional part (AVE's pool5; torchvision's `features.N` keys, or Keras's
`vgg19_weights_tf_dim_ordering_tf_kernels*.h5`, the file AVE's extractor loaded) and
R(2+1)D-18 (LLP's clip features; torchvision's video model keys).

References: Simonyan and Zisserman, ICLR 2015 (VGG); Tran et al., CVPR 2018 (R(2+1)D);
torchvision models/vgg.py and models/video/resnet.py for the key names; Keras
applications/vgg19.py for the layer names `block{b}_conv{c}`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from avloc.util.errors import AvlocError, first_line

VGG19_BLOCKS = (2, 2, 4, 4, 4)  # convolutions per block, each block ends in a 2x2 max pool
VGG19_WIDTHS = (64, 128, 256, 512, 512)


class VGG19Pool5(nn.Module):
    """(N, 3, 224, 224) -> (N, 512, 7, 7): VGG-19 up to block5_pool (torchvision's
    features[0..36]; 3x3 convolutions padded by 1, as Keras's 'same')."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for count, width in zip(VGG19_BLOCKS, VGG19_WIDTHS, strict=True):
            for _ in range(count):
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
                channels = width
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (N, 512, 7, 7)

    def keras_names(self) -> list[tuple[str, nn.Conv2d]]:
        """[(Keras layer name, convolution)] in network order."""
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        names = [f"block{b}_conv{c}" for b, n in enumerate(VGG19_BLOCKS, 1)
                 for c in range(1, n + 1)]
        return list(zip(names, convs, strict=True))


def load_keras_vgg19(path: Path, net: VGG19Pool5) -> None:
    """Keras's VGG-19 HDF5 weights (with or without the top) into `net`.

    Keras stores each layer as a group holding its `weight_names` (kernel, then bias) with
    kernels (3, 3, in, out); torch wants (out, in, 3, 3). Both Keras 1 names
    (`block1_conv1_W_1:0`) and Keras 2 names (`block1_conv1/kernel:0`) are read, at the
    root or under `model_weights` (a whole saved model)."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            root = handle["model_weights"] if "model_weights" in handle else handle
            for name, conv in net.keras_names():
                if name not in root:
                    raise AvlocError(f"{path}: not Keras VGG-19 weights: no layer {name}")
                group = root[name]
                names = [n.decode() if isinstance(n, bytes) else str(n)
                         for n in group.attrs.get("weight_names", [])]
                if len(names) != 2:
                    raise AvlocError(f"{path}: layer {name} holds {len(names)} weights, "
                                     "expected a kernel and a bias")
                kernel = torch.from_numpy(group[names[0]][()]).permute(3, 2, 0, 1)
                bias = torch.from_numpy(group[names[1]][()])
                if tuple(kernel.shape) != tuple(conv.weight.shape):
                    raise AvlocError(f"{path}: layer {name} kernel {tuple(kernel.shape)}, "
                                     f"expected {tuple(conv.weight.shape)}")
                conv.weight = nn.Parameter(kernel.float().contiguous(), requires_grad=False)
                conv.bias = nn.Parameter(bias.float(), requires_grad=False)
    except OSError as err:
        raise AvlocError(f"{path}: not a readable HDF5 weight file ({first_line(err)})") from None


def _bn(width: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(width)


def conv2plus1d(inp: int, out: int, mid: int, stride: int = 1) -> nn.Sequential:
    """A (2+1)D convolution: 1x3x3 spatial to `mid` channels, BN, ReLU, 3x1x1 temporal."""
    return nn.Sequential(
        nn.Conv3d(inp, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
        _bn(mid), nn.ReLU(inplace=True),
        nn.Conv3d(mid, out, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False),
    )  # fmt: skip


class Block2Plus1D(nn.Module):
    """torchvision's video BasicBlock with (2+1)D convolutions; `mid` keeps the parameter
    count of a full 3x3x3 convolution (Tran et al., Sec. 3.5)."""

    def __init__(self, inp: int, out: int, stride: int = 1) -> None:
        super().__init__()
        mid = (inp * out * 27) // (inp * 9 + 3 * out)
        self.conv1 = nn.Sequential(conv2plus1d(inp, out, mid, stride), _bn(out),
                                   nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv2plus1d(out, out, mid), _bn(out))
        self.downsample: nn.Module | None = None
        if stride != 1 or inp != out:
            self.downsample = nn.Sequential(nn.Conv3d(inp, out, 1, stride, bias=False), _bn(out))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


class R2Plus1D18(nn.Module):
    """R(2+1)D-18 (Kinetics-400): (N, 3, T, 112, 112) -> (N, 512) after the global average
    pool, the release's `nn.Sequential(*children[:-1])` output squeezed."""

    def __init__(self, classes: int = 400) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(3, 45, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False), _bn(45),
            nn.ReLU(inplace=True),
            nn.Conv3d(45, 64, (3, 1, 1), (1, 1, 1), (1, 0, 0), bias=False), _bn(64),
            nn.ReLU(inplace=True),
        )  # fmt: skip
        inp = 64
        for index, width in enumerate((64, 128, 256, 512), 1):
            stride = 1 if index == 1 else 2
            setattr(self, f"layer{index}", nn.Sequential(Block2Plus1D(inp, width, stride),
                                                         Block2Plus1D(width, width)))
            inp = width
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(512, classes)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (N, 64, T, 56, 56)
        for index in range(1, 5):
            x = getattr(self, f"layer{index}")(x)  # layer4: (N, 512, T / 8, 7, 7)
        return torch.flatten(self.avgpool(x), 1)  # (N, 512)
