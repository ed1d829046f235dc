"""`--shard I/N`: one share of a list of work, for cluster array jobs.

`avloc extract` (videos) and `avloc reproduce` (runs of a grid) share this convention.
Shards count from 1: `--shard 2/4` is the second of four shares, I = 1 ... N, as a Slurm
array declared `--array=1-N` numbers its tasks. Share I holds items I-1, I-1+N, I-1+2N,
... of the work in its fixed order (round robin, so every share mixes early and late
items). `0/N`, the 0-based form, is refused with a hint rather than read as a share.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from avloc.util.errors import AvlocError

Item = TypeVar("Item")
EVERYTHING = (0, 1)  # (zero-based index, count): one share holding all the work


def parse_shard(text: str | None) -> tuple[int, int]:
    """'I/N' with 1 <= I <= N -> (I - 1, N), the share's zero-based index and the count;
    None -> (0, 1), everything."""
    if text is None:
        return EVERYTHING
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    index, count = (int(m.group(1)), int(m.group(2))) if m else (-1, 0)
    if index == 0 and count >= 1:
        raise AvlocError(
            f"--shard {text}: shards count from 1 (1/{count} to {count}/{count}); from a "
            f"0-based array index i, pass $((i + 1))/{count}"
        )
    if not 1 <= index <= count:
        raise AvlocError(f"--shard {text!r}: expected I/N with 1 <= I <= N (the I-th of N "
                         "shares), e.g. --shard 2/4")
    return index - 1, count


def select_shard(items: Sequence[Item], shard: tuple[int, int]) -> list[Item]:
    """The items of one share: round robin over their order."""
    index, count = shard
    return list(items[index::count])


def shard_name(shard: tuple[int, int]) -> str:
    """(index, count) as the user wrote it: 'I/N', counted from 1."""
    return f"{shard[0] + 1}/{shard[1]}"
