/* trace_csv.c: the CSV interchange form (libcsv).
 *
 *   step,seq,token,layer,slot,expert,weight
 *
 * One row per (token, layer, slot) that names an expert; `weight` may be
 * empty. Import rules:
 *  - the header must be exactly the line above;
 *  - steps must not decrease from row to row; rows of one step may come in
 *    any order: a step's tokens are the distinct (token, seq) pairs, ordered
 *    by token then seq; a (token, layer) must use slots 0..n-1 with no gap;
 *  - geometry comes from the options, else max + 1 of each column; ids and
 *    options are held to the limits of trace_formats.h (MOE_CSV_*) before
 *    anything is sized by them, the message naming the line or the option;
 *  - a step's phase is not in the CSV: moe_infer_phase() decides;
 *  - the trace carries weights iff at least one row has one.
 * Import reads the file twice, holding one step's rows at a time: the first
 * pass checks every row and finds the geometry and the token count (so the
 * budgets are checked before anything is sized), the second builds the
 * trace step by step. Memory is the trace plus one step, not the text.
 * Export writes the rows sorted by step, token, seq, layer, slot, weights as
 * "%.9g" (enough digits for a float to survive the round trip exactly), so a
 * canonical CSV survives CSV -> binary -> CSV byte for byte. The header
 * strings, lookahead, logits, a token that has no expert at all, and the
 * geometry beyond what the rows show do not exist in this form. */
#include <csv.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trace_formats.h"

static const char *const col_name[7] = {"step", "seq", "token", "layer", "slot", "expert", "weight"};

typedef struct row {
    uint64_t step, line;
    uint32_t seq, tok, layer, slot, expert;
    float w;
} row;

typedef struct ctx {
    const char *path;
    const moe_csv_opts *o;
    moe_error *err;
    int failed;
    uint64_t line;      /* line being fed to libcsv */
    uint64_t n_records; /* records seen, header included */
    int field;          /* column of the next field */
    int any_weight;
    uint64_t vals[6];
    float w;
    row *rows;          /* the current step's rows */
    size_t n, cap;
    int pass;           /* 1: check and measure, 2: build */
    size_t n_rows;      /* data rows so far */
    uint64_t last_step, last_line; /* the previous row's step and line */
    uint64_t tokens;    /* pass 1: distinct (step, token, seq) */
    uint64_t steps;     /* pass 1 */
    moe_trace_builder *b; /* pass 2 */
    uint32_t *tseq, *tpos; /* pass 2: a step's tokens, for the phase rule */
    size_t tcap;
    uint32_t max[3];    /* largest layer, slot, expert seen */
    uint64_t max_line[3]; /* the first line that has it */
} ctx;

static void fail_at(ctx *c, int col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Report "file:line: column 'name': what" once; later errors are dropped. */
static void fail_at(ctx *c, int col, const char *fmt, ...) {
    if (c->failed) return;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (col >= 0)
        moe_fail(c->err, "%s:%llu: column '%s': %s", c->path, (unsigned long long)c->line, col_name[col], what);
    else
        moe_fail(c->err, "%s:%llu: %s", c->path, (unsigned long long)c->line, what);
    c->failed = 1;
}

/* Strict non-negative decimal. */
static int parse_uint(ctx *c, int col, const char *s, uint64_t max, uint64_t *out) {
    if (!*s) return fail_at(c, col, "empty"), -1;
    if (*s == '-') return fail_at(c, col, "negative value '%s'", s), -1;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return fail_at(c, col, "'%s' is not a non-negative integer", s), -1;
        uint64_t d = (uint64_t)(*p - '0');
        /* exact: every value up to UINT64_MAX is accepted (step ids of a
         * .moetrace are u64 and must survive export -> import) */
        if (v > (UINT64_MAX - d) / 10) return fail_at(c, col, "'%s' is too large (above %llu)", s,
                                                      (unsigned long long)UINT64_MAX), -1;
        v = v * 10 + d;
    }
    if (v > max) return fail_at(c, col, "'%s' is larger than %llu", s, (unsigned long long)max), -1;
    *out = v;
    return 0;
}

