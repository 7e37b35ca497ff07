/* trace_lcs.c: plain cache key sequences (libCacheSim inputs) as traces.
 *
 * Sources:
 *  - libCacheSim's CSV form: one request per line, the object id in column
 *    --obj-col (1-based, like libCacheSim's obj-id-col; default 1), optional
 *    header line (--has-header, like has-header=true), delimiter (default
 *    ','). Ids are compared as text: "7" and "007" are different keys.
 *  - libCacheSim's oracleGeneral binary: packed little-endian 24-byte
 *    records {u32 timestamp; u64 obj_id; u32 obj_size; i64 next_access_vtime}.
 *    As in libCacheSim's reader, records with obj_size 0 are skipped.
 *
 * Keys are numbered densely in order of first appearance (k = 0, 1, ...)
 * and the result is a key-sequence trace (trace.h: one u32 key per
 * request, one flat key space, no routing arrays; 4 bytes a request in
 * memory and on disk). meta says keyspace=1.
 *
 * The CSV key column is checked after reading (see key_column_check): a
 * column that looks like a time, version or size column, or a header line
 * read as data, is an error when the column is the default one (no
 * --obj-col) and a warning (an error under strict) when it was chosen.
 *
 * Sniffing (moe_lcs_oracle_sniff, moe_lcs_csv_header_obj_col) lets the
 * import command recognise these files without --format. */
#include <csv.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "trace_formats.h"

/* ---- dense key table (open addressing) ---------------------------------- */

typedef struct keytab {
    uint64_t *slot_key;   /* numeric key, or the string's hash */
    uint32_t *slot_id;    /* dense id + 1; 0 = empty slot */
    size_t mask, n;
    /* string keys: arena of NUL-terminated strings, offset per id */
    char *arena;
    size_t arena_len, arena_cap;
    size_t *str_off;
    size_t str_cap;
    int strings;
} keytab;

static int kt_init(keytab *k, int strings) {
    memset(k, 0, sizeof *k);
    k->strings = strings;
    k->mask = 1023;
    k->slot_key = calloc(k->mask + 1, sizeof(uint64_t));
    k->slot_id = calloc(k->mask + 1, sizeof(uint32_t));
    return k->slot_key && k->slot_id ? 0 : -1;
}

static void kt_free(keytab *k) {
    free(k->slot_key), free(k->slot_id), free(k->arena), free(k->str_off);
}

/* Scrambles a key into a table position (object ids are often sequential). */
static uint64_t mix64(uint64_t x) {
    x ^= x >> 31, x *= 0x7FB5D329728EA185ull, x ^= x >> 27, x *= 0x81DADEF4BC2DD44Dull, x ^= x >> 33;
    return x;
}

static int kt_grow(keytab *k) {
    size_t nm = k->mask * 2 + 1;
    uint64_t *key = calloc(nm + 1, sizeof *key);
    uint32_t *id = calloc(nm + 1, sizeof *id);
    if (!key || !id) return free(key), free(id), -1;
    for (size_t i = 0; i <= k->mask; i++)
        if (k->slot_id[i]) {
            size_t j = mix64(k->slot_key[i]) & nm;
            while (id[j]) j = (j + 1) & nm;
            key[j] = k->slot_key[i], id[j] = k->slot_id[i];
        }
    free(k->slot_key), free(k->slot_id);
    k->slot_key = key, k->slot_id = id, k->mask = nm;
    return 0;
}

/* Dense id of a key (numeric `num`, or string s of length len); -1 on OOM
 * or when the 32-bit id space is full. */
