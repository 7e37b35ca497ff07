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
 *   - req_ids become sequence ids 0, 1, ... in order of first appearance;
 *   - consecutive rows of the same (req_id, token_idx) form one token and
 *     every token is its own step (the log has no pass boundaries), unless a
 *     step field is mapped (--field step=KEY): then a step ends when it changes;
 *   - weights are raw softmax probabilities, kept exactly as given;
 *   - warm-up rows: vLLM's warm-up passes come first and are not marked, so
 *     the user says which rows they are: --skip-warmup N drops the first N
 *     route rows, --warmup-prefix P drops rows whose req_id starts with P.
 *     Nothing is dropped by default. Rows whose type is not "route" are ignored.
 *
 * Experts are kept in the order given (slot 0 first). Geometry: options,
 * else max + 1 (qwen top_k from the meta line). Every message names
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

/* One (token, layer) row. */
typedef struct jrec {
    uint64_t line, step_val, order;
    uint32_t seq, pos, layer, n, off;
    int has_step;
    int renum; /* token_pos renumbered (renumber_positions) */
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
    const moe_import_report *rep; /* may be NULL */
    uint64_t renumbered;          /* tokens whose pass-relative token_pos was renumbered */
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

static int push_rec(jctx *c, jrec *r) {
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 1024;
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
    for (int i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(e, i);
        if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble != floor(x->valuedouble))
            return jfail(c, "field '%s': item %d is not a non-negative integer", ek, i);
        if (x->valuedouble >= (c->o->experts ? c->o->experts : MOE_MAX_EXPERTS))
            return jfail(c, "field '%s': %g >= experts (%u)", ek, x->valuedouble,
                         c->o->experts ? c->o->experts : MOE_MAX_EXPERTS);
        uint32_t id = (uint32_t)x->valuedouble;
        for (int j = 0; j < i; j++)
            if (c->ex[c->nex + (size_t)j] == id) return jfail(c, "field '%s': expert %u listed twice", ek, id);
        c->ex[c->nex + (size_t)i] = id;
        c->w[c->nex + (size_t)i] = NAN;
        if (w) {
            const cJSON *y = cJSON_GetArrayItem(w, i);
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
    if (r.layer > c->max_layer) c->max_layer = r.layer;
    return push_rec(c, &r);
}

typedef struct qwen_state {
    int have_meta;
    uint32_t top_k;
    uint32_t *layers_logged;
    uint32_t n_logged;
    char model[64];
    uint64_t route_rows, skipped;
} qwen_state;

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
        if (!q->layers_logged) return jfail(c, "out of memory");
        for (int i = 0; i < n; i++) {
            const cJSON *x = cJSON_GetArrayItem(ll, i);
            if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble != floor(x->valuedouble) || x->valuedouble > 1e6)
                return jfail(c, "field 'layers_logged': item %d is not a layer number", i);
            q->layers_logged[i] = (uint32_t)x->valuedouble;
            for (int j = 0; j < i; j++)
                if (q->layers_logged[j] == q->layers_logged[i]) return jfail(c, "field 'layers_logged': layer %u twice", q->layers_logged[i]);
        }
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
    /* req ids: linear search from the newest, which is almost always the hit */
    size_t k = c->nreq;
    while (k > 0 && strcmp(c->req[k - 1], rid)) k--;
    if (k == 0) {
        if (c->nreq == c->capreq) {
            size_t nc = c->capreq ? c->capreq * 2 : 64;
            char **nr = realloc(c->req, nc * sizeof *nr);
            if (!nr) return jfail(c, "out of memory");
            c->req = nr, c->capreq = nc;
        }
        if (!(c->req[c->nreq] = strdup(rid))) return jfail(c, "out of memory");
        k = ++c->nreq;
    }
    r.seq = (uint32_t)(k - 1);
    uint64_t v;
    if (get_uint(c, obj, c->key[MOE_JF_TOKEN], UINT32_MAX, &v)) return -1;
    r.pos = (uint32_t)v;
    if (get_uint(c, obj, c->key[MOE_JF_LAYER], UINT32_MAX, &v)) return -1;
    if (q->n_logged) { /* dense index among the logged layers */
        uint32_t i = 0;
        while (i < q->n_logged && q->layers_logged[i] != v) i++;
        if (i == q->n_logged) return jfail(c, "field '%s': layer %llu is not in layers_logged", c->key[MOE_JF_LAYER], (unsigned long long)v);
        r.layer = i;
    } else {
        r.layer = (uint32_t)v;
    }
    if (r.layer > c->max_layer) c->max_layer = r.layer;
    if (get_step(c, obj, &r) || get_experts(c, obj, &r)) return -1;
    return push_rec(c, &r);
}