static void on_field(void *s, size_t len, void *data) {
    ctx *c = data;
    int col = c->field++;
    if (c->failed) return;
    const char *txt = s ? s : "";
    (void)len;
    if (c->n_records == 0) { /* header */
        if (col < 7 && strcmp(txt, col_name[col]) != 0)
            fail_at(c, -1, "wrong header: column %d is '%s', expected step,seq,token,layer,slot,expert,weight",
                    col + 1, txt);
        return;
    }
    if (col >= 7) return; /* counted in on_row */
    if (col < 6) {
        static const uint64_t max[6] = {UINT64_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX};
        parse_uint(c, col, txt, max[col], &c->vals[col]);
        return;
    }
    if (!*txt) { c->w = NAN; return; }
    char *end;
    errno = 0;
    float w = strtof(txt, &end);
    if (*end || end == txt || !isfinite(w)) fail_at(c, 6, "'%s' is not a finite number", txt);
    c->w = w;
    c->any_weight = 1;
}

static int flush_step(ctx *c);

static void on_row(int term, void *data) {
    ctx *c = data;
    (void)term;
    int nf = c->field;
    c->field = 0;
    if (c->failed) return;
    if (nf != 7) {
        fail_at(c, -1, "%d columns, expected 7 (step,seq,token,layer,slot,expert,weight)", nf);
        return;
    }
    if (c->n_records++ == 0) return;
    row r = {.step = c->vals[0], .line = c->line, .seq = (uint32_t)c->vals[1], .tok = (uint32_t)c->vals[2],
             .layer = (uint32_t)c->vals[3], .slot = (uint32_t)c->vals[4], .expert = (uint32_t)c->vals[5], .w = c->w};
    const uint32_t lim[3] = {c->o->layers, c->o->top_k, c->o->experts};
    const char *lim_name[3] = {"layers", "top_k", "experts"};
    const uint32_t v[3] = {r.layer, r.slot, r.expert};
    for (int i = 0; i < 3; i++) {
        if (lim[i] && v[i] >= lim[i]) {
            char m[128];
            snprintf(m, sizeof m, "%u >= %s (%u)", v[i], lim_name[i], lim[i]);
            fail_at(c, 3 + i, "%s", m);
            return;
        }
        if (v[i] > c->max[i] || c->n == 0) c->max[i] = v[i], c->max_line[i] = r.line;
    }
    /* Hard limits (trace.h), checked on the row so that no id can size an
     * allocation: a layer id sets the layer count, a slot the top_k. */
    if (r.layer >= MOE_MAX_LAYERS) {
        fail_at(c, 3, "%u is beyond the largest layer supported (%u: at most %u layers)", r.layer,
                MOE_MAX_LAYERS - 1, MOE_MAX_LAYERS);
        return;
    }
    if (r.slot >= MOE_MAX_EXPERTS) {
        fail_at(c, 4, "%u is beyond the largest slot supported (%u: top_k is at most %u, the expert limit)",
                r.slot, MOE_MAX_EXPERTS - 1, MOE_MAX_EXPERTS);
        return;
    }
    if (c->o->experts && r.slot >= c->o->experts) {
        fail_at(c, 4, "%u needs top_k %u > experts (%u)", r.slot, r.slot + 1, c->o->experts);
        return;
    }
    if (r.expert >= MOE_MAX_EXPERTS) {
        fail_at(c, 5, "%u >= the largest expert count supported (%u)", r.expert, MOE_MAX_EXPERTS);
        return;
    }
    if (c->n_rows && r.step < c->last_step) {
        char m[160];
        snprintf(m, sizeof m, "%llu after step %llu (line %llu): steps must not decrease",
                 (unsigned long long)r.step, (unsigned long long)c->last_step, (unsigned long long)c->last_line);
        fail_at(c, 0, "%s", m);
        return;
    }
    if (c->n && r.step != c->rows[0].step && flush_step(c)) return;
    c->last_step = r.step, c->last_line = r.line, c->n_rows++;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 1024;
        row *nr = realloc(c->rows, nc * sizeof *nr);
        if (!nr) { fail_at(c, -1, "out of memory"); return; }
        c->rows = nr, c->cap = nc;
    }
    c->rows[c->n++] = r;
}

