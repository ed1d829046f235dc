"""Batches for training: pair sampling for CASL, padding, masks and crops, prefetching.

The batch order is a pure function of (seed, epoch): resuming a run only needs the
epoch and the batch index, and every process of a distributed run computes the same
global batches and takes its own slice (`load_share`). On a GPU a helper thread
assembles the next batch while the device runs this one (`BatchPrefetcher`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields

import numpy as np
import torch

from avloc.data.base import Video


@dataclass
class Batch:
    audio: torch.Tensor  # (B, L, D_a)
    visual: torch.Tensor  # (B, L, D_v)
    mask: torch.Tensor  # (B, L) bool, True on real snippets
    labels: torch.Tensor  # (B, C) video-level multi-hot; the only supervision
    # (K,) the classes two or more of these videos hold: the only ones CASL can score,
    # known here on the host, so the loss selects them without a device sync
    casl_classes: torch.Tensor
    # the recipes' targets (Video.modality_labels, Video.snippet_targets), when the videos
    # carry them: (B, 2, C) float; (B, L) long, -1 on padding and unlabelled snippets
    modality_labels: torch.Tensor | None = None
    snippet_targets: torch.Tensor | None = None

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Batch:
        """On `device` (non-blocking on CUDA); floating tensors in `dtype` when given."""
        nb = torch.device(device).type == "cuda"
        return self.map(lambda t: t.to(device, dtype if dtype and t.is_floating_point() else None,
                                       non_blocking=nb))

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        return Batch(*(None if (t := getattr(self, f.name)) is None else fn(t)
                       for f in fields(self)))


BUCKET_BATCHES = 16  # bucket: videos sorted by length within chunks of this many batches
PAIR_CANDIDATES = 8  # bucket: classes tried for each CASL pair


class PairBatchSampler:
    """Batches of video indices whose first 2P entries are P pairs sharing a class.

    W-TALC's CASL needs videos with a common class in each batch; the rest of the batch
    walks through a fresh permutation of the training set every epoch. With `bucket`, the
    permutation is sorted by length within chunks of BUCKET_BATCHES batches (and the
    batches shuffled), so a batch holds videos of similar lengths, and its pairs are of
    classes with two videos of about the batch's median length (`_pair`).
    """

    def __init__(
        self, videos: Sequence[Video], batch_size: int, pairs: int, seed: int, groups: int = 1,
        bucket: bool = False,
    ):
        """batch_size and pairs are per group; a distributed run has one group per process,
        each group a contiguous slice of the global batch with its own pairs."""
        self.n = len(videos)
        self.batch_size = batch_size
        self.seed = seed
        self.groups = groups
        self.lengths = np.array([v.length for v in videos])  # (N,)
        self.bucket = bucket
        by_class: dict[int, list[int]] = defaultdict(list)
        for i, v in enumerate(videos):
            for c in np.flatnonzero(v.labels):
                by_class[int(c)].append(i)
        self.by_class = {c: np.array(ix) for c, ix in sorted(by_class.items()) if len(ix) >= 2}
        self.pairs = min(pairs, batch_size // 2) if self.by_class else 0
        self.fill = max(batch_size - 2 * self.pairs, 1)

    def __len__(self) -> int:
        return math.ceil(self.n / (self.fill * self.groups))

    def epoch(self, epoch: int) -> list[list[np.ndarray]]:
        """All batches of one epoch, deterministic in (seed, epoch): per batch, one index
        array per group."""
        rng = np.random.default_rng([self.seed, epoch])
        perm = rng.permutation(self.n)
        if self.bucket:
            perm = self._bucketed(perm, rng)
        classes = list(self.by_class)
        batches = []
        for b in range(len(self)):
            groups = []
            for g in range(self.groups):
                at = (b * self.groups + g) * self.fill
                rest = perm[at:at + self.fill]
                paired = []
                for _ in range(self.pairs):
                    paired.extend(self._pair(classes, rest, rng))
                if not paired and len(rest) == 0:  # a process past the end of the epoch:
                    rest = perm[np.arange(at, at + self.fill) % self.n]  # wrap, never empty
                groups.append(np.concatenate([np.array(paired, dtype=np.int64), rest]))
            batches.append(groups)
        return batches

    def _bucketed(self, perm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The permutation sorted by length within chunks, batches in a random order."""
        step = self.fill * self.groups  # videos of one global batch
        chunk = step * BUCKET_BATCHES
        perm = np.concatenate([c[np.argsort(self.lengths[c], kind="stable")]
                               for c in np.split(perm, range(chunk, self.n, chunk))])
        order = rng.permutation(len(self))
        return np.concatenate([perm[b * step:(b + 1) * step] for b in order])

    def _pair(self, classes: list[int], rest: np.ndarray, rng: np.random.Generator
              ) -> np.ndarray:
        """Two videos of one class: of a random class, at random; or (bucket) of the class
        among PAIR_CANDIDATES random ones whose two videos closest in length to the batch's
        median are closest to it."""
        if not self.bucket or not len(rest):
            members = self.by_class[classes[rng.integers(len(classes))]]
            return rng.choice(members, size=2, replace=False)
        median = np.median(self.lengths[rest])
        best, best_gap = None, np.inf
        for c in rng.choice(classes, size=min(PAIR_CANDIDATES, len(classes)), replace=False):
            members = self.by_class[int(c)]
            gap = np.abs(self.lengths[members] - median)  # (M,)
            two = np.argsort(gap, kind="stable")[:2]
            if gap[two].max() < best_gap:
                best, best_gap = members[two], gap[two].max()
        return best


