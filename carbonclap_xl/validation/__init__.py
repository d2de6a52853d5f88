"""Validation of submitted workbooks: the safety gate, the sandbox, the verdict, batches.

The bounds a caller may give the sandbox are here, importable without loading it (the CLI
checks ``--timeout`` and ``--memory-mb`` against them at start-up)."""

MAX_TIMEOUT_S = 86_400.0  # a day: longer would overflow the waits (poll's milliseconds)
MAX_MEMORY_MB = 2**20  # a tebibyte per task: beyond, the address-space cap means nothing
