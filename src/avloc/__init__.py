"""avloc: weakly-supervised audio-visual action and event localization.

Implements "Cross-attentional audio-visual fusion for weakly-supervised action
localization" (multi-stage cross attention, open-max classifier, MIL + CASL +
foreground-continuity + pseudo-localization losses). See docs/paper-notes.md.
"""

import os

__version__ = "0.1.0"

# Large CPU tensors on transparent huge pages: without a page fault per 4 KiB, passes
# over (B, L, d_x) activations run 1.3-3.5x faster, a training step 1.1-1.4x (docs/benchmarks.md).
# torch reads this once, at its first allocation; a value the user set wins.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