static int row_cmp(const void *a, const void *b) {
    const row *x = a, *y = b;
#define CMP(f) if (x->f != y->f) return x->f < y->f ? -1 : 1
    CMP(tok); CMP(seq); CMP(layer); CMP(slot); CMP(line);
#undef CMP
    return 0;
}

/* One budget of trace_formats.h: `what` = dim[x] x dim[y] (x tokens when
 * tokens > 0) must stay within MOE_CSV_SLOTS_PER_ROW per row or
 * MOE_CSV_SLOTS_FREE in all, unless both dimensions came from options (then
 * within `explicit_max`, 0 = no further limit). Dimensions: 0 layers, 1
 * top_k, 2 experts; line[] is the line that set an inferred one. 0 or -1. */
static int check_one_budget(ctx *c, const char *what, int x, int y, uint64_t tokens, const uint32_t dim[3],
                            const int given[3], const uint64_t line[3], uint64_t unit_bytes,
                            uint64_t explicit_max) {
    static const char *const dim_name[3] = {"layers", "top_k", "experts"};
    static const char *const opt_name[3] = {"--layers", "--top-k", "--experts"};
    uint64_t n = dim[x], bytes = 0, dense;
    int over = __builtin_mul_overflow(n, (uint64_t)dim[y], &n) ||
               (tokens && __builtin_mul_overflow(n, tokens, &n)) || __builtin_mul_overflow(n, unit_bytes, &bytes);
    if (__builtin_mul_overflow((uint64_t)c->n_rows, (uint64_t)MOE_CSV_SLOTS_PER_ROW, &dense)) dense = UINT64_MAX;
    if (!over && (n <= dense || n <= MOE_CSV_SLOTS_FREE)) return 0;
    int explicit_geometry = given[x] && given[y];
    if (!over && explicit_geometry && (!explicit_max || bytes <= explicit_max)) return 0;
    char total[48], tok[48] = "", and_tok[48] = "";
    if (over) snprintf(total, sizeof total, "more than 2^64");
    else snprintf(total, sizeof total, "%llu", (unsigned long long)n);
    if (tokens) snprintf(tok, sizeof tok, " x %llu tokens", (unsigned long long)tokens);
    if (tokens) snprintf(and_tok, sizeof and_tok, " and %llu tokens", (unsigned long long)tokens);
    if (explicit_geometry)
        return moe_fail(c->err,
                        "%s: %s %u x %s %u%s = %s %s for %zu rows: more than %u per row and more than the %llu "
                        "bytes allowed for a geometry given by options",
                        c->path, opt_name[x], dim[x], opt_name[y], dim[y], tok, total, what, c->n_rows,
                        MOE_CSV_SLOTS_PER_ROW, (unsigned long long)explicit_max);
    /* Name the line that set the larger inferred dimension, and where the
     * other one came from. */
    int col = given[x] ? y : given[y] ? x : dim[x] >= dim[y] ? x : y, oth = col == x ? y : x;
    char src[48];
    if (given[oth]) snprintf(src, sizeof src, "%s", opt_name[oth]);
    else snprintf(src, sizeof src, "line %llu", (unsigned long long)line[oth]);
    char limit[64] = "";
    if (explicit_max) snprintf(limit, sizeof limit, " (up to %llu bytes)", (unsigned long long)explicit_max);
    c->line = line[col];
    char m[600];
    snprintf(m, sizeof m,
             "%u sets %s %u; with %s %u (%s)%s the trace would hold %s %s for %zu rows, more than %u per row "
             "and more than %u in all, for a geometry inferred from the ids; give %s and %s to import it "
             "anyway%s",
             c->max[col], dim_name[col], dim[col], dim_name[oth], dim[oth], src, and_tok, total, what, c->n_rows,
             MOE_CSV_SLOTS_PER_ROW, MOE_CSV_SLOTS_FREE, opt_name[x < y ? x : y], opt_name[x < y ? y : x], limit);
    fail_at(c, 3 + col, "%s", m);
    return -1;
}

