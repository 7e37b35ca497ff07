/* results.h: the SQLite results store.
 *
 * A run is identified by (trace hash, config hash), where the config hash is
 * the SHA-256 of the canonical config text (one "key=value" line per setting,
 * keys sorted, policy in canonical form). Storing a run is one transaction:
 * a run row is either absent or complete with all its metrics, so a sweep
 * killed at any point and started again redoes only runs that are absent.
 *
 * Tables (see results.c for the DDL): traces, runs, metrics, layer_metrics,
 * curves, expectations, sequence_counts (schema 2: per-sequence accesses and
 * hits of a run, absent for runs stored before), plus run_config (the config text split into key/value
 * rows, for SQL filters) and the view run_summary (one row per run with
 * policy, capacity, scope and hit rate, what plots and listings read). */
#ifndef MOE_RESULTS_H
#define MOE_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "trace.h"

typedef struct moe_db moe_db;

typedef struct moe_metric {
    const char *name;
    double value;
} moe_metric;

typedef struct moe_layer_metric {
    uint32_t layer;
    const char *name;
    double value;
} moe_layer_metric;

typedef struct moe_curve_point {
    const char *curve; /* e.g. "warmup_hit_rate" */
    double x, y;
} moe_curve_point;

/* One sequence's counts in a run (the bootstrap's unit, core/bootstrap.h):
 * seq = its ordinal in the trace (0, 1, ...), seq_id = the trace's id. */
typedef struct moe_seq_count {
    uint32_t seq_id;
    uint64_t accesses, hits;
} moe_seq_count;

typedef struct moe_run_record {
    const char *experiment;  /* free text, "" for ad-hoc runs */
    const char *trace_hash;  /* from moe_db_add_trace */
    const char *config_text; /* canonical; hashed into config_hash */
    double seconds;          /* wall time of the run */
    const moe_metric *metrics;
    size_t n_metrics;
    const moe_layer_metric *layer_metrics;
    size_t n_layer_metrics;
    const moe_curve_point *curve;
    size_t n_curve;
    const moe_seq_count *seqs; /* per sequence, in trace order; NULL/0 = not recorded */
    size_t n_seqs;
} moe_run_record;

/* Open (creating file and schema if needed). The message names the path. */
moe_db *moe_db_open(const char *path, moe_error *err);
int moe_db_close(moe_db *db, moe_error *err);
/* moe_db_open refuses a damaged file (PRAGMA integrity_check, or quick_check
 * above 32 MiB): "<path>: the database is damaged (...); run `moesim results
 * check` ...". */

/* Open an existing database for reading only: never creates or writes it.
 * A WAL database whose -shm cannot be created (read-only directory or file)
 * is reopened with the URI immutable=1 (*immutable set, may be NULL): SQLite
 * then assumes no other process writes the file. The file is checked as by
 * moe_db_open; a damaged one is refused. Returns an sqlite3 handle. */
struct sqlite3 *moe_db_open_readonly(const char *path, int *immutable, moe_error *err);

/* Full check (PRAGMA integrity_check, then foreign_key_check): 0 when sound,
 * 1 when damaged (each problem passed to report), -1 when the file cannot be
 * opened at all (err set). Never writes. */
int moe_db_check(const char *path, void (*report)(void *ctx, const char *line), void *ctx, moe_error *err);

/* Copy every readable row of the (damaged) database src_path into db (a new,
 * empty results database), table by table: rows on damaged pages are lost,
 * rows with impossible values dropped, then runs left without config or
 * metrics rows are dropped (a sweep redoes them) and orphan rows removed. One
 * line per table (and per repair) goes to report. src is only read. */
int moe_db_recover(moe_db *db, const char *src_path, void (*report)(void *ctx, const char *line), void *ctx,
                   moe_error *err);

/* SHA-256 of the trace's content (header and arrays) as 64 hex chars. */
void moe_trace_hash(const moe_trace *t, char out[65]);
/* SHA-256 hex of a config text. */
void moe_config_hash(const char *config_text, char out[65]);

/* Record a trace (idempotent); hash_out receives its content hash. */
int moe_db_add_trace(moe_db *db, const moe_trace *t, const char *path, char hash_out[65],
                     moe_error *err);
/* The same with the hash already computed by moe_trace_hash (hashing a
 * large trace twice costs seconds). */
int moe_db_add_trace_hashed(moe_db *db, const moe_trace *t, const char *path, const char *hash,
                            moe_error *err);
/* 1 if a complete run with this identity exists, 0 if not, -1 on error. */
int moe_db_run_exists(moe_db *db, const char *trace_hash, const char *config_text, moe_error *err);
/* Store a complete run atomically (replaces an existing one with the same identity). */
int moe_db_store_run(moe_db *db, const moe_run_record *rec, moe_error *err);

/* The path the database was opened with. */
const char *moe_db_path(const moe_db *db);

/* What moe_db_merge did. A duplicate is a complete run whose identity (trace
 * hash, config hash) is already complete in the destination with the same
 * metrics; a conflict is one whose metrics differ (the destination's copy is
 * kept and the conflict reported); incomplete runs of the source are ignored. */
typedef struct moe_db_merge_stats {
    uint64_t traces_added, runs_added, duplicates, conflicts, incomplete, replaced;
} moe_db_merge_stats;

/* Merge the results database at src_path into db in one transaction. Each
 * conflict is passed to report (may be NULL) as one line of text. */
int moe_db_merge(moe_db *db, const char *src_path, moe_db_merge_stats *stats,
                 void (*report)(void *ctx, const char *line), void *ctx, moe_error *err);

#endif
