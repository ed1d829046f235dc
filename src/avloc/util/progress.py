"""Progress output that suits where it goes: carriage-return bars on a terminal; on a log
file or a cluster job's output, where bars become one ever-growing line, plain lines at
intervals instead."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def interactive() -> bool:
    """Bars only when both streams are terminals: tqdm writes to stderr, the epoch lines go
    to stdout, and either may be a file (`> log`, `2> err`, a batch system)."""
    return all(getattr(s, "isatty", lambda: False)() for s in (sys.stdout, sys.stderr))


class Heartbeat:
    """`due()` is true once every `minutes` (never for 0): a line in a log file saying a
    long loop is alive and how far it is, without a bar's carriage returns."""

    def __init__(self, minutes: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every, self.clock = minutes * 60.0, clock
        self.next = clock() + self.every

    def due(self) -> bool:
        if self.every <= 0 or self.clock() < self.next:
            return False
        self.next = self.clock() + self.every
        return True


def eta_text(done: int, total: int, seconds: float) -> str:
    """'3.5 min, about 10.5 min left' from the share done so far."""
    left = seconds / max(done, 1) * (total - done)
    return f"{seconds / 60:.1f} min, about {left / 60:.1f} min left"