/* ---- building ----------------------------------------------------------- */

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
 * records it changed (renum); -1 only on out of memory. */
static int renumber_positions(jctx *c, const uint8_t *start) {
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

/* Assign step boundaries: starts[i] = 1 where record i opens a new step. */
static void mark_steps(jctx *c, int order, int qwen, uint8_t *start) {
    for (size_t i = 0; i < c->n; i++) {
        const jrec *r = &c->recs[i], *p = i ? r - 1 : NULL;
        if (!p) { start[i] = 1; continue; }
        if (r->has_step) { start[i] = r->step_val != p->step_val; continue; }
        if (qwen || order == MOE_ORDER_SORTED) start[i] = r->seq != p->seq || r->pos != p->pos;
        else start[i] = r->layer < p->layer || r->seq != p->seq;
    }
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

static moe_trace *build(jctx *c, int order, int qwen, uint32_t top_k_meta, const char *model, char *meta,
                        size_t meta_cap, const uint32_t *lname, uint32_t n_lname) {
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
    uint32_t layers = o->layers ? o->layers : c->max_layer + 1;
    uint32_t top_k = o->top_k ? o->top_k : top_k_meta ? top_k_meta : c->max_n;
    uint32_t experts = o->experts ? o->experts : c->max_expert + 1;
    if (c->max_n > top_k) {
        moe_fail(c->err, "%s:%llu: a record has %u experts but top_k is %u", c->path,
                 (unsigned long long)c->max_n_line, c->max_n, top_k);
        return NULL;
    }
    if (top_k > experts) experts = top_k;
    if (moe_trace_check_geometry(layers, experts, top_k, 0, c->err)) {
        moe_fail_prefix(c->err, "%s", c->path);
        return NULL;
    }
    uint8_t *start = malloc(c->n);
    uint64_t *sline = malloc(c->n * sizeof *sline), first_renum = 0;
    moe_trace_builder *b = start && sline ? moe_tb_new(layers, experts, top_k, c->any_weight, 0, 0) : NULL;
    uint32_t *tseq = NULL, *tpos = NULL;
    if (!b) goto oom;
    mark_steps(c, order, qwen, start);
    if (!qwen && order == MOE_ORDER_EXEC && renumber_positions(c, start)) goto oom;
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
        if (moe_tb_begin_step(b, step++, moe_infer_phase(tseq, tpos, nt), c->err)) goto fail_line;
        int64_t tok = -1;
        for (size_t k = i; k < j; k++) {
            const jrec *r = &c->recs[k], *p = k > i ? r - 1 : NULL;
            c->line = r->line;
            if (!p || r->pos != p->pos || r->seq != p->seq) {
                if ((tok = moe_tb_add_token(b, r->seq, r->pos, c->err)) < 0) goto fail_line;
                if (r->renum && !c->renumbered++) first_renum = r->line;
            } else if (r->layer == p->layer) {
                jfail(c, "duplicate (seq %u, token %u, layer %u) in one forward pass, first on line %llu",
                      r->seq, r->pos, r->layer, (unsigned long long)p->line);
                goto fail;
            }
            for (uint32_t s = 0; s < r->n; s++)
                if (moe_tb_set(b, (uint64_t)tok, r->layer, s, c->ex[r->off + s], c->w[r->off + s], c->err)) goto fail_line;
        }
        i = j;
    }
    free(start), free(tseq), free(tpos);
    if (c->renumbered) {
        size_t m = strlen(meta);
        snprintf(meta + m, meta_cap - m, "token_pos=renumbered (restarted within sequences: %llu tokens)\n",
                 (unsigned long long)c->renumbered);
        jsay(c, 0,
             "%s: token_pos restarts in later forward passes of a sequence (the position within the pass, not "
             "the sequence), first on line %llu: %llu tokens renumbered to continue their sequence, so phases "
             "are right (prefill: a sequence's first pass or several of its tokens in one pass; else decode)",
             c->path, (unsigned long long)first_renum, (unsigned long long)c->renumbered);
    }
    moe_trace *t = moe_tb_finish(b, model, qwen ? "import jsonl-qwen" : "import jsonl-mixtral", meta, c->err);
    unsigned long long bad_step;
    if (!t && c->err && sscanf(c->err->msg, "step %llu", &bad_step) == 1 && bad_step < step)
        moe_fail_prefix(c->err, "%s:%llu", c->path, (unsigned long long)sline[bad_step]); /* the step's first line */
    else if (!t) moe_fail_prefix(c->err, "%s", c->path);
    else if (report_empty(c, t, sline, lname, n_lname)) moe_trace_free(t), t = NULL;
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
    FILE *f = fopen(path, "rb");
    if (!f) {
        moe_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0, any = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
        c.line++;
        size_t k = 0;
        while (k < (size_t)n && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r' || line[k] == '\n')) k++;
        if (k == (size_t)n) continue; /* blank line */
        any = 1;
        cJSON *obj = cJSON_ParseWithLength(line, (size_t)n);
        if (!cJSON_IsObject(obj)) rc = jfail(&c, "not a JSON object");
        else rc = qwen ? qwen_line(&c, obj, &q) : mixtral_line(&c, obj, &order);
        cJSON_Delete(obj);
    }
    int rerr = ferror(f);
    fclose(f);
    free(line);
    moe_trace *t = NULL;
    if (rc == 0 && rerr) moe_fail(err, "%s: read error", path);
    else if (rc == 0 && !any) moe_fail(err, "%s:1: empty file", path);
    else if (rc == 0 && qwen && !q.have_meta) moe_fail(err, "%s:1: no meta line", path);
    else if (rc == 0) {
        char meta[1024];
        int m = snprintf(meta, sizeof meta, "imported_from=%s\norder=%s\n", qwen ? "jsonl-qwen" : "jsonl-mixtral",
                         qwen ? "token-per-step" : order == MOE_ORDER_SORTED ? "sorted" : "exec");
        if (qwen) {
            m += snprintf(meta + m, sizeof meta - (size_t)m, "skipped_warmup_rows=%llu\n", (unsigned long long)q.skipped);
            if (q.n_logged) {
                m += snprintf(meta + m, sizeof meta - (size_t)m, "layers_logged=");
                for (uint32_t i = 0; i < q.n_logged && m < (int)sizeof meta - 16; i++)
                    m += snprintf(meta + m, sizeof meta - (size_t)m, "%s%u", i ? "," : "", q.layers_logged[i]);
                m += snprintf(meta + m, sizeof meta - (size_t)m, "\n");
            }
        }
        if (qwen && q.n_logged && !o->layers && c.n) c.max_layer = q.n_logged - 1; /* keep every logged layer */
        t = build(&c, order, qwen, q.top_k, q.model, meta, sizeof meta, q.layers_logged, q.n_logged);
    }
    free(c.recs), free(c.ex), free(c.w), free(q.layers_logged);
    for (size_t i = 0; i < c.nreq; i++) free(c.req[i]);
    free(c.req);
    return t;
}

int moe_jsonl_sniff(const char *path, moe_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return moe_fail(err, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int layout = MOE_JSONL_MIXTRAL;
    while ((n = getline(&line, &cap, f)) > 0) {
        cJSON *obj = cJSON_ParseWithLength(line, (size_t)n);
        if (!obj) continue; /* blank or bad: the importer reports it */
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
        if (cJSON_IsString(type) && !strcmp(type->valuestring, "meta")) layout = MOE_JSONL_QWEN;
        cJSON_Delete(obj);
        break;
    }
    free(line);
    fclose(f);
    return layout;
}
