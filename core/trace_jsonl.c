/* trace_jsonl.c: routing logs written by other tools, one JSON object per
 * line and per (token, layer). Two layouts (issue 2):
 *
 * Mixtral (vLLM hook):
 *   {"dataset": "humaneval", "problem_id": 0, "layer": 0, "token_pos": 3,
 *    "experts": [4, 0], "gating_probs": [0.88, 0.12]}
 *   - with token_pos ("exec" order): lines are in execution order and a new
 *     forward pass (step) starts whenever `layer` decreases, or the problem
 *     changes, or (if a step field is mapped) its value changes; a step's
 *     tokens are its distinct token positions. A layer may be missing.
 *   - with token_idx ("sorted" order): lines are ordered by problem, layer,
 *     token; there is no pass information, so they are re-sorted to
 *     (problem in order of appearance, token, layer) and every token is
 *     replayed as its own step.
 *   problem_id is the sequence id. The token key is token_pos or token_idx,
 *   whichever the first record has (the order's own key first when --order
 *   is given), unless --field token=KEY names it.
 *   - exec order, positions that restart: some hooks write token_pos as the
 *     index within the forward pass, so every decode pass logs 0 and every
 *     step would look like a prefill. A sequence whose pass starts at or
 *     below a position it already had is such a log: its tokens there are
 *     renumbered to continue the sequence (first pass kept as logged), a
 *     note says so and meta records token_pos=renumbered; phases then follow
 *     moe_infer_phase on the renumbered positions.
 *
 * Qwen1.5-MoE (vLLM logger):
 *   line 1: {"type": "meta", "model_id": "...", "top_k": 4, "layers_logged": [12], ...}
 *   then:   {"type": "route", "req_id": "r1", "token_idx": 0, "layer": 12,
 *            "topk_ids": [...], "topk_weights": [...]}
 *   - logged layers become trace layers 0..n-1 in the order of
 *     layers_logged (recorded in meta as layers_logged=...);
 *   - req_ids become sequence ids 0, 1, ... in order of first appearance
 *     among the rows kept;
 *   - forward passes (steps), --pass-by RULE:
 *       token (default): consecutive rows of one (req_id, token_idx) form a
 *         token, and every token is its own pass;
 *       wrap: a row starts a pass when its layer (as logged) is below the
 *         previous row's, or it repeats the (req_id, token_idx, layer) of a
 *         row already in the pass (a token index that restarts: with one
 *         logged layer the only sign of a new pass);
 *       rows=N: every N route rows (after the explicit warm-up options) form
 *         a pass;
 *       key=KEY: a pass starts where JSON key KEY (a string or a number)
 *         differs from the previous row's.
 *     The rows of a pass with distinct (req_id, token_idx) are that step's
 *     tokens (a prefill chunk or a decode batch). --field step=KEY (an
 *     integer whose change starts a pass) is the older form of key=KEY;
 *     giving both is an error;
 *   - warm-up: a server's warm-up (vLLM / SGLang profile runs and CUDA-graph
 *     captures: dummy forward passes over identical input, so identical
 *     routing, at several batch sizes) comes first and carries no marker; in
 *     real logs every row has the same req_id, so only routing shows it. By
 *     default it is detected and dropped. Rule: the passes before the first
 *     pass whose routing differs from the first pass's are warm-up when there
 *     are at least MOE_WARMUP_MIN_PASSES (8) of them; a pass's routing is, for
 *     every layer, the set of experts its tokens chose (the union: the number
 *     of tokens does not matter). A note names the file, the passes, rows and
 *     lines dropped and the line where routing first differs; a log whose
 *     passes all route alike is kept whole, with a note. --keep-warmup keeps
 *     the warm-up (a note says what looked like it). --skip-warmup N (the
 *     first N route rows) and --warmup-prefix P (rows whose req_id starts
 *     with P) name the warm-up rows instead: those are dropped, detection is
 *     off (a note if the rows left still start with such a run); the two
 *     combine (a row goes if either says so); either with --keep-warmup is an
 *     error. Meta: skipped_warmup_rows=R and warmup=HOW;
 *   - positions and phases: with several req_ids, a sequence whose token_idx
 *     restarts in a later pass (at or below a position it already reached)
 *     logs positions within the pass, renumbered to continue the sequence as
 *     for Mixtral (a note; meta token_idx=renumbered). With one req_id the id
 *     tells nothing: positions stay as logged, and a pass with several
 *     tokens may be a prefill chunk or a decode batch, a restart a new
 *     request or a position within the pass; so if some pass holds several
 *     tokens or token_idx restarts, phases are unknown: every step is
 *     labelled decode, meta says phases=unknown and a note why. Otherwise
 *     phases follow moe_infer_phase;
 *   - weights are raw softmax probabilities, kept exactly as given;
 *   - rows whose type is not "route" are ignored.
 *
 * Experts are kept in the order given (slot 0 first). Geometry: options,
 * else max + 1 over the rows kept (qwen top_k from the meta line). Every message names
 * file:line and the field.
 *
 * Both layouts: a (token, layer) with no row (a logger that skipped the row,
 * e.g. on a tie, or --layers above the layers logged) stays empty; it is
 * reported as a warning with counts and the first (step, layer) slots, and
 * is an error under strict (moe_import_report). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strindex.h"
#include "trace_formats.h"

static const char *const jf_name[MOE_JF_COUNT] = {"seq", "layer", "token", "experts", "weights", "step"};

int moe_jsonl_map_field(moe_jsonl_opts *o, const char *spec, moe_error *err) {
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1]) return moe_fail(err, "--field '%s': expected NAME=KEY", spec);
    for (int i = 0; i < MOE_JF_COUNT; i++)
        if (strlen(jf_name[i]) == (size_t)(eq - spec) && !strncmp(spec, jf_name[i], (size_t)(eq - spec))) {
            o->field[i] = eq + 1;
            return 0;
        }
    return moe_fail(err, "--field '%s': unknown name (seq, layer, token, experts, weights, step)", spec);
}

int moe_jsonl_pass_by(moe_jsonl_opts *o, const char *spec, moe_error *err) {
    if (!strcmp(spec, "token")) return o->pass_by = MOE_PASS_TOKEN, 0;
    if (!strcmp(spec, "wrap")) return o->pass_by = MOE_PASS_WRAP, 0;
    if (!strncmp(spec, "key=", 4) && spec[4]) return o->pass_by = MOE_PASS_KEY, o->pass_key = spec + 4, 0;
    if (!strncmp(spec, "rows=", 5)) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(spec + 5, &end, 10);
        if (spec[5] >= '0' && spec[5] <= '9' && !*end && errno == 0 && v > 0) {
            o->pass_by = MOE_PASS_ROWS, o->pass_rows = v;
            return 0;
        }
        return moe_fail(err, "--pass-by '%s': rows=N needs a whole number N >= 1", spec);
    }
    return moe_fail(err, "--pass-by '%s': expected token, wrap, rows=N or key=KEY", spec);
}

int moe_jsonl_check_opts(const moe_jsonl_opts *o, moe_error *err) {
    if (o->keep_warmup && (o->skip_warmup || o->warmup_prefix))
        return moe_fail(err, "--keep-warmup conflicts with %s: one keeps every row, the other drops rows as warm-up; "
                        "give one", o->skip_warmup ? "--skip-warmup" : "--warmup-prefix");
    if (o->pass_by < MOE_PASS_DEFAULT || o->pass_by > MOE_PASS_KEY) return moe_fail(err, "unknown pass rule %d", o->pass_by);
    if (o->pass_by != MOE_PASS_DEFAULT && o->field[MOE_JF_STEP])
        return moe_fail(err, "--pass-by conflicts with --field step=%s: both say where a forward pass starts; give one",
                        o->field[MOE_JF_STEP]);
    if (o->pass_by == MOE_PASS_ROWS && !o->pass_rows) return moe_fail(err, "--pass-by rows=N needs N >= 1");
    if (o->pass_by == MOE_PASS_KEY && (!o->pass_key || !*o->pass_key)) return moe_fail(err, "--pass-by key=KEY needs a key");
    return 0;
}

/* One (token, layer) row. */
typedef struct jrec {
    uint64_t line, step_val, order;
    uint32_t seq, pos, layer, n, off;
    uint32_t raw_layer; /* the layer as logged (qwen: before the layers_logged index) */
    int has_step;
    int renum; /* token position renumbered (renumber_positions) */
} jrec;

