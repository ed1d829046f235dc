"""What some settings' values mean, parsed here, where the settings are checked.

- `eval.tiou`: "START:STOP:STEP" (STOP included) or a comma list -> thresholds;
- `train.select_metric`: the numbers a parsing evaluation produces, as "LEVEL.NAME".
"""

from __future__ import annotations

import numpy as np

from avloc.util.errors import AvlocError

# the LLP protocol's numbers at each level (its official code's five; avloc.scoring.metrics
# .parsing computes them), selectable as train.select_metric "LEVEL.NAME"
PARSING_LEVELS = ("segment_level", "event_level")
PARSING_SUMMARIES = ("audio", "visual", "audio_visual", "type_av", "event_av")
PARSING_METRICS = tuple(f"{level}.{name}" for level in PARSING_LEVELS
                        for name in PARSING_SUMMARIES)


def parse_tiou(text: str, where: str = "setting eval.tiou") -> np.ndarray:
    """tIoU thresholds from "START:STOP:STEP" (STOP included) or "a,b,c".

    A range is `np.linspace(START, STOP, n)`, the form the official code uses, so the
    default "0.5:0.95:0.05" is bit-identical to its `np.linspace(0.5, 0.95, 10)`.
    """
    text = str(text).strip()
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            n = round((stop - start) / step) + 1 if step > 0 else 0
            if n < 1 or abs(start + (n - 1) * step - stop) > 1e-9:
                raise ValueError
            values = np.linspace(start, stop, n)
        else:
            values = np.array([float(x) for x in text.split(",")])
    except ValueError:
        raise AvlocError(f"{where}={text!r}: expected START:STOP:STEP (e.g. 0.1:0.7:0.1, STOP "
                         "reached by whole steps) or a comma list (e.g. 0.3,0.5,0.7)") from None
    if not np.all((values > 0) & (values <= 1)) or len(set(values.tolist())) != len(values):
        raise AvlocError(f"{where}={text!r}: thresholds must be distinct, in (0, 1]")
    return values
