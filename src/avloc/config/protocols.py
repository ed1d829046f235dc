"""The benchmark releases' extraction procedures (`avloc extract --protocol NAME`): one entry
per release, and the one list of them.

A protocol reproduces how a release made its feature files (frames, audio framing,
networks, pooling), so that a model trained on the release's features can localize a
user's own videos. Like config.formats, this table imports nothing: the CLI lists the
names and the settings check `data.feature_protocol` without loading a network; the
extractors it names live in avloc/extract/.
Each protocol's steps, with their sources, are in docs/extraction.md ("Release protocols").
"""

from __future__ import annotations

from dataclasses import dataclass

from avloc.util.errors import AvlocError


@dataclass(frozen=True)
class Protocol:
    name: str  # the value of --protocol and of setting data.feature_protocol
    about: str  # one line: which release, which networks
    snippet_seconds: float  # the release's snippet grid
    audio_dim: int
    visual_dim: int
    weights: tuple[str, ...]  # files looked for in --weights DIR / $AVLOC_WEIGHTS
    extractor: str  # "module:Class", built as Class(weights_dir, batch_size)
    # (feat_stride, num_frames): features every feat_stride frames of num_frames each at the
    # video's own rate, so each video has its own grid (data/thumos.py, frame_timing) and
    # snippet_seconds is nominal; None: the fixed snippet_seconds grid
    frame_window: tuple[int, int] | None = None


PROTOCOLS = {p.name: p for p in (
    Protocol("ave", "AVE (AVE-ECCV18): VGGish 128-d per second, VGG-19 pool5 7x7x512 per "
             "second (16 frames averaged)", 1.0, 128, 512,
             ("vggish.pth", "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 or vgg19.pth"),
             "avloc.extract.protocol_ave:AveExtractor"),
    Protocol("llp", "LLP (AVVP-ECCV20): VGGish 128-d per second; ResNet-152 2048-d at 8 fps "
             "pooled per second + R(2+1)D-18 512-d per second", 1.0, 128, 2560,
             ("vggish.pth", "resnet152.pth", "r2plus1d_18.pth"),
             "avloc.extract.protocol_llp:LlpExtractor"),
    Protocol("wtalc", "W-TALC (ActivityNet 1.2, THUMOS'14): I3D RGB+flow 2048-d per 16 "
             "frames at 25 fps (TV-L1), VGGish 128-d on the same 0.64 s grid", 0.64, 128, 2048,
             ("vggish.pth", "rgb_imagenet.pt", "flow_imagenet.pt"),
             "avloc.extract.protocol_i3d:WtalcExtractor"),
    Protocol("actionformer", "ActionFormer (THUMOS'14): I3D RGB+flow 2048-d per 16 frames "
             "every 4 at the video's rate (TV-L1), no audio", 4 / 30, 0, 2048,
             ("rgb_imagenet.pt", "flow_imagenet.pt"),
             "avloc.extract.protocol_i3d:ActionformerExtractor", frame_window=(4, 16)),
)}


def get_protocol(name: str) -> Protocol:
    """The protocol `name`, or one line listing the known ones."""
    if name not in PROTOCOLS:
        raise AvlocError(f"unknown feature protocol {name!r} (choose from "
                         f"{', '.join(PROTOCOLS)})")
    return PROTOCOLS[name]
