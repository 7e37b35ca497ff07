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
 *   problem_id is the sequence id.
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
 * file:line and the field. */
#include <cjson/cJSON.h>
#include <errno.h>
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
    /* qwen */
    char **req;     /* req_id strings in order of first appearance */
    size_t nreq, capreq;
} jctx;

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
            c->w[c->nex + (size_t)i] = (float)y->valuedouble;
        }
        if (id > c->max_expert) c->max_expert = id;
    }
    if (c->o->top_k && (uint32_t)n > c->o->top_k) return jfail(c, "field '%s': %d experts > top_k (%u)", ek, n, c->o->top_k);
    if ((uint32_t)n > c->max_n) c->max_n = (uint32_t)n;
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
    if (*order == MOE_ORDER_AUTO) { /* decided by the first record */
        if (cJSON_GetObjectItemCaseSensitive(obj, "token_pos")) *order = MOE_ORDER_EXEC, c->key[MOE_JF_TOKEN] = "token_pos";
        else if (cJSON_GetObjectItemCaseSensitive(obj, "token_idx")) *order = MOE_ORDER_SORTED, c->key[MOE_JF_TOKEN] = "token_idx";
        else return jfail(c, "neither 'token_pos' nor 'token_idx' present (map one with --field token=KEY)");
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

static moe_trace *build(jctx *c, int order, int qwen, uint32_t top_k_meta, const char *model, const char *meta) {
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
        moe_fail(c->err, "%s: a record has %u experts but top_k is %u", c->path, c->max_n, top_k);
        return NULL;
    }
    if (top_k > experts) experts = top_k;
    uint8_t *start = malloc(c->n);
    moe_trace_builder *b = start ? moe_tb_new(layers, experts, top_k, c->any_weight, 0, 0) : NULL;
    uint32_t *tseq = NULL, *tpos = NULL;
    if (!b) goto oom;
    mark_steps(c, order, qwen, start);
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
        if (moe_tb_begin_step(b, step++, moe_infer_phase(tseq, tpos, nt), c->err)) goto fail_line;
        int64_t tok = -1;
        for (size_t k = i; k < j; k++) {
            const jrec *r = &c->recs[k], *p = k > i ? r - 1 : NULL;
            c->line = r->line;
            if (!p || r->pos != p->pos || r->seq != p->seq) {
                if ((tok = moe_tb_add_token(b, r->seq, r->pos, c->err)) < 0) goto fail_line;
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
    moe_trace *t = moe_tb_finish(b, model, qwen ? "import jsonl-qwen" : "import jsonl-mixtral", meta, c->err);
    if (!t) moe_fail_prefix(c->err, "%s", c->path);
    return t;
oom:
    moe_fail(c->err, "%s: out of memory", c->path);
    goto fail;
fail_line:
    moe_fail_prefix(c->err, "%s:%llu", c->path, (unsigned long long)c->line);
fail:
    free(start), free(tseq), free(tpos);
    moe_tb_abort(b);
    return NULL;
}

moe_trace *moe_trace_load_jsonl(const char *path, const moe_jsonl_opts *o, moe_error *err) {
    int qwen = o->layout == MOE_JSONL_QWEN;
    static const char *const def_mixtral[MOE_JF_COUNT] = {"problem_id", "layer", NULL, "experts", "gating_probs", NULL};
    static const char *const def_qwen[MOE_JF_COUNT] = {"req_id", "layer", "token_idx", "topk_ids", "topk_weights", NULL};
    jctx c = {.path = path, .o = o, .err = err};
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
        t = build(&c, order, qwen, q.top_k, q.model, meta);
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
