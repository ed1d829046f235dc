"""`--protocol ave`: features as AVE (Tian et al., ECCV 2018) made its release.

Steps and their sources (AVE-ECCV18's feature_extractor/, as the fork nakaotatsuya/
AVE-ECCV18 keeps it; docs/extraction.md, "Release protocols"):
- frames: every frame at the stream's own rate, as imageio's ffmpeg reader yields them
  (FFmpeg's constant-rate output at the input rate, release_decode.FrameClock.output);
- picks: 16 per second, `int(l * interval + i / 16 * interval)`, interval = int(N / T)
  (release_grid.ave_frame_picks);
- each pick: cv2.resize of the RGB frame to 224 x 224 (bilinear, no crop), then VGG-19 to
  block5_pool (7, 7, 512); the 16 maps of a second are averaged;
- with Keras's weights (the release's): Keras's `preprocess_input` in caffe mode (RGB to
  BGR, minus the ImageNet BGR means, no scaling); with torchvision's `vgg19.pth`:
  torchvision's ImageNet mean and std on RGB, the input those weights were trained on;
- audio: release_audio.ave_examples, then VGGish's 128-d embedding (ReLU, no PCA).
The .npz's visual is the pool5 map's spatial mean (T, 512), the AVE reader's pooling;
the maps themselves go into the release layout's visual_feature.h5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from avloc.config.protocols import PROTOCOLS
from avloc.extract.release_audio import ave_examples
from avloc.extract.release_decode import decode_audio_s16, frame_clock, picked_frames
from avloc.extract.release_extract import batched, release_meta, snippets, vggish, weight_file
from avloc.extract.release_grid import AVE_FRAMES_PER_SECOND, ave_frame_picks
from avloc.extract.release_nets import VGG19Pool5, load_keras_vgg19
from avloc.extract.store import Extracted
from avloc.extract.visual import IMAGENET_MEAN, IMAGENET_STD, to_tensor
from avloc.extract.weights import load_state_dict, need

KERAS_FILES = ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
               "vgg19_weights_tf_dim_ordering_tf_kernels.h5")  # Keras's names, without/with top
TORCH_FILE = "vgg19.pth"  # torchvision's vgg19-dcbb9e9d.pth, renamed
VGG_SOURCE = "Keras's VGG-19 ImageNet HDF5, the release's, or torchvision's, renamed"
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # Keras preprocess_input, mode "caffe"
SIZE = 224


class AveExtractor:
    protocol = PROTOCOLS["ave"]

    def __init__(self, weights_dir: str | Path | None = None, batch_size: int = 32) -> None:
        self.vggish = vggish(self.protocol, weights_dir)
        path = weight_file(self.protocol, (*KERAS_FILES, TORCH_FILE), VGG_SOURCE, weights_dir)
        self.keras = path.suffix == ".h5"
        self.vgg = VGG19Pool5().eval()
        if self.keras:
            load_keras_vgg19(path, self.vgg)
        else:  # torchvision's whole VGG-19: its classifier is not part of pool5
            load_state_dict(path, self.vgg, "VGG-19 (torchvision layout)", ("classifier.",))
        self.batch_size = max(1, batch_size)

    def inputs(self, images: np.ndarray) -> torch.Tensor:
        """(B, 224, 224, 3) uint8 RGB -> (B, 3, 224, 224) as the weights expect them."""
        if not self.keras:
            return to_tensor(images, IMAGENET_MEAN, IMAGENET_STD)
        x = torch.from_numpy(images[..., ::-1].copy()).permute(0, 3, 1, 2).float()  # BGR
        return x - torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1)

    def pool5(self, images: np.ndarray) -> torch.Tensor:
        return self.vgg(self.inputs(images)).permute(0, 2, 3, 1)  # (B, 7, 7, 512)

    def extract(self, path: Path) -> Extracted:
        cv2 = need("cv2")
        clock = frame_clock(path)
        frames = clock.output()  # (N,) decoded indices: imageio's frames
        num = snippets(clock, self.protocol)
        picks = frames[ave_frame_picks(len(frames), num).ravel()]  # (16 T,)

        def resize(frame: Any) -> np.ndarray:  # cv2.resize's default: INTER_LINEAR
            return cv2.resize(frame.to_ndarray(format="rgb24"), (SIZE, SIZE))

        maps = np.concatenate(list(batched(picked_frames(path, picks, resize),
                                           self.batch_size, self.pool5)))  # (16 T, 7, 7, 512)
        maps = maps.reshape(num, AVE_FRAMES_PER_SECOND, 7, 7, 512).mean(axis=1)  # (T, 7, 7, 512)
        wave, rate = decode_audio_s16(path)  # (S, C) at the file's rate
        audio = self.vggish.patch_embeddings(ave_examples(wave, rate, num))  # (T, 128)
        visual = maps.mean(axis=(1, 2))  # (T, 512)
        meta = release_meta(path, self.protocol, clock, audio, visual, has_audio=len(wave) > 0,
                            vgg19_weights="keras" if self.keras else "torchvision")
        return Extracted(audio, visual, meta, {"audio": audio, "visual": maps})