static int64_t kt_id(keytab *k, uint64_t num, const char *s, size_t len) {
    uint64_t key = num;
    if (k->strings) {
        moe_hash64 hs;
        moe_hash64_init(&hs);
        moe_hash64_update(&hs, s, len);
        key = moe_hash64_final(&hs);
    }
    size_t i = mix64(key) & k->mask;
    for (; k->slot_id[i]; i = (i + 1) & k->mask) {
        if (k->slot_key[i] != key) continue;
        uint32_t id = k->slot_id[i] - 1;
        if (!k->strings) return id;
        const char *t = k->arena + k->str_off[id];
        if (strlen(t) == len && !memcmp(t, s, len)) return id;
    }
    if (k->n >= UINT32_MAX - 1) return -1;
    if (k->strings) {
        if (k->n >= k->str_cap) {
            size_t nc = k->str_cap ? k->str_cap * 2 : 1024;
            size_t *no = realloc(k->str_off, nc * sizeof *no);
            if (!no) return -1;
            k->str_off = no, k->str_cap = nc;
        }
        while (k->arena_len + len + 1 > k->arena_cap) {
            size_t nc = k->arena_cap ? k->arena_cap * 2 : 65536;
            char *na = realloc(k->arena, nc);
            if (!na) return -1;
            k->arena = na, k->arena_cap = nc;
        }
        memcpy(k->arena + k->arena_len, s, len);
        k->arena[k->arena_len + len] = 0;
        k->str_off[k->n] = k->arena_len;
        k->arena_len += len + 1;
    }
    k->slot_key[i] = key;
    k->slot_id[i] = (uint32_t)(k->n + 1);
    k->n++;
    if (k->n * 2 > k->mask && kt_grow(k)) return -1;
    return (int64_t)(k->n - 1);
}

/* ---- key sequence -> trace ---------------------------------------------- */

/* The meta text of an imported key sequence. */
static void lcs_meta(char *meta, size_t cap, const char *fmt, uint64_t n_keys, uint64_t n, uint64_t skipped) {
    snprintf(meta, cap, "keyspace=1\nimported_from=%s\nkeys=%llu\nrequests=%llu\nskipped=%llu\n", fmt,
             (unsigned long long)n_keys, (unsigned long long)n, (unsigned long long)skipped);
}

/* The key sequence ids[0..n) over n_keys keys as a trace; takes ids. */
static moe_trace *keys_to_trace(const char *path, uint32_t *ids, uint64_t n, uint64_t n_keys, const char *fmt,
                                uint64_t skipped, moe_error *err) {
    if (n == 0) {
        free(ids);
        moe_fail(err, "%s: no requests", path);
        return NULL;
    }
    char meta[256];
    lcs_meta(meta, sizeof meta, fmt, n_keys, n, skipped);
    moe_trace *t = moe_trace_from_keys(ids, n, n_keys, fmt[4] == 'c' ? "import lcs-csv" : "import lcs-oracle", meta,
                                       err);
    if (!t) moe_fail_prefix(err, "%s", path);
    return t;
}

/* Where the ids of a read go: into memory (w == NULL: v holds all n), or
 * through a buffer of SINK_BUF into a key-sequence file being written (the
 * streaming import: memory independent of the number of requests). */
#define SINK_BUF 16384u
typedef struct idsink {
    uint32_t *v;
    uint64_t n, cap;
    moe_keys_writer *w;
} idsink;

/* 0; -1 out of memory; -2 the output write failed */
static int sink_push(idsink *a, uint32_t x) {
    if (a->w) {
        if (!a->v && !(a->v = malloc(SINK_BUF * sizeof *a->v))) return -1;
        a->v[a->n++ % SINK_BUF] = x;
        return a->n % SINK_BUF == 0 && moe_keys_writer_put(a->w, a->v, SINK_BUF) ? -2 : 0;
    }
    if (a->n == a->cap) {
        uint64_t nc = a->cap ? a->cap * 2 : 4096;
        uint32_t *nv = realloc(a->v, nc * sizeof *nv);
        if (!nv) return -1;
        a->v = nv, a->cap = nc;
    }
    a->v[a->n++] = x;
    return 0;
}

static int sink_flush(idsink *a) {
    return a->w && a->n % SINK_BUF && moe_keys_writer_put(a->w, a->v, a->n % SINK_BUF) ? -1 : 0;
}

