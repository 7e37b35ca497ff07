/* trace_formats.h: the readers and writers behind moe_trace_load /
 * moe_trace_save, with the options each importer takes. The public entry
 * points stay in trace.h; this header is for the `trace` command and tests.
 * Every function follows error.h: 0 / pointer on success, -1 / NULL with a
 * message naming the file and the place on failure. */
#ifndef MOE_TRACE_FORMATS_H
#define MOE_TRACE_FORMATS_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "trace.h"

/* ---- binary .moetrace (trace_bin.c) ------------------------------------ */

#define MOE_BIN_MAGIC "MOETRACE"
#define MOE_BIN_VERSION 1u

moe_trace *moe_trace_load_bin(const char *path, moe_error *err);
/* The checksum stored in a .moetrace header (not re-verified here). */
int moe_trace_bin_checksum(const char *path, uint64_t *sum, moe_error *err);

/* ---- helpers shared by the writers (trace_util.c) ---------------------- */

/* 64-bit checksum, streamed: feed any byte chunks, the result depends only
 * on the concatenated bytes. Own design (see trace_util.c), not a standard. */
typedef struct moe_hash64 {
    uint64_t h, carry;
    unsigned n_carry;
    uint64_t total;
} moe_hash64;
void moe_hash64_init(moe_hash64 *s);
void moe_hash64_update(moe_hash64 *s, const void *p, size_t n);
uint64_t moe_hash64_final(const moe_hash64 *s);

/* A file written under a temporary name in the target's directory and
 * renamed over the target only when every write succeeded and was fsynced. */
typedef struct moe_atomic_file {
    FILE *f;
    char *final_path;
    char *tmp_path;
} moe_atomic_file;
int moe_atomic_open(moe_atomic_file *a, const char *path, moe_error *err);
/* Flush, fsync, close, rename; on any failure the temp file is removed. */
int moe_atomic_commit(moe_atomic_file *a, moe_error *err);
void moe_atomic_abort(moe_atomic_file *a);

/* A key-sequence .moetrace (version 2, trace.h) written as the keys arrive,
 * so an import holds one buffer, not the sequence (trace_bin.c): open, put
 * the keys in request order, finish with the header fields (or abort).
 * Nothing is left at the path unless finish succeeds. */
typedef struct moe_keys_writer {
    moe_atomic_file af;
    uint64_t n;
    int bad; /* errno of the first failed write, 0 if none */
} moe_keys_writer;
int moe_keys_writer_open(moe_keys_writer *w, const char *path, moe_error *err);
int moe_keys_writer_put(moe_keys_writer *w, const uint32_t *keys, size_t n);
/* model may be NULL; meta text up to 1024 bytes; keys are the caller's
 * dense ids < n_keys. */
int moe_keys_writer_finish(moe_keys_writer *w, const char *model, const char *source, uint64_t n_keys,
                           const char *meta, moe_error *err);
void moe_keys_writer_abort(moe_keys_writer *w);

/* Lines of a text file, read through a chunk buffer, never holding more
 * than max bytes of one line: a longer line is consumed to its end, *too_long
 * set, max + 1 returned. Embedded NULs are kept (the returned length counts
 * them). Every text reader reads with it, so a file without newlines cannot
 * take gigabytes. consumed = bytes of the file read so far (progress). */
#define MOE_MAX_LINE (4u << 20)
#define MOE_LINES_CHUNK (64u << 10)
typedef struct moe_lines {
    FILE *f;
    char *chunk, *line;
    size_t pos, len, cap;
    uint64_t consumed;
} moe_lines;
int moe_lines_init(moe_lines *l, FILE *f);
/* The next line into l->line (NUL-terminated, '\n' kept); its length, or -1
 * at end of file (or when out of memory: errno). */
ssize_t moe_lines_next(moe_lines *l, size_t max, int *too_long);
void moe_lines_free(moe_lines *l);

/* Read a whole file into memory (NUL-terminated); *len excludes the NUL. */
char *moe_read_file(const char *path, size_t *len, moe_error *err);

/* Phase a CSV/JSONL importer gives a step that carries no phase: prefill if
 * some sequence has more than one token in the step or a token is at
 * position 0 (a prompt's first token), else decode. The generator's traces
 * follow this rule exactly, so their phases survive a CSV round trip. */
int moe_infer_phase(const uint32_t *seq, const uint32_t *pos, uint64_t n);

/* ---- CSV interchange (trace_csv.c) ------------------------------------- */

struct moe_import_report;
typedef struct moe_csv_opts {
    uint32_t layers, experts, top_k; /* 0 = infer as max + 1 */
    const struct moe_import_report *rep; /* progress only; may be NULL */
} moe_csv_opts;

