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
 * Keys are numbered densely in order of first appearance (k = 0, 1, ...).
 * Each request becomes one step with one token (seq 0, token = request
 * index, decode). Expert ids are uint16, so key k is expert k % E of layer
 * k / E with E = min(#keys, 4096) and ceil(#keys / E) layers; the token
 * records only that layer (the others stay empty), top_k = 1, no weights.
 * meta says keyspace=1: such a trace is meant for `--scope global`, where
 * one cache holds all (layer, expert) keys, i.e. all objects. */
#include <csv.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static moe_trace *keys_to_trace(const char *path, const uint32_t *ids, uint64_t n, uint64_t n_keys,
                                const char *fmt, uint64_t skipped, moe_error *err) {
    if (n == 0) {
        moe_fail(err, "%s: no requests", path);
        return NULL;
    }
    if (n > UINT32_MAX) {
        moe_fail(err, "%s: %llu requests: token positions are 32-bit", path, (unsigned long long)n);
        return NULL;
    }
    uint32_t chunk = n_keys < MOE_LCS_CHUNK ? (uint32_t)n_keys : MOE_LCS_CHUNK;
    uint32_t layers = (uint32_t)((n_keys + chunk - 1) / chunk);
    moe_trace_builder *b = moe_tb_new(layers, chunk, 1, 0, 0, 0);
    if (!b) {
        moe_fail(err, "%s: out of memory", path);
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (moe_tb_begin_step(b, i, MOE_PHASE_DECODE, err) || moe_tb_add_token(b, 0, (uint32_t)i, err) < 0 ||
            moe_tb_set(b, 0, ids[i] / chunk, 0, ids[i] % chunk, NAN, err)) {
            moe_fail_prefix(err, "%s: request %llu", path, (unsigned long long)i);
            moe_tb_abort(b);
            return NULL;
        }
    }
    char meta[256];
    snprintf(meta, sizeof meta, "keyspace=1\nimported_from=%s\nkeys=%llu\nrequests=%llu\nskipped=%llu\nexperts_per_layer_chunk=%u\n",
             fmt, (unsigned long long)n_keys, (unsigned long long)n, (unsigned long long)skipped, chunk);
    moe_trace *t = moe_tb_finish(b, "", fmt[4] == 'c' ? "import lcs-csv" : "import lcs-oracle", meta, err);
    if (!t) moe_fail_prefix(err, "%s", path);
    return t;
}

typedef struct idvec {
    uint32_t *v;
    uint64_t n, cap;
} idvec;

static int idvec_push(idvec *a, uint32_t x) {
    if (a->n == a->cap) {
        uint64_t nc = a->cap ? a->cap * 2 : 4096;
        uint32_t *nv = realloc(a->v, nc * sizeof *nv);
        if (!nv) return -1;
        a->v = nv, a->cap = nc;
    }
    a->v[a->n++] = x;
    return 0;
}

/* ---- libCacheSim CSV ---------------------------------------------------- */

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
    idvec ids;
} lctx;

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
    if (k < 0 || idvec_push(&c->ids, (uint32_t)k)) lfail(c, "out of memory or more than 2^32 keys");
}

moe_trace *moe_trace_load_lcs_csv(const char *path, const moe_lcs_opts *o, moe_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        moe_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    lctx c = {.path = path, .err = err, .o = o, .col = o->obj_col ? o->obj_col - 1 : 0};
    struct csv_parser p;
    if (csv_init(&p, CSV_APPEND_NULL) || kt_init(&c.kt, 1)) {
        fclose(f);
        moe_fail(err, "%s: out of memory", path);
        return NULL;
    }
    csv_set_delim(&p, (unsigned char)(o->delim ? o->delim : ','));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (!c.failed && (n = getline(&line, &cap, f)) > 0) {
        c.line++;
        if (csv_parse(&p, line, (size_t)n, l_field, l_row, &c) != (size_t)n) lfail(&c, "%s", csv_strerror(csv_error(&p)));
    }
    if (!c.failed && csv_fini(&p, l_field, l_row, &c)) lfail(&c, "%s", csv_strerror(csv_error(&p)));
    csv_free(&p);
    free(line);
    int rerr = ferror(f);
    fclose(f);
    moe_trace *t = NULL;
    if (!c.failed && rerr) moe_fail(err, "%s: read error", path);
    else if (!c.failed && c.records == 0) moe_fail(err, "%s:1: empty file", path);
    else if (!c.failed) t = keys_to_trace(path, c.ids.v, c.ids.n, c.kt.n, "lcs-csv", 0, err);
    free(c.id), free(c.ids.v);
    kt_free(&c.kt);
    return t;
}

/* ---- libCacheSim oracleGeneral ------------------------------------------ */

#define ORACLE_REC 24

moe_trace *moe_trace_load_lcs_oracle(const char *path, moe_error *err) {
    size_t len;
    char *buf = moe_read_file(path, &len, err);
    if (!buf) return NULL;
    moe_trace *t = NULL;
    keytab kt;
    idvec ids = {0};
    uint64_t skipped = 0;
    if (len == 0) {
        moe_fail(err, "%s: empty file", path);
    } else if (len % ORACLE_REC) {
        moe_fail(err, "%s: offset %zu: truncated record (file size %zu is not a multiple of %d bytes)", path,
                 len - len % ORACLE_REC, len, ORACLE_REC);
    } else if (kt_init(&kt, 0)) {
        moe_fail(err, "%s: out of memory", path);
    } else {
        int bad = 0;
        for (size_t off = 0; off < len && !bad; off += ORACLE_REC) {
            const unsigned char *r = (const unsigned char *)buf + off;
            uint64_t id = 0;
            uint32_t size = 0;
            for (int i = 7; i >= 0; i--) id = id << 8 | r[4 + i];
            for (int i = 3; i >= 0; i--) size = size << 8 | r[12 + i];
            if (size == 0) { skipped++; continue; }
            int64_t k = kt_id(&kt, id, NULL, 0);
            if (k < 0 || idvec_push(&ids, (uint32_t)k)) {
                moe_fail(err, "%s: offset %zu: out of memory or more than 2^32 keys", path, off);
                bad = 1;
            }
        }
        if (!bad) t = keys_to_trace(path, ids.v, ids.n, kt.n, "lcs-oracle", skipped, err);
        kt_free(&kt);
    }
    free(ids.v);
    free(buf);
    return t;
}