/* Key table and ids held, against --max-memory. */
static int lcs_cap(const moe_import_report *rep, const keytab *kt, const idsink *ids, const char *path, moe_error *err) {
    uint64_t bytes = (uint64_t)(kt->mask + 1) * 12 + kt->arena_cap + (uint64_t)kt->str_cap * 8 +
                     (ids->w ? SINK_BUF * 4 : ids->cap * 4);
    return moe_import_cap(rep, bytes, path, "the key table", err);
}

static const char *sink_why(int rc) {
    return rc == -2 ? "cannot write the output" : "out of memory or more than 2^32 distinct keys";
}

/* ---- libCacheSim CSV ---------------------------------------------------- */

#define LCS_HDR_MAX 64 /* fields of the first line kept for the checks */

typedef struct lctx {
    const char *path;
    moe_error *err;
    const moe_lcs_opts *o;
    uint64_t line, records;
    uint32_t col, field;
    int failed, have_id;
    char *id;
    size_t id_len;
    keytab kt;
    idsink ids;
    /* first line's fields (the header, or the first data row) */
    char *first[LCS_HDR_MAX];
    uint32_t n_first;
    /* the key column's values, data rows only: numeric, increasing */
    uint64_t rows, numeric_after_first;
    int first_numeric, increasing;
    double prev;
} lctx;

/* A plain decimal number (what a time, size or version column holds). */
static int is_number(const char *s, double *v) {
    char *end;
    while (*s == ' ') s++;
    if (!*s) return 0;
    *v = strtod(s, &end);
    while (*end == ' ') end++;
    return !*end && isfinite(*v);
}

static void lfail(lctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lfail(lctx *c, const char *fmt, ...) {
    if (c->failed) return;
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    moe_fail(c->err, "%s:%llu: %s", c->path, (unsigned long long)c->line, what);
    c->failed = 1;
}

static void l_field(void *s, size_t len, void *data) {
    lctx *c = data;
    if (!c->failed && c->records == 0 && c->field < LCS_HDR_MAX) {
        char *f = malloc(len + 1);
        if (!f) { lfail(c, "out of memory"); return; }
        memcpy(f, s ? s : "", len);
        f[len] = 0;
        c->first[c->n_first++] = f;
    }
    if (c->failed || c->field++ != c->col) return;
    free(c->id);
    c->id = malloc(len + 1);
    if (!c->id) { lfail(c, "out of memory"); return; }
    memcpy(c->id, s ? s : "", len);
    c->id[len] = 0;
    c->id_len = len;
    c->have_id = 1;
}

static void l_row(int term, void *data) {
    lctx *c = data;
    (void)term;
    uint32_t nf = c->field;
    c->field = 0;
    int have = c->have_id;
    c->have_id = 0;
    if (c->failed) return;
    if (c->records++ == 0 && c->o->has_header) return;
    if (!have) { lfail(c, "%u columns, but --obj-col is %u", nf, c->col + 1); return; }
    if (c->id_len == 0) { lfail(c, "column %u: empty object id", c->col + 1); return; }
    int64_t k = kt_id(&c->kt, 0, c->id, c->id_len);
    int rc = k < 0 ? -1 : sink_push(&c->ids, (uint32_t)k);
    if (rc) { lfail(c, "%s", sink_why(rc)); return; }
    double v;
    int num = is_number(c->id, &v);
    if (c->rows == 0) c->first_numeric = num, c->increasing = num;
    else {
        c->numeric_after_first += num;
        if (!num || !(v > c->prev)) c->increasing = 0;
    }
    if (num) c->prev = v;
    c->rows++;
}

/* ---- the key column check ------------------------------------------------ */

/* A header name folded for comparison: lower case, '-' and ' ' as '_',
 * surrounding spaces and quotes dropped. */
static void fold_name(const char *s, char *out, size_t cap) {
    while (*s == ' ' || *s == '"' || *s == '\'') s++;
    size_t n = 0;
    for (; *s && n + 1 < cap; s++) {
        char ch = *s;
        if (ch == '\r' || ch == '\n') break;
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
        if (ch == '-' || ch == ' ') ch = '_';
        out[n++] = ch;
    }
    while (n && (out[n - 1] == '_' || out[n - 1] == '"' || out[n - 1] == '\'')) n--;
    out[n] = 0;
}

static const char *const id_names[] = {"obj_id", "object_id", "objid", "key", "id"}; /* by priority */
static const char *const non_id_names[] = {
    "time", "timestamp", "ts", "real_time", "clock_time", "wall_time", "vtime", "version", "size", "obj_size",
    "object_size", "key_size", "value_size", "req_size", "next_access_vtime", "next_access", "ttl", "op",
    "operation", "cmd", "tenant", "namespace"};

static int name_in(const char *field, const char *const *names, size_t n) {
    char f[64];
    fold_name(field, f, sizeof f);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(f, names[i])) return (int)i;
    return -1;
}

