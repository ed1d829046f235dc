"""avloc: weakly-supervised audio-visual action and event localization.

Implements "Cross-attentional audio-visual fusion for weakly-supervised action
localization" (multi-stage cross attention, open-max classifier, MIL + CASL +
foreground-continuity + pseudo-localization losses). See docs/paper-notes.md.
"""

__version__ = "0.1.0"
