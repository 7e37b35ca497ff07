"""Results databases from Python: one row per complete run, fixed columns.

load_results(db) returns the columns of docs/results-schema.md, in that order,
for every database: the same table `moesim results export --csv` writes (that
equality is tested cell for cell, tests/python/test_results.py). The database is
opened read-only (never created or written) and checked for damage first, as
the C reader does (core/results.c, moe_db_open_readonly).
"""
import os
import re
import sqlite3
from urllib.parse import quote

def _metrics(*names):
    return tuple((n, "metric", n, "real") for n in names)


# (column, source, key, type): the list of core/results_schema.def, which the
# tests compare with this one entry for entry. source: run / trace (a column
# of that table), config (a run_config key), metric (a metrics name), and the
# catch-alls other_config / other_metrics.
SCHEMA = (
    ("id", "run", "id", "integer"),
    ("experiment", "run", "experiment", "text"),
    ("trace", "trace", "path", "text"),
    ("trace_hash", "run", "trace_hash", "text"),
    ("trace_model", "trace", "model", "text"),
    ("trace_layers", "trace", "layers", "integer"),
    ("trace_experts", "trace", "experts", "integer"),
    ("trace_top_k", "trace", "top_k", "integer"),
    ("trace_steps", "trace", "steps", "integer"),
    ("trace_tokens", "trace", "tokens", "integer"),
    ("config_hash", "run", "config_hash", "text"),
    ("kind", "config", "kind", "text"),
    ("policy", "config", "policy", "text"),
    ("capacity", "config", "capacity", "integer"),
    ("capacity_bytes", "config", "capacity_bytes", "integer"),
    ("capacity_frac", "config", "capacity_frac", "real"),
    ("scope", "config", "scope", "text"),
    ("cold_per_seq", "config", "cold_per_seq", "integer"),
    ("seed", "config", "seed", "integer"),
    ("device", "config", "device", "text"),
    ("model", "config", "model", "text"),
    ("precision", "config", "precision", "text"),
    ("prefetch", "config", "prefetch", "text"),
    ("skip", "config", "skip", "text"),
    ("speculate", "config", "speculate", "integer"),
    ("on_miss", "config", "on_miss", "text"),
    ("split", "config", "split", "text"),
    ("load_state", "config", "load_state", "text"),
    ("stream_dense", "config", "stream_dense", "integer"),
    ("dense_bytes", "config", "dense_bytes", "integer"),
    ("validation", "config", "validation", "text"),
    ("io", "config", "io", "text"),
    ("io_threads", "config", "io_threads", "integer"),
    ("threads", "config", "threads", "integer"),
    ("text", "config", "text", "text"),
    ("constraint", "config", "constraint", "text"),
    ("configuration", "config", "configuration", "text"),
    ("generate", "config", "generate", "integer"),
    ("prompt_bytes", "config", "prompt_bytes", "integer"),
    ("analysis", "config", "analysis", "text"),
    ("m", "config", "m", "text"),
    ("rho", "config", "rho", "text"),
    ("seq_len", "config", "seq_len", "integer"),
    ("other_config", "other_config", "", "text"),
    ("code_version", "run", "code_version", "text"),
    ("host", "run", "host", "text"),
    ("started_at", "run", "started_at", "text"),
    ("finished_at", "run", "finished_at", "text"),
    ("seconds", "run", "seconds", "real"),
    *_metrics(
        "accesses", "hits", "misses", "hit_rate", "compulsory_misses", "bypasses", "evictions", "restarts",
        "token_slots", "token_slot_hits", "token_slot_hit_rate", "total_s", "tok_s", "ttft_mean_s", "tpot_mean_s",
        "tpot_p50_s", "tpot_p99_s", "compute_s", "dense_s", "expert_s", "stall_s", "stall_miss_s",
        "stall_late_prefetch_s", "io_utilisation", "sequences", "decode_steps", "decode_tokens", "bytes_read",
        "bytes_demand", "bytes_prefetch", "reads_demand", "reads_prefetch", "bytes_dense", "reads_dense",
        "stall_dense_s", "prefetch_precision",
        "prefetch_recall", "prefetch_recall_k", "prefetch_predicted", "prefetch_correct", "prefetch_issued",
        "prefetch_bypassed", "prefetch_useful", "prefetch_late", "prefetch_evicted_unused", "prefetch_unused_end",
        "collision_misses", "prefetch_wasted_bytes", "spec_executed", "spec_hits", "spec_wasted", "spec_hidden_s",
        "spec_wasted_s", "skipped_slots", "skipped_activations", "skipped_gate_mass", "substituted_slots",
        "lowbit_slots", "lowbit_activations", "effective_bits_active", "effective_bits_model",
        *(f"tier_{p}_{what}" for p in ("f32", "f16", "q8", "q4", "q3", "q2")
          for what in ("experts", "activations", "bytes_read"))),
    # the metric is named like the config key capacity_bytes; the column is not
    ("effective_capacity_bytes", "metric", "capacity_bytes", "real"),
    *_metrics("nats_per_byte", "nats_per_byte_full", "delta_nats_per_byte", "kl_mean", "top1_agreement", "expert_bytes",
              "first_divergence", "repetition", "repetition_full", "tok_s_full"),
    *_metrics("tokens", "entropy_bits_mean", "entropy_norm_mean", "gini_mean", "top1_share_mean", "top2_share_mean",
              "topk_share_mean", "topq_share_mean", "lookahead_precision", "lookahead_recall", "lru_mrc_exact_from"),
    ("other_metrics", "other_metrics", "", "text"),
)