/* 1-based column among fields[0..n) named as an object id, 0 if none. */
static uint32_t obj_col_of(char *const *fields, uint32_t n) {
    for (size_t p = 0; p < sizeof id_names / sizeof *id_names; p++)
        for (uint32_t i = 0; i < n; i++)
            if (name_in(fields[i], id_names + p, 1) == 0) return i + 1;
    return 0;
}

uint32_t moe_lcs_csv_header_obj_col(const char *line, char delim) {
    if (!delim) delim = ',';
    char *fields[LCS_HDR_MAX];
    uint32_t n = 0;
    const char *s = line;
    if (!strncmp(s, "\xEF\xBB\xBF", 3)) s += 3; /* UTF-8 byte order mark */
    while (n < LCS_HDR_MAX) {
        const char *e = s;
        while (*e && *e != delim && *e != '\n') e++;
        fields[n] = strndup(s, (size_t)(e - s));
        if (!fields[n]) break;
        n++;
        if (*e != delim) break;
        s = e + 1;
    }
    uint32_t col = obj_col_of(fields, n);
    for (uint32_t i = 0; i < n; i++) free(fields[i]);
    return col;
}

/* Does the key column look like an object id? Findings, from the first
 * line and the key values of the data rows:
 *  - no --has-header, and the first line looks like a header: it names an
 *    object-id column, or its key is a known non-id name (time, version,
 *    size, ...), or its key is text while every later key is a number;
 *  - --has-header, and the column's name is a known non-id name;
 *  - few distinct values: at least 20 rows and at most 2 keys, or at most
 *    one key per 1000 rows (a version, op or size column);
 *  - every value distinct and a strictly increasing number, 3 rows or more
 *    (a time or sequence column: nothing would ever be reused).
 * The default column (no --obj-col) with a finding is an error; a chosen
 * one gives a warning (an error under strict). */