typedef struct jctx {
    const char *path;
    const moe_jsonl_opts *o;
    moe_error *err;
    uint64_t line;
    const char *key[MOE_JF_COUNT];
    jrec *recs;
    size_t n, cap;
    uint32_t *ex;
    float *w;
    size_t nex, capex;
    int any_weight;
    uint32_t max_layer, max_expert, max_n;
    uint64_t max_n_line; /* the first line with max_n experts */
    /* qwen */
    char **req;     /* req_id strings in order of first appearance */
    size_t nreq, capreq;
    moe_strindex req_index; /* over req[0..nreq) while lines are read */
    uint32_t *ex_stamp, ex_gen; /* MOE_MAX_EXPERTS stamps: duplicate experts in a row */
    const moe_import_report *rep; /* may be NULL */
    uint64_t renumbered;          /* tokens whose pass-relative token_pos was renumbered */
    char later[4][1024];          /* notes said only if the import succeeds (jlater) */
    int n_later;
} jctx;

static void jsay(jctx *c, int is_warning, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void jsay(jctx *c, int is_warning, const char *fmt, ...) {
    if (!c->rep || !c->rep->say) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->rep->say(c->rep->ctx, is_warning, msg);
}

/* A note kept until the trace is built (a failed import says only why). */
static void jlater(jctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jlater(jctx *c, const char *fmt, ...) {
    if (c->n_later == (int)(sizeof c->later / sizeof *c->later)) return; /* callers say at most 3 */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->later[c->n_later++], sizeof *c->later, fmt, ap);
    va_end(ap);
}

static int jfail(jctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int jfail(jctx *c, const char *fmt, ...) {
    char what[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return moe_fail(c->err, "%s:%llu: %s", c->path, (unsigned long long)c->line, what);
}

/* A non-negative integer field. */
static int get_uint(jctx *c, const cJSON *obj, const char *key, uint64_t max, uint64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return jfail(c, "field '%s': missing", key);
    if (!cJSON_IsNumber(v)) return jfail(c, "field '%s': not a number", key);
    double d = v->valuedouble;
    if (d < 0) return jfail(c, "field '%s': negative value %g", key, d);
    if (d != floor(d) || d > (double)max) return jfail(c, "field '%s': %g is not an integer in 0..%llu", key, d, (unsigned long long)max);
    *out = (uint64_t)d;
    return 0;
}

/* The row tables against --max-memory, when they are about to grow. */
static int check_cap(jctx *c, size_t recs, size_t ex) {
    char where[600];
    snprintf(where, sizeof where, "%s:%llu", c->path, (unsigned long long)c->line);
    return moe_import_cap(c->rep, (uint64_t)recs * sizeof(jrec) + (uint64_t)ex * 8, where, "the rows read so far",
                          c->err);
}

static int push_rec(jctx *c, jrec *r) {
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 1024;
        if (check_cap(c, nc, c->capex)) return -1;
        jrec *nr = realloc(c->recs, nc * sizeof *nr);
        if (!nr) return jfail(c, "out of memory");
        c->recs = nr, c->cap = nc;
    }
    r->order = c->n;
    c->recs[c->n++] = *r;
    return 0;
}

/* Read experts and weights arrays of obj into the pools; fills r->n, r->off. */
static int get_experts(jctx *c, const cJSON *obj, jrec *r) {
    const char *ek = c->key[MOE_JF_EXPERTS], *wk = c->key[MOE_JF_WEIGHTS];
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(obj, ek);
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(obj, wk);
    if (!e) return jfail(c, "field '%s': missing", ek);
    if (!cJSON_IsArray(e)) return jfail(c, "field '%s': not an array", ek);
    int n = cJSON_GetArraySize(e);
    if (n == 0) return jfail(c, "field '%s': empty", ek);
    if (w && !cJSON_IsNull(w)) {
        if (!cJSON_IsArray(w)) return jfail(c, "field '%s': not an array", wk);
        if (cJSON_GetArraySize(w) != n)
            return jfail(c, "field '%s': %d values for %d experts", wk, cJSON_GetArraySize(w), n);
        c->any_weight = 1;
    } else {
        w = NULL;
    }
    while (c->nex + (size_t)n > c->capex) {
        size_t nc = c->capex ? c->capex * 2 : 4096;
        if (check_cap(c, c->cap, nc)) return -1;
        uint32_t *ne = realloc(c->ex, nc * sizeof *ne);
        if (ne) c->ex = ne;
        float *nw = ne ? realloc(c->w, nc * sizeof *nw) : NULL;
        if (nw) c->w = nw;
        if (!ne || !nw) return jfail(c, "out of memory");
        c->capex = nc;
    }
    r->off = (uint32_t)c->nex;
    r->n = (uint32_t)n;
    if ((size_t)r->off != c->nex) return jfail(c, "log too large");
    /* Linear in the row: items are walked as the list they are (indexing
     * them is O(i) each), duplicates found by a stamp per expert id (a scan
     * of the earlier items made one row of 65534 experts take 13 s). */
    if (!c->ex_stamp && !(c->ex_stamp = calloc(MOE_MAX_EXPERTS, sizeof *c->ex_stamp))) return jfail(c, "out of memory");
    if (++c->ex_gen == 0) memset(c->ex_stamp, 0, MOE_MAX_EXPERTS * sizeof *c->ex_stamp), c->ex_gen = 1;
    const cJSON *x = e->child, *y = w ? w->child : NULL;
    for (int i = 0; i < n; i++, x = x->next, y = y ? y->next : NULL) {
        if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble != floor(x->valuedouble))
            return jfail(c, "field '%s': item %d is not a non-negative integer", ek, i);
        if (x->valuedouble >= (c->o->experts ? c->o->experts : MOE_MAX_EXPERTS))
            return jfail(c, "field '%s': %g >= experts (%u)", ek, x->valuedouble,
                         c->o->experts ? c->o->experts : MOE_MAX_EXPERTS);
        uint32_t id = (uint32_t)x->valuedouble;
        if (c->ex_stamp[id] == c->ex_gen) return jfail(c, "field '%s': expert %u listed twice", ek, id);
        c->ex_stamp[id] = c->ex_gen;
        c->ex[c->nex + (size_t)i] = id;
        c->w[c->nex + (size_t)i] = NAN;
        if (w) {
            if (!cJSON_IsNumber(y) || !isfinite(y->valuedouble))
                return jfail(c, "field '%s': item %d is not a finite number", wk, i);
            /* weights are stored as 32-bit floats: beyond FLT_MAX they would be inf */
            if (!isfinite((float)y->valuedouble))
                return jfail(c, "field '%s': item %d: %g is beyond the largest 32-bit float (%g)", wk, i,
                             y->valuedouble, (double)FLT_MAX);
            c->w[c->nex + (size_t)i] = (float)y->valuedouble;
        }
        if (id > c->max_expert) c->max_expert = id;
    }
    if (c->o->top_k && (uint32_t)n > c->o->top_k) return jfail(c, "field '%s': %d experts > top_k (%u)", ek, n, c->o->top_k);
    if ((uint32_t)n > c->max_n) c->max_n = (uint32_t)n, c->max_n_line = c->line;
    c->nex += (size_t)n;
    return 0;
}

static int get_step(jctx *c, const cJSON *obj, jrec *r) {
    if (!c->key[MOE_JF_STEP]) return 0;
    r->has_step = 1;
    return get_uint(c, obj, c->key[MOE_JF_STEP], UINT64_MAX, &r->step_val);
}

/* ---- layout-specific line parsers --------------------------------------- */

static int mixtral_line(jctx *c, const cJSON *obj, int *order) {
    if (!c->key[MOE_JF_TOKEN]) { /* not mapped: decided by the first record */
        int pos = cJSON_GetObjectItemCaseSensitive(obj, "token_pos") != NULL;
        int idx = cJSON_GetObjectItemCaseSensitive(obj, "token_idx") != NULL;
        if (!pos && !idx) return jfail(c, "neither 'token_pos' nor 'token_idx' present (map one with --field token=KEY)");
        if (*order == MOE_ORDER_AUTO) *order = pos ? MOE_ORDER_EXEC : MOE_ORDER_SORTED;
        /* an explicit order reads its own key when the record has both */
        int use_idx = *order == MOE_ORDER_SORTED ? idx : !pos;
        c->key[MOE_JF_TOKEN] = use_idx ? "token_idx" : "token_pos";
    }
    jrec r = {.line = c->line};
    uint64_t v;
    if (get_uint(c, obj, c->key[MOE_JF_SEQ], UINT32_MAX, &v)) return -1;
    r.seq = (uint32_t)v;
    if (get_uint(c, obj, c->key[MOE_JF_LAYER], c->o->layers ? c->o->layers - 1 : MOE_MAX_EXPERTS, &v)) return -1;
    r.layer = (uint32_t)v;
    if (get_uint(c, obj, c->key[MOE_JF_TOKEN], UINT32_MAX, &v)) return -1;
    r.pos = (uint32_t)v;
    if (get_step(c, obj, &r) || get_experts(c, obj, &r)) return -1;
    r.raw_layer = r.layer;
    if (r.layer > c->max_layer) c->max_layer = r.layer;
    return push_rec(c, &r);
}

typedef struct qwen_state {
    int have_meta;
    uint32_t top_k;
    uint32_t *layers_logged;
    uint64_t *logged_sorted; /* (layer << 32 | index), ascending: the row lookup */
    uint32_t n_logged;
    char model[64];
    uint64_t route_rows, skipped;
    uint64_t kept_rows;   /* route rows after the explicit warm-up options (--pass-by rows=N) */
    uint64_t key_passes;  /* --pass-by key=KEY: passes so far */
    char *key_prev;       /* the key's value on the previous row, as text */
} qwen_state;

/* --pass-by rows=N / key=KEY: the row's pass number into r->step_val. */
static int qwen_pass(jctx *c, const cJSON *obj, qwen_state *q, jrec *r) {
    const moe_jsonl_opts *o = c->o;
    if (o->pass_by == MOE_PASS_ROWS) {
        r->has_step = 1, r->step_val = q->kept_rows++ / o->pass_rows;
        return 0;
    }
    if (o->pass_by != MOE_PASS_KEY) return 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, o->pass_key);
    char buf[40];
    const char *txt;
    if (!v) return jfail(c, "field '%s': missing (--pass-by key=%s)", o->pass_key, o->pass_key);
    if (cJSON_IsString(v)) txt = v->valuestring;
    else if (cJSON_IsNumber(v)) snprintf(buf, sizeof buf, "\x01%.17g", v->valuedouble), txt = buf; /* 1 != "1" */
    else return jfail(c, "field '%s': not a string or a number (--pass-by key=%s)", o->pass_key, o->pass_key);
    if (!q->key_prev || strcmp(q->key_prev, txt)) {
        char *d = strdup(txt);
        if (!d) return jfail(c, "out of memory");
        free(q->key_prev), q->key_prev = d, q->key_passes++;
    }
    r->has_step = 1, r->step_val = q->key_passes;
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int qwen_meta(jctx *c, const cJSON *obj, qwen_state *q) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "meta"))
        return jfail(c, "expected the meta line {\"type\": \"meta\", \"top_k\": K, \"layers_logged\": [...]} first");
    q->have_meta = 1;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "model_id");
    if (cJSON_IsString(m)) snprintf(q->model, sizeof q->model, "%s", m->valuestring);
    if (cJSON_GetObjectItemCaseSensitive(obj, "top_k")) {
        uint64_t v;
        if (get_uint(c, obj, "top_k", MOE_MAX_EXPERTS, &v)) return -1;
        q->top_k = (uint32_t)v;
    }
    const cJSON *ll = cJSON_GetObjectItemCaseSensitive(obj, "layers_logged");
    if (ll) {
        if (!cJSON_IsArray(ll) || cJSON_GetArraySize(ll) == 0) return jfail(c, "field 'layers_logged': not a non-empty array");
        int n = cJSON_GetArraySize(ll);
        q->layers_logged = calloc((size_t)n, sizeof(uint32_t));
        q->logged_sorted = calloc((size_t)n, sizeof(uint64_t));
        if (!q->layers_logged || !q->logged_sorted) return jfail(c, "out of memory");
        /* n log n: walk the list, sort (layer, index) pairs, duplicates are
         * neighbours (pairwise checks made 200k layers take two minutes) */
        const cJSON *x = ll->child;
        for (int i = 0; i < n; i++, x = x->next) {
            if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble != floor(x->valuedouble) || x->valuedouble > 1e6)
                return jfail(c, "field 'layers_logged': item %d is not a layer number", i);
            q->layers_logged[i] = (uint32_t)x->valuedouble;
            q->logged_sorted[i] = (uint64_t)q->layers_logged[i] << 32 | (uint32_t)i;
        }
        qsort(q->logged_sorted, (size_t)n, sizeof *q->logged_sorted, cmp_u64);
        for (int i = 1; i < n; i++)
            if (q->logged_sorted[i] >> 32 == q->logged_sorted[i - 1] >> 32)
                return jfail(c, "field 'layers_logged': layer %u twice", (uint32_t)(q->logged_sorted[i] >> 32));
        q->n_logged = (uint32_t)n;
    }
    return 0;
}