COLUMNS = tuple(c[0] for c in SCHEMA)
TYPES = {c[0]: c[3] for c in SCHEMA}

_SCHEMA_VERSION = 2  # core/results.c SCHEMA_VERSION: newer databases are refused
_FULL_CHECK_MAX = 32 << 20  # above this, quick_check instead of integrity_check (as the C reader)
_INT = re.compile(r"-?[0-9]+\Z")


class ResultsError(ValueError):
    """A results database that cannot be read; the message starts with its path."""


def format_number(v):
    """A float as `moesim results export` writes it: the shorter of %.15g and
    %.17g that reads back as the same value."""
    s = "%.15g" % v
    return s if float(s) == v else "%.17g" % v


def _connect(path):
    """Read-only; WAL files on read-only media reopened immutable (as C)."""
    if not os.path.exists(path):
        raise ResultsError(f"{path}: cannot open database: No such file or directory")
    uri = "file:" + quote(os.path.abspath(path))
    try:
        con = sqlite3.connect(uri + "?mode=ro", uri=True)
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as e:
        if "unable to open" not in str(e) and "readonly" not in str(e) and "read-only" not in str(e):
            raise ResultsError(f"{path}: cannot read database: {e}") from None
        con = sqlite3.connect(uri + "?immutable=1", uri=True)
    except sqlite3.DatabaseError as e:
        raise ResultsError(f"{path}: cannot read database: {e}") from None
    try:
        check = "quick_check" if os.path.getsize(path) > _FULL_CHECK_MAX else "integrity_check"
        msg = con.execute(f"PRAGMA {check}(2)").fetchone()[0]
        if msg != "ok":
            raise ResultsError(f"{path}: the database is damaged ({check}: {msg}); run `moesim results check "
                               f"--db {path}` and `moesim results recover --db {path} -o NEW.db`")
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > _SCHEMA_VERSION:
            raise ResultsError(f"{path}: results schema version {version} is newer than this reader's "
                               f"({_SCHEMA_VERSION})")
        n = con.execute("SELECT count(*) FROM sqlite_master WHERE name IN ('runs', 'run_summary')").fetchone()[0]
        if n != 2:
            raise ResultsError(f"{path}: not a moesim results database")
    except sqlite3.DatabaseError as e:
        con.close()
        raise ResultsError(f"{path}: cannot read database: {e}") from None
    except ResultsError:
        con.close()
        raise
    return con