static int key_column_check(lctx *c, const moe_import_report *rep) {
    uint32_t col = c->col + 1, keys = (uint32_t)c->kt.n;
    uint64_t rows = c->rows;
    char why[600] = "";
    size_t w = 0;
#define WHY(...) (w += (size_t)snprintf(why + w, w < sizeof why ? sizeof why - w : 0, __VA_ARGS__), w = w < sizeof why ? w : sizeof why)
    const char *name = c->n_first > c->col ? c->first[c->col] : NULL; /* header name or first key */
    int header_like = 0;
    if (!c->o->has_header && c->n_first) {
        if (obj_col_of(c->first, c->n_first) ||
            (name && name_in(name, non_id_names, sizeof non_id_names / sizeof *non_id_names) >= 0) ||
            (!c->first_numeric && rows >= 3 && c->numeric_after_first == rows - 1))
            header_like = 1;
        if (header_like) WHY("%sline 1 looks like a header but is read as data (pass --has-header)", w ? "; " : "");
    }
    if (c->o->has_header && name && name_in(name, non_id_names, sizeof non_id_names / sizeof *non_id_names) >= 0)
        WHY("%sits header name '%s' is not an object id", w ? "; " : "", name);
    if (rows >= 20 && (keys <= 2 || (uint64_t)keys * 1000 <= rows))
        WHY("%sonly %u distinct value%s in %llu rows", w ? "; " : "", keys, keys == 1 ? "" : "s", (unsigned long long)rows);
    if (rows >= 3 && keys == rows && c->increasing)
        WHY("%severy one of the %llu rows has a new value, in increasing numeric order (a time or sequence "
            "column: nothing would ever be reused)", w ? "; " : "", (unsigned long long)rows);
#undef WHY
    if (!w) return 0;
    /* what to suggest: the column a header names as the object id */
    char hint[200] = "";
    int named = c->o->has_header || header_like;
    uint32_t idc = named ? obj_col_of(c->first, c->n_first) : 0;
    if (idc && idc != col) snprintf(hint, sizeof hint, " (column %u is named '%s': --obj-col %u)", idc, c->first[idc - 1], idc);
    char label[120] = "";
    if (named && name) snprintf(label, sizeof label, " ('%.80s')", name);
    if (!c->o->obj_col)
        return moe_fail(c->err, "%s: key column %u%s, the default, does not look like an object id: %s; choose the "
                        "object-id column with --obj-col N%s", c->path, col, label, why, hint);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s: key column %u%s (--obj-col %u) does not look like an object id: %s%s", c->path,
             col, label, col, why, hint);
    if (rep && rep->strict) return moe_fail(c->err, "%s (--strict)", msg);
    if (rep && rep->say) rep->say(rep->ctx, 1, msg);
    return 0;
}

/* Read a libCacheSim CSV into c (ids into c->ids); 0, or -1 with c->err. */
static int read_lcs_csv(lctx *c, const moe_import_report *rep) {
    const char *path = c->path;
    const moe_lcs_opts *o = c->o;
    moe_error *err = c->err;
    FILE *f = fopen(path, "rb");
    if (!f) return moe_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct csv_parser p;
    if (csv_init(&p, CSV_APPEND_NULL) || kt_init(&c->kt, 1)) {
        fclose(f);
        return moe_fail(err, "%s: out of memory", path);
    }
    csv_set_delim(&p, (unsigned char)(o->delim ? o->delim : ','));
    moe_lines lr;
    if (moe_lines_init(&lr, f)) {
        csv_free(&p);
        fclose(f);
        return moe_fail(err, "%s: out of memory", path);
    }
    char *line;
    ssize_t n;
    uint64_t total = moe_file_size(f);
    int too_long;
    while (!c->failed && (n = moe_lines_next(&lr, MOE_MAX_LINE, &too_long)) > 0) {
        line = lr.line;
        if (too_long) {
            c->line++;
            lfail(c, "line longer than %u MiB: not a CSV row", MOE_MAX_LINE >> 20);
            break;
        }
        if ((++c->line & 0xFFFF) == 0) {
            moe_import_progress(rep, lr.consumed, total);
            if (lcs_cap(rep, &c->kt, &c->ids, path, err)) { c->failed = 1; break; }
        }
        char *ln = line;
        /* A UTF-8 byte order mark would otherwise become part of the first
         * field: in a file without a header, the first key would differ
         * from the same id later on. It is removed, and since that changes
         * what the first key is compared to, a note says so. */
        if (c->line == 1 && n >= 3 && !memcmp(line, "\xEF\xBB\xBF", 3)) {
            ln += 3, n -= 3;
            if (rep && rep->say) {
                char msg[1200];
                snprintf(msg, sizeof msg, "%s:1: a UTF-8 byte order mark starts the file; removed (not part of the "
                         "first %s)", path, o->has_header ? "column name" : "key");
                rep->say(rep->ctx, 0, msg);
            }
        }
        if (csv_parse(&p, ln, (size_t)n, l_field, l_row, c) != (size_t)n) lfail(c, "%s", csv_strerror(csv_error(&p)));
    }
    if (!c->failed && csv_fini(&p, l_field, l_row, c)) lfail(c, "%s", csv_strerror(csv_error(&p)));
    csv_free(&p);
    moe_lines_free(&lr);
    int rerr = ferror(f);
    fclose(f);
    if (!c->failed && rerr) return moe_fail(err, "%s: read error", path);
    if (!c->failed && c->records == 0) return moe_fail(err, "%s:1: empty file", path);
    if (!c->failed && c->ids.n && key_column_check(c, rep)) return -1;
    if (!c->failed && c->ids.n == 0) return moe_fail(err, "%s: no requests", path);
    return c->failed ? -1 : 0;
}