/* The geometry budgets of trace_formats.h: record slots, then keys. */
static int check_budget(ctx *c, const uint32_t dim[3], uint64_t tokens) {
    const moe_csv_opts *o = c->o;
    const int given[3] = {o->layers != 0, o->top_k != 0, o->experts != 0};
    /* experts is raised to top_k when the ids name fewer: then the slot's line set it */
    const uint64_t line[3] = {c->max_line[0], c->max_line[1],
                              !given[2] && dim[2] > c->max[2] + 1 ? c->max_line[1] : c->max_line[2]};
    const uint64_t per_slot = sizeof(uint16_t) + (c->any_weight ? sizeof(float) : 0);
    if (check_one_budget(c, "record slots", 0, 1, tokens, dim, given, line, per_slot, MOE_CSV_EXPLICIT_BYTES))
        return -1;
    return check_one_budget(c, "(layer, expert) keys", 0, 2, 0, dim, given, line, 1, 0);
}

/* Pass 2: add the step in c->rows (sorted by flush_step) to the builder.
 * 0, or -1 with the error set (the line is the row's). */
static int build_step(ctx *c) {
    moe_trace_builder *b = c->b;
    /* tokens of the step, for the phase rule */
    uint64_t nt = 0;
    for (size_t k = 0; k < c->n; k++) {
        if (k > 0 && c->rows[k].tok == c->rows[k - 1].tok && c->rows[k].seq == c->rows[k - 1].seq) continue;
        if (nt == c->tcap) {
            size_t nc = c->tcap ? c->tcap * 2 : 64;
            uint32_t *a = realloc(c->tseq, nc * 4), *bb = a ? realloc(c->tpos, nc * 4) : NULL;
            if (a) c->tseq = a;
            if (bb) c->tpos = bb;
            if (!a || !bb) return moe_fail(c->err, "%s: out of memory", c->path);
            c->tcap = nc;
        }
        c->tseq[nt] = c->rows[k].seq, c->tpos[nt] = c->rows[k].tok, nt++;
    }
    c->line = c->rows[0].line;
    if (moe_tb_begin_step(b, c->rows[0].step, moe_infer_phase(c->tseq, c->tpos, nt), c->err)) goto fail_line;
    int64_t tok = -1;
    for (size_t k = 0; k < c->n; k++) {
        const row *r = &c->rows[k], *p = k > 0 ? r - 1 : NULL;
        c->line = r->line;
        if (!p || r->tok != p->tok || r->seq != p->seq) {
            tok = moe_tb_add_token(b, r->seq, r->tok, c->err);
            if (tok < 0) goto fail_line;
            p = NULL;
        } else if (r->layer != p->layer) {
            p = NULL;
        }
        if (p && r->slot == p->slot) {
            char m[200];
            snprintf(m, sizeof m, "duplicate (step %llu, seq %u, token %u, layer %u, slot %u), first on line %llu",
                     (unsigned long long)r->step, r->seq, r->tok, r->layer, r->slot, (unsigned long long)p->line);
            fail_at(c, 4, "%s", m);
            return -1;
        }
        uint32_t want = p ? p->slot + 1 : 0;
        if (r->slot != want) {
            char m[200];
            snprintf(m, sizeof m, "slot %u of (step %llu, seq %u, token %u, layer %u) but slot %u is missing",
                     r->slot, (unsigned long long)r->step, r->seq, r->tok, r->layer, want);
            fail_at(c, 4, "%s", m);
            return -1;
        }
        if (moe_tb_set(b, (uint64_t)tok, r->layer, r->slot, r->expert, r->w, c->err)) goto fail_line;
    }
    return 0;
fail_line:
    moe_fail_prefix(c->err, "%s:%llu", c->path, (unsigned long long)c->line);
    c->failed = 1;
    return -1;
}

/* The rows of one step are complete: sort them into build order (token,
 * seq, layer, slot, line), then count its tokens (pass 1) or build it
 * (pass 2). 0, or -1 with c->failed set. */
static int flush_step(ctx *c) {
    qsort(c->rows, c->n, sizeof(row), row_cmp);
    int rc = 0;
    if (c->pass == 1) {
        c->steps++;
        for (size_t k = 0; k < c->n; k++)
            c->tokens += k == 0 || c->rows[k].tok != c->rows[k - 1].tok || c->rows[k].seq != c->rows[k - 1].seq;
    } else {
        uint64_t line = c->line;
        rc = build_step(c);
        if (rc == 0) c->line = line; /* the line being read, for later messages */
        else c->failed = 1;
    }
    c->n = 0;
    return rc;
}