static int qwen_line(jctx *c, const cJSON *obj, qwen_state *q) {
    if (!q->have_meta) return qwen_meta(c, obj, q);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
    if (type && (!cJSON_IsString(type) || strcmp(type->valuestring, "route"))) return 0;
    if (q->route_rows++ < c->o->skip_warmup) return q->skipped++, 0;
    const cJSON *rq = cJSON_GetObjectItemCaseSensitive(obj, c->key[MOE_JF_SEQ]);
    char buf[32];
    const char *rid;
    if (cJSON_IsString(rq)) rid = rq->valuestring;
    else if (cJSON_IsNumber(rq)) snprintf(buf, sizeof buf, "%.17g", rq->valuedouble), rid = buf;
    else return jfail(c, "field '%s': missing or not a string", c->key[MOE_JF_SEQ]);
    if (c->o->warmup_prefix && !strncmp(rid, c->o->warmup_prefix, strlen(c->o->warmup_prefix))) return q->skipped++, 0;
    jrec r = {.line = c->line};
    /* req ids: the newest is almost always the hit; else a hash lookup (a
     * scan per new id made 100k distinct ids take 38 s) */
    int64_t k = c->nreq && !strcmp(c->req[c->nreq - 1], rid) ? (int64_t)c->nreq - 1
                                                               : moe_strindex_find(&c->req_index, c->req, rid);
    if (k < 0) {
        if (c->nreq == c->capreq) {
            size_t nc = c->capreq ? c->capreq * 2 : 64;
            char **nr = realloc(c->req, nc * sizeof *nr);
            if (!nr) return jfail(c, "out of memory");
            c->req = nr, c->capreq = nc;
        }
        if (!(c->req[c->nreq] = strdup(rid)) || moe_strindex_add(&c->req_index, c->req, c->nreq))
            return jfail(c, "out of memory");
        k = (int64_t)c->nreq++;
    }
    r.seq = (uint32_t)k;
    uint64_t v;
    if (get_uint(c, obj, c->key[MOE_JF_TOKEN], UINT32_MAX, &v)) return -1;
    r.pos = (uint32_t)v;
    if (get_uint(c, obj, c->key[MOE_JF_LAYER], UINT32_MAX, &v)) return -1;
    if (q->n_logged) { /* dense index among the logged layers: binary search */
        uint32_t lo = 0, hi = q->n_logged;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (q->logged_sorted[mid] >> 32 < v) lo = mid + 1;
            else hi = mid;
        }
        if (lo == q->n_logged || q->logged_sorted[lo] >> 32 != v)
            return jfail(c, "field '%s': layer %llu is not in layers_logged", c->key[MOE_JF_LAYER], (unsigned long long)v);
        r.layer = (uint32_t)q->logged_sorted[lo];
    } else {
        r.layer = (uint32_t)v;
    }
    r.raw_layer = (uint32_t)v;
    if (r.layer > c->max_layer) c->max_layer = r.layer;
    if (get_step(c, obj, &r) || qwen_pass(c, obj, q, &r) || get_experts(c, obj, &r)) return -1;
    return push_rec(c, &r);
}