static void lctx_free(lctx *c) {
    free(c->id), free(c->ids.v);
    for (uint32_t i = 0; i < c->n_first; i++) free(c->first[i]);
    kt_free(&c->kt);
}

moe_trace *moe_trace_load_lcs_csv(const char *path, const moe_lcs_opts *o, moe_error *err) {
    return moe_trace_load_lcs_csv_report(path, o, NULL, err);
}

moe_trace *moe_trace_load_lcs_csv_report(const char *path, const moe_lcs_opts *o, const moe_import_report *rep,
                                         moe_error *err) {
    lctx c = {.path = path, .err = err, .o = o, .col = o->obj_col ? o->obj_col - 1 : 0};
    moe_trace *t = NULL;
    if (read_lcs_csv(&c, rep) == 0) t = keys_to_trace(path, c.ids.v, c.ids.n, c.kt.n, "lcs-csv", 0, err), c.ids.v = NULL;
    lctx_free(&c);
    return t;
}

/* ---- libCacheSim oracleGeneral ------------------------------------------ */

#define ORACLE_REC 24
#define ORACLE_SNIFF_RECS 4096

/* Record sanity: next_access_vtime is -1 or INT64_MAX (no next access) or
 * a request number after this one (counting records with obj_size > 0, so
 * either 0- or 1-based numbering passes) below 2^48; some record has
 * obj_size > 0. Text, a .moetrace or zeros fail at once. */
int moe_lcs_oracle_sniff(const char *path, moe_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return moe_fail(err, "%s: cannot open: %s", path, strerror(errno));
    int ok = fseek(f, 0, SEEK_END) == 0;
    long size = ok ? ftell(f) : -1;
    if (size <= 0 || size % ORACLE_REC || fseek(f, 0, SEEK_SET)) {
        fclose(f);
        return 0;
    }
    unsigned char *buf = malloc((size_t)ORACLE_REC * ORACLE_SNIFF_RECS);
    if (!buf) {
        fclose(f);
        return moe_fail(err, "%s: out of memory", path);
    }
    size_t n = fread(buf, ORACLE_REC, ORACLE_SNIFF_RECS, f);
    fclose(f);
    int sane = n > 0, any_size = 0;
    uint64_t served = 0; /* records with obj_size > 0 before this one */
    for (size_t i = 0; i < n && sane; i++) {
        const unsigned char *r = buf + i * ORACLE_REC;
        uint64_t nx = 0;
        uint32_t size32 = 0;
        for (int k = 7; k >= 0; k--) nx = nx << 8 | r[16 + k];
        for (int k = 3; k >= 0; k--) size32 = size32 << 8 | r[12 + k];
        int64_t next = (int64_t)nx;
        if (next == -1 || next == INT64_MAX) {
            /* no next access */
        } else if (next <= 0 || next >= (int64_t)1 << 48 || (size32 && (uint64_t)next <= served)) {
            sane = 0;
        }
        if (size32) any_size = 1, served++;
    }
    free(buf);
    return sane && any_size;
}

/* Read an oracleGeneral file in chunks of records (ids into ids, keys
 * numbered in kt); 0, or -1 with err. */