def crop_window(length: int, max_len: int, rng: np.random.Generator | None) -> slice:
    """A random window of max_len snippets for training; the whole video otherwise."""
    if length <= max_len or rng is None:
        return slice(0, length)
    start = int(rng.integers(0, length - max_len + 1))
    return slice(start, start + max_len)


def collate(
    videos: Sequence[Video], max_len: int | None = None,
    rngs: Sequence[np.random.Generator] | None = None,
) -> Batch:
    """Pad videos of different lengths into one batch; crop to max_len when rngs (one per
    video) are given, so a video's crop does not depend on which batch or process holds it."""
    rngs = rngs if rngs is not None else [None] * len(videos)
    windows = [crop_window(v.length, max_len or v.length, r)
               for v, r in zip(videos, rngs, strict=True)]
    lengths = [w.stop - w.start for w in windows]
    L = max(lengths)
    B = len(videos)
    audio = torch.zeros(B, L, videos[0].audio.shape[1])
    visual = torch.zeros(B, L, videos[0].visual.shape[1])
    mask = torch.zeros(B, L, dtype=torch.bool)
    for i, (v, w, n) in enumerate(zip(videos, windows, lengths, strict=True)):
        audio[i, :n] = torch.from_numpy(v.audio[w])
        visual[i, :n] = torch.from_numpy(v.visual[w])
        mask[i, :n] = True
    labels = np.stack([v.labels for v in videos])
    shared = torch.from_numpy(np.flatnonzero((labels > 0).sum(0) >= 2))
    modality = snippets = None
    if videos[0].modality_labels is not None:
        modality = torch.from_numpy(np.stack([v.modality_labels for v in videos])).float()
    if videos[0].snippet_targets is not None:
        snippets = torch.full((B, L), -1, dtype=torch.long)
        for i, (v, w, n) in enumerate(zip(videos, windows, lengths, strict=True)):
            snippets[i, :n] = torch.from_numpy(np.asarray(v.snippet_targets[w], np.int64))
    return Batch(audio, visual, mask, torch.from_numpy(labels).float(), shared, modality,
                 snippets)


def crop_length(videos: Sequence[Video], groups: list[np.ndarray], batching: str,
                max_seqlen: int) -> int:
    """Snippets each training video of a global batch (`groups`: every process's indices)
    is cropped to: data.max_seqlen, or with `shortest` the batch's shortest video (no
    padding at all; computed over the global batch, so every process crops alike)."""
    if batching != "shortest":
        return max_seqlen
    return min(max_seqlen, min(videos[i].length for g in groups for i in g))


def load_share(
    videos: Sequence[Video], mine: np.ndarray, seed: int, epoch: int, max_len: int,
    pin: bool = False,
) -> Batch:
    """One process's share `mine` (indices into `videos`) of a global training batch, on
    the CPU, longer videos cropped to `max_len` snippets (`crop_length`) at a random
    window; each video's window is drawn by a generator of (seed, epoch, video), so it
    does not depend on the process that holds it. `pin`: in page-locked memory, so that
    the copy to a CUDA device does not wait for the device."""
    crops = [np.random.default_rng([seed, epoch, int(i)]) for i in mine]
    batch = collate([videos[i] for i in mine], max_len, crops)
    return batch.map(torch.Tensor.pin_memory) if pin else batch


class BatchPrefetcher:
    """Batches by (epoch, index), assembled ahead in a helper thread when `ahead` (GPU
    training) or on request otherwise. `load(epoch, groups)` builds one batch."""

    def __init__(self, load: Callable[[int, list[np.ndarray]], Batch], ahead: bool) -> None:
        self.load = load
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="avloc-batch") if ahead else None
        self.pending: dict[tuple[int, int], Future] = {}

    def prefetch(self, epoch: int, index: int, batches: list[list[np.ndarray]]) -> None:
        """Start assembling batch `index` of the epoch's `batches` (when there is one)."""
        if self.pool is not None and index < len(batches):
            self.pending[(epoch, index)] = self.pool.submit(self.load, epoch, batches[index])

    def get(self, epoch: int, index: int, groups: list[np.ndarray]) -> Batch:
        """Batch `index` (whose groups are `groups`): the prefetched one, or built now."""
        ready = self.pending.pop((epoch, index), None)
        return ready.result() if ready is not None else self.load(epoch, groups)

    def forget(self) -> None:
        """Drop batches assembled ahead (a replay goes back to earlier ones)."""
        self.pending = {}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
