"""Small helpers every layer may use; they import nothing else of avloc.

- errors.py     AvlocError (the one-line message users see), first_line, plural
- io.py         atomic writes, strict JSON, load_npy (pickled .npy without running code)
- progress.py   bars on a terminal, plain lines in a log file
- signals.py    SIGINT / SIGTERM as a stop request at the next safe point
- sharding.py   --shard I/N, counted from 1
- cpus.py       the CPU threads torch uses (train.threads, affinity, cgroup quota)
- profiling.py  peak CPU bytes, for benchmarks and memory tests
- refs.py       "module:name" references in tables, imported when used
"""
