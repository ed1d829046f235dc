"""Reproduce the paper's experiments: grids of variants x seeds, tables and figures.

- grid.py     grid YAML -> runs (variant x seed) with their settings, all checked up front
- runner.py   train the runs: resumable, in worker processes (--jobs), sharded (--shard)
- tables.py   mean ± std tables: report.md and report.json
- paper.py    the paper's own numbers (Tables 1, 2, 4, 5)
- figures.py  class activation sequences, training curves, attention maps
- reproduce.py  `avloc reproduce`, tying them together

See docs/reproduce.md.
"""