/* Limits the CSV importer enforces before it allocates anything sized by
 * the input, each error naming the file, the line and the column (or the
 * option) that set the offending size:
 *  - per row: layer < MOE_MAX_LAYERS (65536 layers), slot < MOE_MAX_EXPERTS
 *    (top_k <= 65534; with --experts, slot < experts), expert <
 *    MOE_MAX_EXPERTS; --layers / --experts / --top-k within the same limits;
 *  - record budget: the trace holds S = tokens x layers x top_k record
 *    slots (2 bytes each, 6 with weights) for the R data rows (each fills one
 *    slot). The import is refused unless S <= 64 x R (MOE_CSV_SLOTS_PER_ROW)
 *    or S <= 2^20 (MOE_CSV_SLOTS_FREE: small files are never refused), or
 *    both --layers and --top-k were given and the slots take at most 2 GiB
 *    (MOE_CSV_EXPLICIT_BYTES);
 *  - key budget: likewise K = layers x experts (layer, expert) keys, on which
 *    every replay keeps per-key state, must be <= 64 x R or <= 2^20 unless
 *    both --layers and --experts were given (then only the key-space limit
 *    of trace.h applies).
 *  So ids alone can make the trace at most 64 times larger than its data
 *  (beyond a 1 Mi allowance); a few rows with a huge layer, slot or expert
 *  are refused in milliseconds instead of allocating gigabytes. The message
 *  names the line that set the larger inferred size and the options that
 *  override. */
#define MOE_CSV_SLOTS_PER_ROW 64u
#define MOE_CSV_SLOTS_FREE (1u << 20)
#define MOE_CSV_EXPLICIT_BYTES (2ull << 30)
moe_trace *moe_trace_load_csv(const char *path, const moe_csv_opts *o, moe_error *err);

/* ---- JSONL routing logs (trace_jsonl.c) -------------------------------- */

enum moe_jsonl_layout { MOE_JSONL_MIXTRAL = 0, MOE_JSONL_QWEN = 1 };
enum moe_jsonl_order { MOE_ORDER_AUTO = 0, MOE_ORDER_EXEC = 1, MOE_ORDER_SORTED = 2 };

/* Logical fields an importer reads, each mappable to another JSON key. */
enum moe_jfield { MOE_JF_SEQ, MOE_JF_LAYER, MOE_JF_TOKEN, MOE_JF_EXPERTS, MOE_JF_WEIGHTS,
                  MOE_JF_STEP, MOE_JF_COUNT };

/* How qwen route rows form forward passes (steps); rules in trace_jsonl.c:
 * token: consecutive rows of one (req_id, token_idx), one token per pass (the
 * default); wrap: a pass ends where the logged layer goes down or a (req_id,
 * token_idx, layer) repeats within it; rows: every N route rows; key: a
 * JSON key whose value changes. */
enum moe_jsonl_pass { MOE_PASS_DEFAULT = 0, MOE_PASS_TOKEN, MOE_PASS_WRAP, MOE_PASS_ROWS, MOE_PASS_KEY };
/* Qwen warm-up detection: a leading run of at least this many passes with
 * identical routing, followed by a pass that differs, is warm-up. */
#define MOE_WARMUP_MIN_PASSES 8u

typedef struct moe_jsonl_opts {
    int layout;                      /* enum moe_jsonl_layout */
    int order;                       /* mixtral: enum moe_jsonl_order */
    const char *field[MOE_JF_COUNT]; /* NULL = the layout's default key */
    uint32_t layers, experts, top_k; /* 0 = infer (qwen top_k: from the meta line) */
    /* qwen warm-up: by default the detected warm-up passes are dropped; the
     * two explicit rules below replace detection (their rows are dropped as
     * said, detection only reports); keep_warmup keeps everything. */
    uint64_t skip_warmup;            /* qwen: drop the first N route rows */
    const char *warmup_prefix;       /* qwen: drop rows whose req_id starts with this */
    int keep_warmup;                 /* qwen: drop nothing (conflicts with the two above) */
    int pass_by;                     /* qwen: enum moe_jsonl_pass */
    uint64_t pass_rows;              /* qwen, MOE_PASS_ROWS: route rows per pass (> 0) */
    const char *pass_key;            /* qwen, MOE_PASS_KEY: JSON key whose change starts a pass */
} moe_jsonl_opts;
/* Map "name=key" (name: seq, layer, token, experts, weights, step) into o. */
int moe_jsonl_map_field(moe_jsonl_opts *o, const char *spec, moe_error *err);
/* Parse a --pass-by rule (token, wrap, rows=N, key=KEY) into o. */
int moe_jsonl_pass_by(moe_jsonl_opts *o, const char *spec, moe_error *err);
/* Options that contradict each other (--keep-warmup with --skip-warmup or
 * --warmup-prefix; --pass-by with --field step=KEY): -1 with the reason.
 * The loaders check this too. */