/* One pass over the file (c->pass says which): every row through libcsv,
 * the last step flushed. 0, or -1 with the error set. */
static int read_pass(ctx *c) {
    const char *path = c->path;
    moe_error *err = c->err;
    FILE *f = fopen(path, "rb");
    if (!f) return moe_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct csv_parser p;
    moe_lines lr;
    if (csv_init(&p, CSV_STRICT | CSV_APPEND_NULL) != 0 || moe_lines_init(&lr, f)) {
        fclose(f);
        return moe_fail(err, "%s: out of memory", path);
    }
    c->line = c->n_records = 0, c->field = 0, c->n = c->n_rows = 0, c->failed = 0;
    ssize_t n;
    uint64_t total = moe_file_size(f);
    /* Fed line by line so that every callback knows its line number. */
    int too_long;
    while (!c->failed && (n = moe_lines_next(&lr, MOE_MAX_LINE, &too_long)) > 0) {
        char *ln = lr.line;
        if (too_long) {
            moe_fail(err, "%s:%llu: line longer than %u MiB: not a CSV row", path, (unsigned long long)c->line + 1,
                     MOE_MAX_LINE >> 20);
            c->failed = 1;
            break;
        }
        /* progress: the first pass is the first half */
        if ((++c->line & 0xFFFF) == 0 && total)
            moe_import_progress(c->o->rep, (c->pass - 1) * total / 2 + lr.consumed / 2, total);
        /* A UTF-8 byte order mark (editors on Windows add one) is not part
         * of the header: skipped, so it cannot show in a message. */
        if (c->line == 1 && n >= 3 && !memcmp(ln, "\xEF\xBB\xBF", 3)) ln += 3, n -= 3;
        if (csv_parse(&p, ln, (size_t)n, on_field, on_row, c) != (size_t)n && !c->failed) {
            moe_fail(err, "%s:%llu: %s", path, (unsigned long long)c->line, csv_strerror(csv_error(&p)));
            c->failed = 1;
        }
    }
    int rerr = ferror(f);
    if (!c->failed && csv_fini(&p, on_field, on_row, c) != 0 && !c->failed) {
        moe_fail(err, "%s:%llu: %s", path, (unsigned long long)c->line, csv_strerror(csv_error(&p)));
        c->failed = 1;
    }
    csv_free(&p);
    moe_lines_free(&lr);
    fclose(f);
    if (!c->failed && c->n) flush_step(c);
    if (c->failed) return -1;
    if (rerr) return moe_fail(err, "%s: read error", path);
    return 0;
}

