"""SIGINT and SIGTERM (Ctrl-C, a cluster scheduler's stop), handled in one place.

- `stop_requests()`: training sets a flag and stops cleanly at the next batch, after
  saving; a second signal stops at once (checkpoints are atomic either way).
- `terminate_as_interrupt()`: a process that only runs others (the grid runner) treats
  SIGTERM like Ctrl-C, a KeyboardInterrupt.

Python installs handlers only in the main thread; elsewhere both leave signals alone.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

Handler = Callable[[int, FrameType | None], Any]


class StopRequested(Exception):
    """A signal asked a loop to stop (`stop_requests`); it saved what a resume needs."""


@contextmanager
def handling(signals: Sequence[signal.Signals], handler: Handler) -> Iterator[None]:
    """`handler` for `signals` while the block runs; the previous handlers afterwards."""
    old = {}
    try:
        for s in signals:
            old[s] = signal.signal(s, handler)
    except ValueError:  # not the main thread: no signal handling
        pass
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def stop_requests() -> Iterator[dict[str, bool]]:
    """SIGINT/SIGTERM set `flag["stop"]`; the training loop saves at the next batch and
    stops. A second signal (Ctrl-C pressed twice during a long validation) raises
    KeyboardInterrupt at once: checkpoints are written atomically, so the last one is
    intact either way."""
    flag = {"stop": False}

    def request(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True

    with handling((signal.SIGINT, signal.SIGTERM), request):
        yield flag


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does."""

    def interrupt(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        raise KeyboardInterrupt

    with handling((signal.SIGTERM,), interrupt):
        yield
