"""TV-L1 optical flow as the I3D feature releases made it: dense_flow's conventions, so the
flow stream of avloc's I3D sees what the released flow features saw.

References:
- C. Zach, T. Pock, H. Bischof, "A Duality Based Approach for Realtime TV-L1 Optical
  Flow", DAGM 2007; OpenCV's cv2.optflow.DualTVL1OpticalFlow (opencv-contrib).
- yjxiong/dense_flow: src/common.cpp (convertFlowToImage: clip to [-bound, bound], then
  cvRound(255 * (v + bound) / (2 * bound)) into a uint8 JPEG), src/dense_flow_gpu.cpp and
  src/dense_flow.cpp (grayscale via COLOR_BGR2GRAY, flow from each frame to the next),
  build_of.py (the command the TSN/I3D pipelines ran: extract_gpu -b=20 -t=1 -s=1, i.e.
  bound 20, TV-L1, every frame).
- Finspire13/pytorch-i3d-feature-extraction, extract_features.py: flow JPEG values v go to
  the network as v * 2 / 255 - 1, the x image as channel 0 and y as channel 1.

Documented (read in those files): bound 20, the clip and linear uint8 map with
round-half-even (cvRound), the unit map, x before y, flow k from frame k to k + 1. dense_flow
also writes only frames 1..N-1 as img_*.jpg, so the feature script pairs RGB frame k + 1
with flow k and both lists are N - 1 long.

Inferred / not reproduced: build_of.py ran OpenCV's CUDA TV-L1 (cv::cuda::
OpticalFlowDual_TVL1), whose parameters differ from this CPU one (one iteration count, no
median filtering), so values agree in kind, not bit for bit; the JPEG compression of the flow
images is not applied; the frame size the flow was computed at is not in those files (the
feature script's load_frame resizes every image to 340x256; the I3D protocols compute the
flow at that size, extract/protocol_i3d.py).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from avloc.extract.weights import need
from avloc.util.errors import AvlocError

BOUND = 20.0  # dense_flow's -b=20 in build_of.py: pixels of displacement kept
CONTRIB_PACKAGE = "opencv-contrib-python-headless"


def optflow_cv2() -> ModuleType:
    """cv2 with its contrib `optflow` module, or a one-line AvlocError naming the package."""
    cv2 = need("cv2")
    if not hasattr(cv2, "optflow"):
        raise AvlocError(
            f"TV-L1 flow needs cv2.optflow from {CONTRIB_PACKAGE}: pip install "
            f"{CONTRIB_PACKAGE} (uninstall opencv-python / opencv-python-headless first: "
            "they shadow it)"
        )
    return cv2


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB -> (N, H, W) uint8, OpenCV's luma weights (what
    COLOR_BGR2GRAY gives on dense_flow's BGR frames)."""
    cv2 = need("cv2")
    return np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in rgb])


class Tvl1:
    """One TV-L1 object with OpenCV's defaults for a whole video, as dense_flow creates it.

    Flow k maps frame k to frame k + 1: frame_k(y, x) ~ frame_k+1(y + dy, x + dx), so
    motion to the right is positive x.
    """

    def __init__(self) -> None:
        self.tvl1 = optflow_cv2().optflow.DualTVL1OpticalFlow_create()

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """(H, W) uint8, (H, W) uint8 -> (H, W, 2) float32 displacement in pixels, x then y."""
        return self.tvl1.calc(prev, nxt, None).astype(np.float32)


def raw_flow(gray: np.ndarray) -> np.ndarray:
    """(N, H, W) uint8 -> (N - 1, H, W, 2) float32 displacement in pixels (Tvl1's)."""
    tvl1 = Tvl1()
    if gray.ndim != 3 or gray.dtype != np.uint8 or len(gray) < 2:
        raise ValueError(f"expected (N >= 2, H, W) uint8 frames, got {gray.shape} {gray.dtype}")
    return np.stack([tvl1(gray[k], gray[k + 1]) for k in range(len(gray) - 1)])


def flow_to_uint8(flow: np.ndarray, bound: float = BOUND) -> np.ndarray:
    """Pixels -> the uint8 of dense_flow's flow JPEGs: clip to [-bound, bound], map
    linearly onto [0, 255], round half to even (cvRound). Zero flow becomes 128."""
    scaled = 255.0 * (np.clip(flow, -bound, bound) + bound) / (2.0 * bound)
    return np.rint(scaled).astype(np.uint8)


def uint8_to_unit(values: np.ndarray) -> np.ndarray:
    """uint8 flow (or RGB) -> float32 in [-1, 1] as the feature script feeds I3D: v/255*2-1.

    Zero flow (128) becomes +1/255, not 0, as in the releases."""
    return (values.astype(np.float32) / 255.0 * 2.0 - 1.0).astype(np.float32)


def tvl1_flow(gray: np.ndarray, bound: float = BOUND) -> np.ndarray:
    """(N, H, W) uint8 grayscale -> (N - 1, H, W, 2) float32 in [-1, 1], x then y: TV-L1
    between consecutive frames, quantised to uint8 as the releases stored it, then unit
    scaled as they read it back (so one pixel of motion is about 1/bound)."""
    return uint8_to_unit(flow_to_uint8(raw_flow(gray), bound))