static int read_lcs_oracle(const char *path, idsink *ids, keytab *kt, uint64_t *skipped,
                           const moe_import_report *rep, moe_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return moe_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return moe_fail(err, "%s: not a regular file", path);
    }
    uint64_t len = (uint64_t)st.st_size;
    enum { CHUNK = 43690 }; /* records per read: just under 1 MiB */
    unsigned char *buf = malloc((size_t)CHUNK * ORACLE_REC);
    int rc = 0;
    if (len == 0) rc = moe_fail(err, "%s: empty file", path);
    else if (len % ORACLE_REC)
        rc = moe_fail(err, "%s: offset %llu: truncated record (file size %llu is not a multiple of %d bytes)", path,
                      (unsigned long long)(len - len % ORACLE_REC), (unsigned long long)len, ORACLE_REC);
    else if (!buf || kt_init(kt, 0)) rc = moe_fail(err, "%s: out of memory", path);
    uint64_t off = 0;
    while (rc == 0 && off < len) {
        size_t want = len - off < (uint64_t)CHUNK * ORACLE_REC ? (size_t)(len - off) : (size_t)CHUNK * ORACLE_REC;
        size_t got = fread(buf, 1, want, f);
        if (got != want) { /* the file changed under us, or the disk failed */
            rc = moe_fail(err, "%s: offset %llu: read error or file shrank", path, (unsigned long long)(off + got));
            break;
        }
        for (size_t r = 0; r < got && rc == 0; r += ORACLE_REC) {
            const unsigned char *x = buf + r;
            uint64_t id = 0;
            uint32_t size = 0;
            for (int b = 7; b >= 0; b--) id = id << 8 | x[4 + b];
            for (int b = 3; b >= 0; b--) size = size << 8 | x[12 + b];
            if (size == 0) { ++*skipped; continue; }
            int64_t k = kt_id(kt, id, NULL, 0);
            int prc = k < 0 ? -1 : sink_push(ids, (uint32_t)k);
            if (prc) rc = moe_fail(err, "%s: offset %llu: %s", path, (unsigned long long)(off + r), sink_why(prc));
        }
        off += got;
        moe_import_progress(rep, off, len);
        if (rc == 0) rc = lcs_cap(rep, kt, ids, path, err);
    }
    free(buf);
    fclose(f);
    if (rc == 0 && ids->n == 0) rc = moe_fail(err, "%s: no requests (every record has obj_size 0)", path);
    return rc;
}

moe_trace *moe_trace_load_lcs_oracle(const char *path, moe_error *err) {
    keytab kt = {0};
    idsink ids = {0};
    uint64_t skipped = 0;
    moe_trace *t = NULL;
    if (read_lcs_oracle(path, &ids, &kt, &skipped, NULL, err) == 0)
        t = keys_to_trace(path, ids.v, ids.n, kt.n, "lcs-oracle", skipped, err), ids.v = NULL;
    kt_free(&kt);
    free(ids.v);
    return t;
}

int moe_lcs_import(const char *path, int oracle, const moe_lcs_opts *o, const moe_import_report *rep,
                   const char *model, const char *out, uint64_t *n_requests, uint64_t *n_keys, moe_error *err) {
    moe_keys_writer w;
    if (moe_keys_writer_open(&w, out, err)) return -1;
    idsink ids = {.w = &w};
    uint64_t skipped = 0, keys = 0;
    int rc;
    if (oracle) {
        keytab kt = {0};
        rc = read_lcs_oracle(path, &ids, &kt, &skipped, rep, err);
        keys = kt.n;
        kt_free(&kt);
    } else {
        lctx c = {.path = path, .err = err, .o = o, .col = o->obj_col ? o->obj_col - 1 : 0};
        c.ids = ids;
        rc = read_lcs_csv(&c, rep);
        ids = c.ids, c.ids.v = NULL;
        keys = c.kt.n;
        lctx_free(&c);
    }
    if (rc == 0 && sink_flush(&ids)) rc = moe_fail(err, "%s: cannot write the output", out);
    free(ids.v);
    char meta[256];
    lcs_meta(meta, sizeof meta, oracle ? "lcs-oracle" : "lcs-csv", keys, ids.n, skipped);
    if (rc == 0 && moe_keys_writer_finish(&w, model, oracle ? "import lcs-oracle" : "import lcs-csv", keys, meta, err))
        rc = -1;
    if (rc) moe_keys_writer_abort(&w);
    *n_requests = ids.n, *n_keys = keys;
    return rc;
}
