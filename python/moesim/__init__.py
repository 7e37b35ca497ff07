"""moesim from Python: routing traces (.moetrace) and results databases.

    import moesim
    t = moesim.open_trace("traces/tinymix_prose.moetrace")   # memory-mapped, zero-copy
    t.experts.shape                                           # (tokens, layers, top_k)
    moesim.write_trace("out.moetrace", experts, n_experts=8)  # atomically, checksummed
    rows = moesim.load_results("results/demo.db")             # one row per run

Needs the standard library and numpy; pandas is used when importable.
Formats: traces/README.md; results columns: docs/results-schema.md.
"""
from .trace import (DECODE, NO_EXPERT, PRECISIONS, PREFILL, Trace, TraceFormatError, checksum, content_hash,
                    open_trace, validate, write_trace)
from .results import COLUMNS, SCHEMA, ResultsError, format_number, load_results

__all__ = ["open_trace", "write_trace", "Trace", "TraceFormatError", "validate", "checksum", "content_hash",
           "NO_EXPERT", "PREFILL", "DECODE", "PRECISIONS",
           "load_results", "ResultsError", "COLUMNS", "SCHEMA", "format_number"]