moe_trace *moe_trace_load_csv(const char *path, const moe_csv_opts *o, moe_error *err) {
    ctx c = {.path = path, .o = o, .err = err};
    /* Options are held to the same limits as ids, before any row is read. */
    const char *bad_opt = o->layers > MOE_MAX_LAYERS ? "--layers" : o->experts > MOE_MAX_EXPERTS ? "--experts"
                        : o->top_k > MOE_MAX_EXPERTS ? "--top-k" : NULL;
    if (bad_opt || (o->top_k && o->experts && o->top_k > o->experts)) {
        if (bad_opt)
            moe_fail(err, "%s: %s %u is beyond the largest supported (%u)", path, bad_opt,
                     bad_opt[2] == 'l' ? o->layers : bad_opt[2] == 'e' ? o->experts : o->top_k,
                     bad_opt[2] == 'l' ? MOE_MAX_LAYERS : MOE_MAX_EXPERTS);
        else
            moe_fail(err, "%s: --top-k %u is larger than --experts %u", path, o->top_k, o->experts);
        return NULL;
    }
    moe_trace *t = NULL;
    c.pass = 1;
    if (read_pass(&c)) goto out;
    if (c.n_records == 0) {
        moe_fail(err, "%s:1: empty file, expected the header step,seq,token,layer,slot,expert,weight", path);
        goto out;
    }
    if (c.n_rows == 0) {
        moe_fail(err, "%s:2: no data rows after the header", path);
        goto out;
    }
    uint32_t layers = o->layers ? o->layers : c.max[0] + 1;
    uint32_t top_k = o->top_k ? o->top_k : c.max[1] + 1;
    uint32_t experts = o->experts ? o->experts : c.max[2] + 1;
    if (top_k > experts) experts = top_k; /* inferred experts can be below top_k in tiny files */
    const uint32_t dim[3] = {layers, top_k, experts};
    if (check_budget(&c, dim, c.tokens)) goto out;
    if (moe_trace_check_geometry(layers, experts, top_k, 0, err)) {
        moe_fail_prefix(err, "%s", path);
        goto out;
    }
    /* the trace's arrays: per token seq, pos and the records; per step
     * first token, id and phase (the budgets above bound each factor) */
    double trace_bytes = (double)c.tokens * (8.0 + (double)layers * top_k * (c.any_weight ? 6.0 : 2.0)) +
                         (double)c.steps * 17.0;
    if (moe_import_cap(o->rep, trace_bytes > 1.8e19 ? UINT64_MAX : (uint64_t)trace_bytes, path, "the trace", err))
        goto out;
    if (!(c.b = moe_tb_new(layers, experts, top_k, c.any_weight, 0, 0))) {
        moe_fail(err, "%s: out of memory", path);
        goto out;
    }
    size_t rows1 = c.n_rows;
    c.pass = 2;
    if (read_pass(&c)) goto out;
    if (c.n_rows != rows1) { /* the file changed between the passes */
        moe_fail(err, "%s: %zu data rows on the first reading, %zu on the second: the file changed while it was "
                 "imported", path, rows1, c.n_rows);
        goto out;
    }
    t = moe_tb_finish(c.b, "", "import csv", "imported_from=csv", err), c.b = NULL;
    if (!t) moe_fail_prefix(err, "%s", path);
out:
    if (c.b) moe_tb_abort(c.b);
    free(c.rows), free(c.tseq), free(c.tpos);
    return t;
}

/* ---- export ------------------------------------------------------------ */

typedef struct tok_key {
    uint32_t pos, seq;
    uint64_t idx;
} tok_key;

static int tok_cmp(const void *a, const void *b) {
    const tok_key *x = a, *y = b;
    if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
    if (x->seq != y->seq) return x->seq < y->seq ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

int moe_trace_save_csv(const moe_trace *t, const char *path, moe_error *err) {
    moe_atomic_file af;
    if (moe_atomic_open(&af, path, err)) return -1;
    FILE *f = af.f;
    tok_key *keys = NULL;
    size_t kcap = 0;
    int bad = fputs("step,seq,token,layer,slot,expert,weight\n", f) < 0;
    for (uint64_t s = 0; s < t->n_steps && !bad; s++) {
        uint64_t a = t->step_first_token[s], n = t->step_first_token[s + 1] - a;
        if (n > kcap) {
            tok_key *k = realloc(keys, n * sizeof *k);
            if (!k) { bad = 1; errno = ENOMEM; break; }
            keys = k, kcap = n;
        }
        for (uint64_t i = 0; i < n; i++) keys[i] = (tok_key){t->token_pos[a + i], t->token_seq[a + i], a + i};
        qsort(keys, n, sizeof *keys, tok_cmp);
        for (uint64_t i = 0; i < n && !bad; i++)
            for (uint32_t l = 0; l < t->n_layers && !bad; l++) {
                size_t r = moe_trace_rec(t, keys[i].idx, l);
                for (uint32_t k = 0; k < t->top_k && !bad; k++) {
                    if (t->experts[r + k] == MOE_NO_EXPERT) break;
                    bad = fprintf(f, "%llu,%u,%u,%u,%u,%u,", (unsigned long long)t->step_id[s], keys[i].seq,
                                  keys[i].pos, l, k, t->experts[r + k]) < 0;
                    if (!bad && t->weights && !isnan(t->weights[r + k]))
                        bad = fprintf(f, "%.9g", (double)t->weights[r + k]) < 0;
                    if (!bad) bad = fputc('\n', f) == EOF;
                }
            }
    }
    free(keys);
    if (bad) {
        int e = errno ? errno : EIO;
        moe_atomic_abort(&af);
        return moe_fail(err, "%s: write failed: %s", path, strerror(e));
    }
    return moe_atomic_commit(&af, err);
}
