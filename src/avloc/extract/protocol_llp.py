"""`--protocol llp`: features as LLP (Tian, Li and Xu, ECCV 2020) made its release.

Steps and their sources (AVVP-ECCV20 scripts/; docs/extraction.md, "Release protocols"):
- frames: `ffmpeg -i V -r 8` (extract_frames.py): FFmpeg's constant-rate output at 8 fps
  (release_decode.FrameClock.output(8)); for the real clip BjCEufrlXm4 these are the frames
  of the release's own 82 JPEGs (tests/test_release_grid.py), decoded rather than
  JPEG-compressed;
- picks: `round(linspace(0, N - 1, 80))` of the N frames (extract_rgb_feat.py and
  extract_3D_feat.py), 8 T for a video of T seconds (release_grid.linspace_picks);
- ResNet-152 (pretrainedmodels, torchvision's ImageNet weights): PIL resize of the short
  side to 256 (bilinear), centre crop 224, ImageNet mean and std; the 2048-d pool of each
  pick (80 rows for a 10 s clip, the release's res152/<clip>.npy);
- R(2+1)D-18 (torchvision, Kinetics-400): PIL resize to 112 x 112 (bilinear), Kinetics mean
  and std; each 8 consecutive picks are one clip, its 512-d pool one second's feature;
- audio: release_audio.llp_wave and llp_examples, then VGGish (ReLU, no PCA: the release's
  VGGish script is not published, docs/extraction.md says what follows from that).
The .npz's visual is ResNet-152 pooled per second beside R(2+1)D-18, (T, 2560): what the LLP
reader builds of the release's files (setting data.llp_visual's default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from avloc.config.protocols import PROTOCOLS
from avloc.extract.nets import resnet152
from avloc.extract.release_audio import MOVIEPY_RATE, llp_examples, llp_wave
from avloc.extract.release_decode import decode_audio_s16, frame_clock, picked_frames
from avloc.extract.release_extract import release_meta, snippets, vggish, weight_file
from avloc.extract.release_grid import LLP_FPS, LLP_FRAMES_PER_SECOND, linspace_picks
from avloc.extract.release_nets import R2Plus1D18
from avloc.extract.store import Extracted
from avloc.extract.visual import IMAGENET_MEAN, IMAGENET_STD, RESNET_SOURCE, to_tensor
from avloc.extract.weights import load_state_dict

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)  # AVVP-ECCV20 scripts/utils.py
KINETICS_STD = (0.22803, 0.22145, 0.216989)
R2PLUS1D_SOURCE = "torchvision's r2plus1d_18-91a641e6.pth (Kinetics-400), renamed"
CLIP = 8  # picks per R(2+1)D clip: one second


def resnet_crop(image: Any) -> np.ndarray:
    """PIL image -> (224, 224, 3) uint8: Resize(256) (short side, the long one truncated, as
    torchvision computes it) with PIL's bilinear filter, then CenterCrop(224)."""
    from PIL import Image

    width, height = image.size
    short, long = min(width, height), max(width, height)
    size = (256, int(256 * long / short))
    image = image.resize(size if width <= height else size[::-1], Image.BILINEAR)
    width, height = image.size
    top, left = int(round((height - 224) / 2.0)), int(round((width - 224) / 2.0))
    return np.asarray(image.crop((left, top, left + 224, top + 224)))


def clip_frame(image: Any) -> np.ndarray:
    """PIL image -> (112, 112, 3) uint8: Resize((112, 112)), bilinear."""
    from PIL import Image

    return np.asarray(image.resize((112, 112), Image.BILINEAR))


class LlpExtractor:
    protocol = PROTOCOLS["llp"]

    def __init__(self, weights_dir: str | Path | None = None, batch_size: int = 32) -> None:
        self.vggish = vggish(self.protocol, weights_dir)
        path = weight_file(self.protocol, ("resnet152.pth",), RESNET_SOURCE, weights_dir)
        with torch.device("meta"):  # weights come from the files: skip the random init
            self.resnet = resnet152().eval()
            self.r2plus1d = R2Plus1D18().eval()
        load_state_dict(path, self.resnet, "ResNet-152 (torchvision layout)")
        path = weight_file(self.protocol, ("r2plus1d_18.pth",), R2PLUS1D_SOURCE, weights_dir)
        load_state_dict(path, self.r2plus1d, "R(2+1)D-18 (torchvision video layout)")
        self.batch_size = max(CLIP, batch_size // CLIP * CLIP)  # whole clips per batch

    def embed(self, crops: np.ndarray, small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, 224, 224, 3), (B, 112, 112, 3), B a multiple of 8 -> (B, 2048), (B / 8, 512)."""
        with torch.inference_mode():
            rows = self.resnet.pooled(to_tensor(crops, IMAGENET_MEAN, IMAGENET_STD))
            x = to_tensor(small, KINETICS_MEAN, KINETICS_STD)  # (B, 3, 112, 112)
            x = x.view(-1, CLIP, 3, 112, 112).transpose(1, 2)  # (B / 8, 3, 8, 112, 112)
            clips = self.r2plus1d.pooled(x)
        return rows.numpy(), clips.numpy()

    def visual(self, path: Path, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(8 T, 2048) ResNet-152 rows and (T, 512) R(2+1)D-18 clips of the picked frames."""
        def convert(frame: Any) -> tuple[np.ndarray, np.ndarray]:
            image = frame.to_image()  # RGB, as PIL opens the release's JPEGs
            return resnet_crop(image), clip_frame(image)

        rows, clips, batch = [], [], []
        for index, pair in enumerate(picked_frames(path, picks, convert), 1):
            batch.append(pair)
            if len(batch) == self.batch_size or index == len(picks):
                out = self.embed(np.stack([b[0] for b in batch]), np.stack([b[1] for b in batch]))
                rows.append(out[0])
                clips.append(out[1])
                batch = []
        return np.concatenate(rows), np.concatenate(clips)

    def extract(self, path: Path) -> Extracted:
        clock = frame_clock(path)
        frames = clock.output(LLP_FPS)  # (N,) decoded indices of the 8 fps JPEGs
        num = snippets(clock, self.protocol)
        picks = frames[linspace_picks(len(frames), LLP_FRAMES_PER_SECOND * num)]  # (8 T,)
        rows, clips = self.visual(path, picks)  # (8 T, 2048), (T, 512)
        wave, _ = decode_audio_s16(path, MOVIEPY_RATE, 2)  # (S, 2), as moviepy reads it
        audio = self.vggish.patch_embeddings(
            llp_examples(llp_wave(wave, MOVIEPY_RATE, clock.duration), num))  # (T, 128)
        pooled = rows.reshape(num, LLP_FRAMES_PER_SECOND, -1).mean(axis=1)  # (T, 2048)
        visual = np.concatenate([pooled, clips], axis=1)  # (T, 2560)
        meta = release_meta(path, self.protocol, clock, audio, visual, has_audio=len(wave) > 0)
        streams = {"vggish": audio, "res152": rows, "r2plus1d_18": clips}
        return Extracted(audio, visual, meta, streams)
