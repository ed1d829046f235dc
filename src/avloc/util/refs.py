"""Table entries that name code as "module:name" (dataset readers, extraction protocols), so
that a table imports nothing until an entry is used."""

from __future__ import annotations

import importlib
from typing import Any


def named(ref: str) -> Any:
    """The function or class a table entry names as "module:name"."""
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)