/* ---- steps and positions ------------------------------------------------ */

static int rec_cmp_token(const void *a, const void *b) { /* within one step */
    const jrec *x = a, *y = b;
#define CMP(f) if (x->f != y->f) return x->f < y->f ? -1 : 1
    CMP(pos); CMP(seq); CMP(layer); CMP(order);
    return 0;
}
static int rec_cmp_sorted(const void *a, const void *b) { /* seq = order of appearance */
    const jrec *x = a, *y = b;
    CMP(seq); CMP(pos); CMP(layer); CMP(order);
#undef CMP
    return 0;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Exec order: token_pos that restarts in a later pass of a sequence (the
 * index within the pass, not the sequence) is renumbered to continue the
 * sequence. Per sequence, a pass whose smallest position is at or below the
 * largest position the sequence already reached is shifted to start right
 * after it; a pass that continues (true positions) is kept. Marks the
 * records it changed (renum); -1 only on out of memory. dry: change
 * nothing, return 1 at the first restart with its record in *first. */
static int renumber_positions(jctx *c, const uint8_t *start, int dry, size_t *first) {
    uint32_t *u = malloc(c->n * sizeof *u);
    if (!u) return -1;
    for (size_t i = 0; i < c->n; i++) u[i] = c->recs[i].seq;
    qsort(u, c->n, sizeof *u, cmp_u32);
    size_t nu = 0;
    for (size_t i = 0; i < c->n; i++)
        if (!nu || u[i] != u[nu - 1]) u[nu++] = u[i];
    /* per sequence: last = largest (new) position so far + 1 (0 = unseen);
     * lo = smallest logged position in the current step, valid when stamp = step */
    uint64_t *last = calloc(nu, sizeof *last), *stamp = calloc(nu, sizeof *stamp);
    uint32_t *lo = malloc(nu * sizeof *lo);
    size_t *idx = malloc(c->n * sizeof *idx);
    if (!last || !stamp || !lo || !idx) {
        free(u), free(last), free(stamp), free(lo), free(idx);
        return -1;
    }
    uint64_t step = 0;
    for (size_t i = 0; i < c->n;) {
        size_t j = i + 1;
        while (j < c->n && !start[j]) j++;
        step++;
        for (size_t k = i; k < j; k++) {
            uint32_t key = c->recs[k].seq;
            const uint32_t *f = bsearch(&key, u, nu, sizeof *u, cmp_u32);
            size_t s = idx[k] = (size_t)(f - u);
            uint32_t p = c->recs[k].pos;
            if (stamp[s] != step) stamp[s] = step, lo[s] = p;
            if (p < lo[s]) lo[s] = p;
        }
        for (size_t k = i; k < j; k++) {
            size_t s = idx[k];
            if (last[s] && lo[s] < last[s] && dry) {
                free(u), free(last), free(stamp), free(lo), free(idx);
                return *first = k, 1;
            }
            if (last[s] && lo[s] < last[s]) { /* restarts: continue the sequence */
                uint64_t np = last[s] + (c->recs[k].pos - lo[s]);
                c->recs[k].pos = np > UINT32_MAX ? UINT32_MAX : (uint32_t)np; /* 4G tokens: unreachable */
                c->recs[k].renum = 1;
            }
        }
        /* the step's largest (new) position per sequence */
        for (size_t k = i; k < j; k++) {
            size_t s = idx[k];
            if ((uint64_t)c->recs[k].pos + 1 > last[s]) last[s] = (uint64_t)c->recs[k].pos + 1;
        }
        i = j;
    }
    free(u), free(last), free(stamp), free(lo), free(idx);
    return 0;
}

/* --pass-by wrap: a row starts a pass when its layer (as logged) is below
 * the previous row's, or it repeats a (seq, token, layer) already in the
 * pass. The pass's rows sit in an open-addressing table whose entries of
 * older passes are stale (their gen differs). -1 on out of memory. */
typedef struct wslot {
    uint64_t gen;
    uint32_t seq, pos, layer;
} wslot;

static size_t wslot_find(const wslot *tab, size_t mask, uint64_t gen, const jrec *r, int *found) {
    uint64_t h = (uint64_t)r->seq * 0x9E3779B97F4A7C15ull ^ (uint64_t)r->pos * 0xC2B2AE3D27D4EB4Full ^
                 (uint64_t)r->layer * 0x165667B19E3779F9ull;
    size_t k = (size_t)(h ^ h >> 29) & mask;
    while (tab[k].gen == gen) {
        if (tab[k].seq == r->seq && tab[k].pos == r->pos && tab[k].layer == r->layer) return *found = 1, k;
        k = (k + 1) & mask;
    }
    return *found = 0, k;
}

static int mark_wrap(jctx *c, uint8_t *start) {
    size_t cap = 256, used = 0;
    wslot *tab = calloc(cap, sizeof *tab);
    uint64_t gen = 0; /* entries are live when gen matches; calloc gives 0, so start at 1 */
    if (!tab) return -1;
    for (size_t i = 0; i < c->n; i++) {
        const jrec *r = &c->recs[i];
        int found = 0;
        size_t k = i ? wslot_find(tab, cap - 1, gen, r, &found) : 0;
        start[i] = !i || r->raw_layer < r[-1].raw_layer || found;
        if (start[i]) {
            gen++, used = 0;
            k = wslot_find(tab, cap - 1, gen, r, &found);
        }
        tab[k] = (wslot){gen, r->seq, r->pos, r->layer};
        if (++used * 2 > cap) { /* grow, keeping this pass's entries */
            wslot *nt = calloc(cap * 2, sizeof *nt);
            if (!nt) return free(tab), -1;
            for (size_t m = 0; m < cap; m++)
                if (tab[m].gen == gen) {
                    jrec key = {.seq = tab[m].seq, .pos = tab[m].pos, .layer = tab[m].layer};
                    nt[wslot_find(nt, cap * 2 - 1, gen, &key, &found)] = tab[m];
                }
            free(tab), tab = nt, cap *= 2;
        }
    }
    free(tab);
    return 0;
}

/* Assign step boundaries: starts[i] = 1 where record i opens a new step.
 * -1 on out of memory. */
static int mark_steps(jctx *c, int order, int qwen, uint8_t *start) {
    if (qwen && c->o->pass_by == MOE_PASS_WRAP) return mark_wrap(c, start);
    for (size_t i = 0; i < c->n; i++) {
        const jrec *r = &c->recs[i], *p = i ? r - 1 : NULL;
        if (!p) { start[i] = 1; continue; }
        if (r->has_step) { start[i] = r->step_val != p->step_val; continue; }
        if (qwen || order == MOE_ORDER_SORTED) start[i] = r->seq != p->seq || r->pos != p->pos;
        else start[i] = r->layer < p->layer || r->seq != p->seq;
    }
    return 0;
}

/* Records left empty: a warning with counts and the first (step, layer)
 * slots, an error under strict. sline[s] = first line of step s; lname[l]
 * (l < n_lname) is the layer number the log uses for trace layer l (qwen). */
static int report_empty(jctx *c, const moe_trace *t, const uint64_t *sline, const uint32_t *lname, uint32_t n_lname) {
    uint64_t empty = 0, pairs = 0, steps = 0;
    enum { SHOW = 10 };
    char detail[SHOW][160];
    int nd = 0;
    for (uint64_t s = 0; s < t->n_steps; s++) {
        uint64_t t0 = t->step_first_token[s], t1 = t->step_first_token[s + 1];
        int step_hit = 0;
        for (uint32_t l = 0; l < t->n_layers; l++) {
            uint64_t e = 0;
            for (uint64_t k = t0; k < t1; k++) e += t->experts[moe_trace_rec(t, k, l)] == MOE_NO_EXPERT;
            if (!e) continue;
            empty += e, pairs++, step_hit = 1;
            if (nd < SHOW) {
                char ln[40] = "";
                if (l < n_lname) snprintf(ln, sizeof ln, " (logged layer %u)", lname[l]);
                snprintf(detail[nd++], sizeof detail[0], "step %llu (line %llu, seq %u, token %u) layer %u%s: %llu of %llu token%s",
                         (unsigned long long)s, (unsigned long long)sline[s], t->token_seq[t0], t->token_pos[t0], l, ln,
                         (unsigned long long)e, (unsigned long long)(t1 - t0), t1 - t0 == 1 ? "" : "s");
            }
        }
        steps += step_hit;
    }
    if (!empty) return 0;
    uint64_t recs = t->n_tokens * t->n_layers;
    char sum[700];
    snprintf(sum, sizeof sum,
             "%s: %llu of %llu (token, layer) records have no row and stay empty (rows the logger dropped, e.g. "
             "on a tie, or layers it never logged); empty (step, layer) slots: %llu of %llu, in %llu of %llu "
             "steps; first: %s",
             c->path, (unsigned long long)empty, (unsigned long long)recs, (unsigned long long)pairs,
             (unsigned long long)(t->n_steps * t->n_layers), (unsigned long long)steps,
             (unsigned long long)t->n_steps, detail[0]);
    if (c->rep && c->rep->strict) return moe_fail(c->err, "%s (--strict)", sum);
    jsay(c, 1, "%s", sum);
    for (int i = 1; i < nd; i++) jsay(c, 1, "%s:   also %s", c->path, detail[i]);
    if (pairs > (uint64_t)nd) jsay(c, 1, "%s:   ... and %llu more (step, layer) slots", c->path, (unsigned long long)(pairs - (uint64_t)nd));
    return 0;
}

/* ---- qwen: warm-up, sequences, phases ------------------------------------ */

/* A pass's routing: the sorted distinct (layer, expert) pairs of records
 * [i, j) into *sig (grown as needed); their count, or -1 on out of memory. */
static ptrdiff_t pass_routing(const jctx *c, size_t i, size_t j, uint64_t **sig, size_t *cap) {
    size_t n = 0;
    for (size_t k = i; k < j; k++) n += c->recs[k].n;
    if (n > *cap) {
        uint64_t *ns = realloc(*sig, n * sizeof *ns);
        if (!ns) return -1;
        *sig = ns, *cap = n;
    }
    n = 0;
    for (size_t k = i; k < j; k++)
        for (uint32_t e = 0; e < c->recs[k].n; e++)
            (*sig)[n++] = (uint64_t)c->recs[k].layer << 32 | c->ex[c->recs[k].off + e];
    qsort(*sig, n, sizeof **sig, cmp_u64);
    size_t u = 0;
    for (size_t k = 0; k < n; k++)
        if (!u || (*sig)[k] != (*sig)[u - 1]) (*sig)[u++] = (*sig)[k];
    return (ptrdiff_t)u;
}

/* The leading passes whose routing equals the first pass's: *passes of
 * them, in records [0, *rows). -1 on out of memory. */
static int warmup_run(const jctx *c, const uint8_t *start, uint64_t *passes, size_t *rows) {
    uint64_t *sig[2] = {NULL, NULL};
    size_t cap[2] = {0, 0};
    ptrdiff_t n0 = 0;
    int rc = 0;
    *passes = 0, *rows = 0;
    for (size_t i = 0; i < c->n;) {
        size_t j = i + 1;
        while (j < c->n && !start[j]) j++;
        int b = *passes > 0;
        ptrdiff_t n = pass_routing(c, i, j, &sig[b], &cap[b]);
        if (n < 0) { rc = -1; break; }
        if (!b) n0 = n;
        else if (n != n0 || memcmp(sig[0], sig[1], (size_t)n * sizeof **sig)) break;
        ++*passes, *rows = j, i = j;
    }
    free(sig[0]), free(sig[1]);
    return rc;
}

/* Drop records [0, rows): the rest keep their pass marks; sequences are
 * renumbered by first appearance among the rows kept (c->req reordered to
 * match) and the inferred geometry is counted over them. */
static int drop_leading(jctx *c, uint8_t *start, size_t rows, uint32_t n_logged) {
    memmove(c->recs, c->recs + rows, (c->n - rows) * sizeof *c->recs);
    memmove(start, start + rows, c->n - rows);
    c->n -= rows;
    uint32_t *map = malloc(c->nreq * sizeof *map);
    char **req = malloc(c->nreq * sizeof *req);
    if (!map || !req) return free(map), free(req), -1;
    for (size_t i = 0; i < c->nreq; i++) map[i] = UINT32_MAX;
    uint32_t next = 0;
    for (size_t i = 0; i < c->n; i++) {
        uint32_t *m = &map[c->recs[i].seq];
        if (*m == UINT32_MAX) req[next] = c->req[c->recs[i].seq], *m = next++;
        c->recs[i].seq = *m;
    }
    for (size_t i = 0; i < c->nreq; i++) /* req_ids of dropped rows only: kept for freeing */
        if (map[i] == UINT32_MAX) req[next++] = c->req[i];
    free(c->req), free(map);
    c->req = req, c->capreq = c->nreq;
    c->max_layer = c->max_expert = c->max_n = 0, c->any_weight = 0;
    for (size_t i = 0; i < c->n; i++) {
        const jrec *r = &c->recs[i];
        if (r->layer > c->max_layer) c->max_layer = r->layer;
        if (r->n > c->max_n) c->max_n = r->n, c->max_n_line = r->line;
        for (uint32_t e = 0; e < r->n; e++)
            if (c->ex[r->off + e] > c->max_expert) c->max_expert = c->ex[r->off + e];
        if (!isnan(c->w[r->off])) c->any_weight = 1;
    }
    if (n_logged && !c->o->layers) c->max_layer = n_logged - 1; /* keep every logged layer */
    return 0;
}

static void meta_add(char *meta, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void meta_add(char *meta, size_t cap, const char *fmt, ...) {
    size_t m = strlen(meta);
    va_list ap;
    va_start(ap, fmt);
    if (m < cap) vsnprintf(meta + m, cap - m, fmt, ap);
    va_end(ap);
}

/* Warm-up (see the top of this file): detect, then drop, keep or only
 * report, as the options say. Adds skipped_warmup_rows= and warmup= to meta. */
static int qwen_warmup(jctx *c, uint8_t *start, qwen_state *q, char *meta, size_t meta_cap) {
    const moe_jsonl_opts *o = c->o;
    uint64_t passes;
    size_t rows;
    if (warmup_run(c, start, &passes, &rows)) return -1;
    int alike = passes >= MOE_WARMUP_MIN_PASSES, detected = alike && rows < c->n;
    unsigned long long a = alike ? c->recs[0].line : 0, z = alike ? c->recs[rows - 1].line : 0;
    unsigned long long p = passes, r = rows;
    char how[300] = "";
    if (o->skip_warmup) snprintf(how, sizeof how, "--skip-warmup %llu", (unsigned long long)o->skip_warmup);
    if (o->warmup_prefix)
        snprintf(how + strlen(how), sizeof how - strlen(how), "%s--warmup-prefix %s", *how ? " " : "", o->warmup_prefix);
    if (*how) {
        jlater(c, "%s: dropped %llu route rows as warm-up (%s)", c->path, (unsigned long long)q->skipped, how);
        if (detected)
            jlater(c, "%s: the first %llu passes left (%llu route rows, lines %llu-%llu) still route every layer to "
                 "the same experts, like warm-up; kept, since %s chose the warm-up rows (without it they would be "
                 "dropped)", c->path, p, r, a, z, how);
        meta_add(meta, meta_cap, "skipped_warmup_rows=%llu\nwarmup=%s\n", (unsigned long long)q->skipped, how);
        return 0;
    }
    if (o->keep_warmup) {
        if (detected)
            jlater(c, "%s: kept %llu leading passes (%llu route rows, lines %llu-%llu) that route every layer to the "
                 "same experts, like warm-up (--keep-warmup)", c->path, p, r, a, z);
        meta_add(meta, meta_cap, "skipped_warmup_rows=0\nwarmup=kept (--keep-warmup)\n");
        return 0;
    }
    if (detected) {
        jlater(c, "%s: dropped warm-up: the first %llu forward passes (%llu route rows, lines %llu-%llu) route every "
             "layer to the same experts; the first pass that differs starts on line %llu (rule: %u or more leading "
             "passes that route alike, then one that differs, are warm-up; --keep-warmup keeps them)", c->path, p, r, a, z,
             (unsigned long long)c->recs[rows].line, MOE_WARMUP_MIN_PASSES);
        q->skipped += rows;
        if (drop_leading(c, start, rows, q->n_logged)) return -1;
        meta_add(meta, meta_cap, "skipped_warmup_rows=%llu\nwarmup=detected (%llu passes dropped)\n", r, p);
        return 0;
    }
    if (alike)
        jlater(c, "%s: all %llu forward passes route every layer to the same experts: nothing dropped as warm-up "
             "(it would leave no routing)", c->path, p);
    meta_add(meta, meta_cap, "skipped_warmup_rows=0\nwarmup=detected (none)\n");
    return 0;
}

/* With one req_id, phases are unknown when a pass holds several tokens or
 * the token index restarts (see the top of this file); 1 then, after the
 * note and the meta line, 0 when they can be derived, -1 on out of memory. */
static int qwen_phases_unknown(jctx *c, const uint8_t *start, char *meta, size_t meta_cap) {
    for (size_t i = 1; i < c->n; i++)
        if (c->recs[i].seq != c->recs[0].seq) return 0;
    size_t k = SIZE_MAX;
    char why[200] = "a forward pass holds several tokens, first";
    for (size_t i = 0, p = 0; i < c->n && k == SIZE_MAX; i++) {
        if (start[i]) p = i;
        else if (c->recs[i].pos != c->recs[p].pos) k = p;
    }
    if (k == SIZE_MAX) {
        int rc = renumber_positions(c, start, 1, &k);
        if (rc <= 0) return rc;
        snprintf(why, sizeof why, "%s restarts (goes back to a position already reached), first",
                 c->key[MOE_JF_TOKEN]);
    }
    jlater(c, "%s: phases unknown: every route row has %s '%s', which tells no requests apart, and %s on line %llu; "
         "prefill and decode cannot be told apart, so every step is labelled decode (meta phases=unknown)",
         c->path, c->key[MOE_JF_SEQ], c->nreq ? c->req[0] : "", why, (unsigned long long)c->recs[k].line);
    meta_add(meta, meta_cap, "phases=unknown (one %s; every step labelled decode)\n", c->key[MOE_JF_SEQ]);
    return 1;
}

/* ---- building ------------------------------------------------------------ */

/* q: the qwen state (NULL for mixtral). */
static moe_trace *build(jctx *c, int order, qwen_state *q, const char *model, char *meta, size_t meta_cap) {
    int qwen = q != NULL;
    if (c->n == 0) {
        moe_fail(c->err, "%s: no routing records%s", c->path, qwen ? " (after the meta line and skipped warm-up rows)" : "");
        return NULL;
    }
    if (order == MOE_ORDER_SORTED) {
        /* Problems keep their order in the file: the file is grouped by
         * problem, so sort on the index of each group's first record (put in
         * place of seq for the sort, the real seq restored after). */
        for (size_t i = 0; i < c->n; i++) c->recs[i].order = i;
        uint64_t *grp = malloc(c->n * sizeof *grp);
        if (!grp) { moe_fail(c->err, "%s: out of memory", c->path); return NULL; }
        for (size_t i = 0; i < c->n; i++)
            grp[i] = (i && c->recs[i].seq == c->recs[i - 1].seq) ? grp[i - 1] : i;
        uint32_t *real = malloc(c->n * sizeof *real);
        if (!real) { free(grp); moe_fail(c->err, "%s: out of memory", c->path); return NULL; }
        for (size_t i = 0; i < c->n; i++) real[i] = c->recs[i].seq, c->recs[i].seq = (uint32_t)grp[i];
        /* grp values exceed uint32 only past 4G records, which memory forbids */
        qsort(c->recs, c->n, sizeof *c->recs, rec_cmp_sorted);
        for (size_t i = 0; i < c->n; i++) c->recs[i].seq = real[c->recs[i].order];
        free(grp), free(real);
        /* a problem that appears in two separate groups would interleave */
        for (size_t i = 1; i < c->n; i++)
            if (c->recs[i].seq == c->recs[i - 1].seq && c->recs[i].pos == c->recs[i - 1].pos &&
                c->recs[i].layer == c->recs[i - 1].layer) {
                c->line = c->recs[i].line;
                jfail(c, "duplicate (problem %u, token %u, layer %u), first on line %llu", c->recs[i].seq,
                      c->recs[i].pos, c->recs[i].layer, (unsigned long long)c->recs[i - 1].line);
                return NULL;
            }
    }
    const moe_jsonl_opts *o = c->o;
    uint8_t *start = malloc(c->n);
    uint64_t *sline = NULL, first_renum = 0;
    moe_trace_builder *b = NULL;
    uint32_t *tseq = NULL, *tpos = NULL;
    int renumber = !qwen && order == MOE_ORDER_EXEC, unknown = 0;
    if (!start || mark_steps(c, order, qwen, start)) goto oom;
    if (qwen) { /* warm-up first: sequences, geometry and phases are the kept rows' */
        if (qwen_warmup(c, start, q, meta, meta_cap)) goto oom;
        int several = 0;
        for (size_t i = 1; i < c->n && !several; i++) several = c->recs[i].seq != c->recs[0].seq;
        if (several) renumber = 1;
        else if ((unknown = qwen_phases_unknown(c, start, meta, meta_cap)) < 0) goto oom;
    }
    uint32_t layers = o->layers ? o->layers : c->max_layer + 1;
    uint32_t top_k = o->top_k ? o->top_k : qwen && q->top_k ? q->top_k : c->max_n;
    uint32_t experts = o->experts ? o->experts : c->max_expert + 1;
    if (c->max_n > top_k) {
        moe_fail(c->err, "%s:%llu: a record has %u experts but top_k is %u", c->path,
                 (unsigned long long)c->max_n_line, c->max_n, top_k);
        goto fail;
    }
    if (top_k > experts) experts = top_k;
    if (moe_trace_check_geometry(layers, experts, top_k, 0, c->err)) {
        moe_fail_prefix(c->err, "%s", c->path);
        goto fail;
    }
    sline = malloc(c->n * sizeof *sline);
    if (!sline || !(b = moe_tb_new(layers, experts, top_k, c->any_weight, 0, 0))) goto oom;
    if (renumber && renumber_positions(c, start, 0, NULL)) goto oom;
    uint64_t step = 0;
    for (size_t i = 0; i < c->n;) {
        size_t j = i + 1;
        while (j < c->n && !start[j]) j++;
        qsort(c->recs + i, j - i, sizeof *c->recs, rec_cmp_token);
        size_t nt = 0;
        free(tseq), free(tpos);
        tseq = malloc((j - i) * 4), tpos = malloc((j - i) * 4);
        if (!tseq || !tpos) goto oom;
        for (size_t k = i; k < j; k++)
            if (k == i || c->recs[k].pos != c->recs[k - 1].pos || c->recs[k].seq != c->recs[k - 1].seq)
                tseq[nt] = c->recs[k].seq, tpos[nt] = c->recs[k].pos, nt++;
        sline[step] = c->recs[i].line;
        for (size_t k = i; k < j; k++)
            if (c->recs[k].line < sline[step]) sline[step] = c->recs[k].line;
        int phase = unknown ? MOE_PHASE_DECODE : moe_infer_phase(tseq, tpos, nt);
        if (moe_tb_begin_step(b, step++, phase, c->err)) goto fail_line;
        int64_t tok = -1;
        for (size_t k = i; k < j; k++) {
            const jrec *r = &c->recs[k], *p = k > i ? r - 1 : NULL;
            c->line = r->line;
            if (!p || r->pos != p->pos || r->seq != p->seq) {
                if ((tok = moe_tb_add_token(b, r->seq, r->pos, c->err)) < 0) goto fail_line;
                if (r->renum && !c->renumbered++) first_renum = r->line;
            } else if (r->layer == p->layer) {
                jfail(c, "duplicate (seq %u, token %u, layer %u) in one forward pass, first on line %llu%s",
                      r->seq, r->pos, r->layer, (unsigned long long)p->line,
                      qwen && o->pass_by <= MOE_PASS_TOKEN && !o->field[MOE_JF_STEP]
                          ? " (each (req_id, token_idx) run is one pass by default: if the log's ids do not "
                            "separate passes, say how with --pass-by wrap, rows=N or key=KEY)"
                          : "");
                goto fail;
            }
            for (uint32_t s = 0; s < r->n; s++)
                if (moe_tb_set(b, (uint64_t)tok, r->layer, s, c->ex[r->off + s], c->w[r->off + s], c->err)) goto fail_line;
        }
        i = j;
    }
    free(start), free(tseq), free(tpos);
    if (c->renumbered) {
        const char *tk = c->key[MOE_JF_TOKEN];
        meta_add(meta, meta_cap, "%s=renumbered (restarted within sequences: %llu tokens)\n", tk,
                 (unsigned long long)c->renumbered);
        jlater(c,
             "%s: %s restarts in later forward passes of a sequence (the position within the pass, not "
             "the sequence), first on line %llu: %llu tokens renumbered to continue their sequence, so phases "
             "are right (prefill: a sequence's first pass or several of its tokens in one pass; else decode)",
             c->path, tk, (unsigned long long)first_renum, (unsigned long long)c->renumbered);
    }
    moe_trace *t = moe_tb_finish(b, model, qwen ? "import jsonl-qwen" : "import jsonl-mixtral", meta, c->err);
    unsigned long long bad_step;
    if (!t && c->err && sscanf(c->err->msg, "step %llu", &bad_step) == 1 && bad_step < step)
        moe_fail_prefix(c->err, "%s:%llu", c->path, (unsigned long long)sline[bad_step]); /* the step's first line */
    else if (!t) moe_fail_prefix(c->err, "%s", c->path);
    else {
        int strict = c->rep && c->rep->strict; /* notes first, unless a warning is about to fail it */
        for (int i = 0; i < c->n_later && !strict; i++) jsay(c, 0, "%s", c->later[i]);
        if (report_empty(c, t, sline, qwen ? q->layers_logged : NULL, qwen ? q->n_logged : 0))
            moe_trace_free(t), t = NULL;
        for (int i = 0; t && i < c->n_later && strict; i++) jsay(c, 0, "%s", c->later[i]);
    }
    free(sline);
    return t;
oom:
    moe_fail(c->err, "%s: out of memory", c->path);
    goto fail;
fail_line:
    moe_fail_prefix(c->err, "%s:%llu", c->path, (unsigned long long)c->line);
fail:
    free(start), free(sline), free(tseq), free(tpos);
    moe_tb_abort(b);
    return NULL;
}

moe_trace *moe_trace_load_jsonl(const char *path, const moe_jsonl_opts *o, moe_error *err) {
    return moe_trace_load_jsonl_report(path, o, NULL, err);
}

moe_trace *moe_trace_load_jsonl_report(const char *path, const moe_jsonl_opts *o, const moe_import_report *rep,
                                       moe_error *err) {
    int qwen = o->layout == MOE_JSONL_QWEN;
    static const char *const def_mixtral[MOE_JF_COUNT] = {"problem_id", "layer", NULL, "experts", "gating_probs", NULL};
    static const char *const def_qwen[MOE_JF_COUNT] = {"req_id", "layer", "token_idx", "topk_ids", "topk_weights", NULL};
    jctx c = {.path = path, .o = o, .err = err, .rep = rep};
    for (int i = 0; i < MOE_JF_COUNT; i++) c.key[i] = o->field[i] ? o->field[i] : (qwen ? def_qwen : def_mixtral)[i];
    int order = o->order;
    if (!qwen && o->field[MOE_JF_TOKEN] && order == MOE_ORDER_AUTO) order = MOE_ORDER_EXEC;
    qwen_state q = {0};
    if (moe_jsonl_check_opts(o, err)) return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        moe_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    moe_lines lr;
    if (moe_lines_init(&lr, f)) {
        fclose(f);
        moe_fail(err, "%s: out of memory", path);
        return NULL;
    }
    char *line;
    ssize_t n;
    int rc = 0, any = 0;
    uint64_t total = moe_file_size(f);
    int too_long;
    while (rc == 0 && (n = moe_lines_next(&lr, MOE_MAX_LINE, &too_long)) > 0) {
        line = lr.line;
        if ((++c.line & 0xFFFF) == 0) moe_import_progress(c.rep, lr.consumed, total);
        size_t k = 0;
        while (k < (size_t)n && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r' || line[k] == '\n')) k++;
        if (k == (size_t)n) continue; /* blank line */
        any = 1;
        /* cJSON spends about 80 bytes of memory per number: a 100 MB line of
         * numbers would ask for gigabytes. No routing row comes near the
         * limit (65534 experts with weights take about 1.3 MB). */
        if (too_long) {
            rc = jfail(&c, "line longer than any routing row can be (limit %u MiB)", MOE_MAX_LINE >> 20);
            break;
        }
        cJSON *obj = cJSON_ParseWithLength(line, (size_t)n);
        if (!cJSON_IsObject(obj)) rc = jfail(&c, "not a JSON object");
        else rc = qwen ? qwen_line(&c, obj, &q) : mixtral_line(&c, obj, &order);
        cJSON_Delete(obj);
    }
    int rerr = ferror(f);
    fclose(f);
    moe_lines_free(&lr);
    moe_trace *t = NULL;
    if (rc == 0 && rerr) moe_fail(err, "%s: read error", path);
    else if (rc == 0 && !any) moe_fail(err, "%s:1: empty file", path);
    else if (rc == 0 && qwen && !q.have_meta) moe_fail(err, "%s:1: no meta line", path);
    else if (rc == 0) {
        char meta[2048], passes[300];
        if (o->field[MOE_JF_STEP]) snprintf(passes, sizeof passes, "field step=%s", o->field[MOE_JF_STEP]);
        else if (o->pass_by == MOE_PASS_WRAP) snprintf(passes, sizeof passes, "pass-by wrap");
        else if (o->pass_by == MOE_PASS_ROWS) snprintf(passes, sizeof passes, "pass-by rows=%llu", (unsigned long long)o->pass_rows);
        else if (o->pass_by == MOE_PASS_KEY) snprintf(passes, sizeof passes, "pass-by key=%s", o->pass_key);
        else snprintf(passes, sizeof passes, "token-per-step");
        int m = snprintf(meta, sizeof meta, "imported_from=%s\norder=%s\n", qwen ? "jsonl-qwen" : "jsonl-mixtral",
                         qwen ? passes : order == MOE_ORDER_SORTED ? "sorted" : "exec");
        if (qwen) {
            if (q.n_logged) {
                m += snprintf(meta + m, sizeof meta - (size_t)m, "layers_logged=");
                for (uint32_t i = 0; i < q.n_logged && m < (int)sizeof meta - 16; i++)
                    m += snprintf(meta + m, sizeof meta - (size_t)m, "%s%u", i ? "," : "", q.layers_logged[i]);
                m += snprintf(meta + m, sizeof meta - (size_t)m, "\n");
            }
        }
        if (qwen && q.n_logged && !o->layers && c.n) c.max_layer = q.n_logged - 1; /* keep every logged layer */
        t = build(&c, order, qwen ? &q : NULL, q.model, meta, sizeof meta);
    }
    free(c.recs), free(c.ex), free(c.w), free(q.layers_logged), free(q.logged_sorted), free(q.key_prev);
    free(c.ex_stamp), moe_strindex_free(&c.req_index);
    for (size_t i = 0; i < c.nreq; i++) free(c.req[i]);
    free(c.req);
    return t;
}

int moe_jsonl_sniff(const char *path, moe_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return moe_fail(err, "%s: cannot open: %s", path, strerror(errno));
    moe_lines lr;
    if (moe_lines_init(&lr, f)) return fclose(f), moe_fail(err, "%s: out of memory", path);
    ssize_t n;
    int layout = MOE_JSONL_MIXTRAL, too_long;
    while ((n = moe_lines_next(&lr, MOE_MAX_LINE, &too_long)) > 0) {
        if (too_long) continue; /* the importer reports it */
        cJSON *obj = cJSON_ParseWithLength(lr.line, (size_t)n);
        if (!obj) continue; /* blank or bad: the importer reports it */
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
        if (cJSON_IsString(type) && !strcmp(type->valuestring, "meta")) layout = MOE_JSONL_QWEN;
        cJSON_Delete(obj);
        break;
    }
    moe_lines_free(&lr);
    fclose(f);
    return layout;
}