int moe_jsonl_check_opts(const moe_jsonl_opts *o, moe_error *err);
moe_trace *moe_trace_load_jsonl(const char *path, const moe_jsonl_opts *o, moe_error *err);
/* Which layout a .jsonl file looks like (a first line with "type":"meta" is qwen). */
int moe_jsonl_sniff(const char *path, moe_error *err);

/* ---- plain cache key sequences (trace_lcs.c) --------------------------- */


typedef struct moe_lcs_opts {
    uint32_t obj_col;   /* 1-based column of the object id (libCacheSim obj-id-col); 0 = 1 */
    int has_header;     /* skip the first line */
    char delim;         /* 0 = ',' */
} moe_lcs_opts;
moe_trace *moe_trace_load_lcs_csv(const char *path, const moe_lcs_opts *o, moe_error *err);
moe_trace *moe_trace_load_lcs_oracle(const char *path, moe_error *err);

/* ---- importer findings and sniffing (trace_jsonl.c, trace_lcs.c) ------- */

/* What an importer reports without failing: a warning (records left empty
 * by dropped rows, a key column that looks like a time or version column)
 * or a note (how it read something it had to interpret: warm-up passes
 * dropped or kept, positions renumbered, phases unknown). Each is one line
 * naming the file, passed to say (NULL: dropped); with strict set, a
 * warning fails the import with that message instead. */
typedef struct moe_import_report {
    int strict;
    void (*say)(void *ctx, int is_warning, const char *msg);
    void *ctx;
    /* May be NULL: called every 64 Ki lines or 1 MiB read with the bytes
     * read so far and the file's size (a command draws progress from it). */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    /* Memory cap (--max-memory), 0 = none: an importer whose data would
     * pass it stops with an error saying how much it would need. CSV checks
     * the finished trace's size before building it; JSONL its row tables as
     * they grow; libCacheSim imports their key table. */
    uint64_t max_bytes;
    int max_is_default; /* max_bytes is moe_default_memory_cap(), not an option */
} moe_import_report;
/* 0 if bytes is within r's cap (or there is none), else -1 with "PATH:
 * WHAT would take X MiB, above --max-memory Y GiB" in err. */
int moe_import_cap(const moe_import_report *r, uint64_t bytes, const char *path, const char *what, moe_error *err);
/* The cap an import gets when none is given: this machine's physical
 * memory, or the process's address-space limit (ulimit -v) when that is
 * lower. Holding more than that ends in the OOM killer or in swap, so it is
 * refused up front instead; 0 when neither can be read. */
uint64_t moe_default_memory_cap(void);
/* Call r->progress, if any, with done out of total bytes. */
void moe_import_progress(const moe_import_report *r, uint64_t done, uint64_t total);
/* A file's size in bytes, 0 if unknown (for progress only). */
uint64_t moe_file_size(FILE *f);
moe_trace *moe_trace_load_jsonl_report(const char *path, const moe_jsonl_opts *o,
                                       const moe_import_report *r, moe_error *err);
moe_trace *moe_trace_load_lcs_csv_report(const char *path, const moe_lcs_opts *o,
                                         const moe_import_report *r, moe_error *err);
/* `trace import` of a libCacheSim file (oracle: oracleGeneral, else CSV with
 * o and rep as above): streamed straight into the key-sequence .moetrace
 * out, holding only the key table (one entry per distinct key) and a
 * buffer, never the requests; nothing is left at out on failure. Fills the
 * counts it wrote. */
int moe_lcs_import(const char *path, int oracle, const moe_lcs_opts *o, const moe_import_report *rep,
                   const char *model, const char *out, uint64_t *n_requests, uint64_t *n_keys, moe_error *err);
/* 1 if the file looks like libCacheSim oracleGeneral (a non-zero multiple of
 * 24 bytes whose first records are sane), 0 if not, -1 if unreadable. */
int moe_lcs_oracle_sniff(const char *path, moe_error *err);
/* The 1-based column a libCacheSim CSV header line names as the object id
 * (obj_id, obj-id, object_id, objid, key, id; any case), 0 if none. */
uint32_t moe_lcs_csv_header_obj_col(const char *line, char delim);

#endif