def load_results(db_path, experiment=None, frame=None):
    """The complete runs of a results database, one row per run, in id order.

    experiment: only the runs of that experiment. frame: None returns a pandas
    DataFrame when pandas is importable, else a list of dicts; True / False
    force one or the other. Columns: COLUMNS (docs/results-schema.md); a
    value the run does not have is None (NaN / <NA> in a DataFrame). Types:
    integer -> int, real -> float, text -> str; a stored value that is not of
    its column's type raises ResultsError naming the run and column."""
    path = os.fspath(db_path)
    con = _connect(path)
    try:
        rows = _read(con, path, experiment)
    except sqlite3.DatabaseError as e:
        raise ResultsError(f"{path}: cannot read database: {e}") from None
    finally:
        con.close()
    if frame is False:
        return rows
    try:
        import pandas
    except ImportError:
        if frame:
            raise
        return rows
    return _to_frame(pandas, rows)


def _read(con, path, experiment):
    direct = [(i, c) for i, c in enumerate(SCHEMA) if c[1] in ("run", "trace")]
    select = ", ".join(f'{"r" if c[1] == "run" else "t"}."{c[2]}"' for _, c in direct)
    column_of = {(c[1], c[2]): c[0] for c in SCHEMA if c[1] in ("config", "metric")}
    chosen = "r.status = 'done' AND (?1 IS NULL OR r.experiment = ?1)"
    runs = con.execute(f"SELECT r.id, {select} FROM runs r LEFT JOIN traces t ON t.hash = r.trace_hash "
                       f"WHERE {chosen} ORDER BY r.id", (experiment,)).fetchall()
    # config and metrics of all those runs in two queries, not two per run
    extra = {r[0]: ([], []) for r in runs}
    for which, table, key in ((0, "run_config", "key"), (1, "metrics", "name")):
        for run_id, k, value in con.execute(f"SELECT x.run_id, x.{key}, x.value FROM {table} x JOIN runs r ON "
                                            f"r.id = x.run_id WHERE {chosen} ORDER BY x.run_id, x.{key}",
                                            (experiment,)):
            extra[run_id][which].append((k, value))
    out = []
    for r in runs:
        row = dict.fromkeys(COLUMNS)
        for (_, c), v in zip(direct, r[1:]):
            row[c[0]] = _typed(path, r[0], c[0], v)
        other_config, other_metrics = [], []
        config, metrics = extra[r[0]]
        for key, value in config:
            col = column_of.get(("config", key))
            if col is None:
                other_config.append(f"{key}={value}")
            else:
                row[col] = _typed(path, r[0], col, value)
        for name, value in metrics:
            col = column_of.get(("metric", name))
            if col is None:
                other_metrics.append(f"{name}={'' if value is None else format_number(value)}")
            else:
                row[col] = _typed(path, r[0], col, value)
        # as the export writes them: config lines hold no newline, metric names no ';'
        row["other_config"] = "\n".join(other_config) or None
        row["other_metrics"] = ";".join(other_metrics) or None
        out.append(row)
    return out


def _typed(path, run_id, col, v):
    if v is None:
        return None
    t = TYPES[col]
    if t == "text":
        return str(v)
    if t == "integer":
        if isinstance(v, int):
            return v
        if isinstance(v, str) and _INT.match(v):
            return int(v)
    elif isinstance(v, (int, float)) or isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
    raise ResultsError(f"{path}: run {run_id}: column {col} ({t}): stored value {v!r} is not one")


def _to_frame(pandas, rows):
    df = pandas.DataFrame(rows, columns=list(COLUMNS))
    for col, t in TYPES.items():
        if t == "integer":
            try:
                df[col] = df[col].astype("Int64")
            except (OverflowError, TypeError, ValueError):
                pass  # a value beyond int64 (a u64 seed): the column keeps exact Python ints
        elif t == "real":
            df[col] = df[col].astype("float64")
    return df
