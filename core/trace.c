/* trace.c: the in-memory trace, its invariants, the builder importers use,
 * its meta lines and its one-token-per-step copy. */
#include "trace.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void moe_trace_free(moe_trace *t) {
    if (!t) return;
    if (t->map) {
        munmap(t->map, t->map_len);
    } else {
        free(t->step_first_token);
        free(t->step_id);
        free(t->step_phase);
        free(t->token_seq);
        free(t->token_pos);
        free(t->experts);
        free(t->weights);
        free(t->router_logits);
        free(t->lookahead);
        free(t->keys);
    }
    free(t->meta);
    free(t);
}

uint64_t moe_trace_count_slots(const moe_trace *t) {
    if (t->keys) return t->n_tokens; /* one access per request */
    uint64_t n = 0, total = t->n_tokens * t->n_layers * t->top_k;
    for (uint64_t i = 0; i < total; i++) n += t->experts[i] != MOE_NO_EXPERT;
    return n;
}

int moe_trace_check_geometry(uint32_t n_layers, uint32_t n_experts, uint32_t top_k,
                             uint32_t lookahead_depth, moe_error *err) {
    if (n_layers == 0 || n_layers > MOE_MAX_LAYERS)
        return moe_fail(err, "layers %u out of range 1..%u", n_layers, MOE_MAX_LAYERS);
    if (n_experts == 0 || n_experts > MOE_MAX_EXPERTS)
        return moe_fail(err, "experts %u out of range 1..%u", n_experts, MOE_MAX_EXPERTS);
    if (top_k == 0 || top_k > n_experts)
        return moe_fail(err, "top_k %u out of range 1..%u (experts)", top_k, n_experts);
    if (lookahead_depth > MOE_MAX_LAYERS)
        return moe_fail(err, "lookahead depth %u out of range 0..%u", lookahead_depth, MOE_MAX_LAYERS);
    if ((uint64_t)n_layers * n_experts > MOE_MAX_KEYS)
        return moe_fail(err, "layers x experts = %u x %u = %llu (layer, expert) keys, more than the key space (%llu)",
                        n_layers, n_experts, (unsigned long long)n_layers * n_experts,
                        (unsigned long long)MOE_MAX_KEYS);
    return 0;
}

/* Entries per token of the record arrays (experts / weights: layers x
 * top_k), the logits (layers x experts) and the lookahead (records x depth);
 * -1 if any of them, in bytes, overflows size_t. */
static int token_sizes(uint32_t n_layers, uint32_t n_experts, uint32_t top_k, uint32_t depth,
                       size_t *rec, size_t *logit_n, size_t *la_n) {
    size_t r, lg, la, b;
    if (__builtin_mul_overflow((size_t)n_layers, (size_t)top_k, &r) ||
        __builtin_mul_overflow((size_t)n_layers, (size_t)n_experts, &lg) ||
        __builtin_mul_overflow(r, (size_t)depth, &la) ||
        __builtin_mul_overflow(r, sizeof(float), &b) || __builtin_mul_overflow(lg, sizeof(float), &b) ||
        __builtin_mul_overflow(la, sizeof(uint16_t), &b))
        return -1;
    *rec = r, *logit_n = lg, *la_n = la;
    return 0;
}

/* A key sequence: the geometry trace.h states, no routing arrays, every
 * key in range. */
static int validate_keys(const moe_trace *t, moe_error *err) {
    if (t->n_layers != 1 || t->top_k != 1 || t->lookahead_depth || t->n_shared)
        return moe_fail(err, "header: a key sequence has layers = top_k = 1 and no lookahead or shared experts "
                        "(has %u, %u, %u, %u)", t->n_layers, t->top_k, t->lookahead_depth, t->n_shared);
    if (t->n_experts == 0) return moe_fail(err, "header: a key sequence needs at least one key");
    if (t->n_steps != t->n_tokens || t->n_tokens == 0)
        return moe_fail(err, "header: a key sequence has one token per step and at least one request "
                        "(%llu steps, %llu tokens)", (unsigned long long)t->n_steps, (unsigned long long)t->n_tokens);
    if (t->n_tokens > SIZE_MAX / sizeof(uint64_t))
        return moe_fail(err, "header: %llu requests overflow the address space", (unsigned long long)t->n_tokens);
    if (t->step_first_token || t->step_id || t->step_phase || t->token_seq || t->token_pos || t->experts ||
        t->weights || t->router_logits || t->lookahead)
        return moe_fail(err, "header: a key sequence carries no per-step or per-token arrays");
    /* max over all keys first (one branch-free pass), the place only if bad */
    uint32_t mx = 0;
    for (uint64_t i = 0; i < t->n_tokens; i++) mx = t->keys[i] > mx ? t->keys[i] : mx;
    if (mx >= t->n_experts)
        for (uint64_t i = 0; i < t->n_tokens; i++)
            if (t->keys[i] >= t->n_experts)
                return moe_fail(err, "request %llu: key %u >= keys (%u)", (unsigned long long)i, t->keys[i],
                                t->n_experts);
    return 0;
}

moe_trace *moe_trace_from_keys(uint32_t *keys, uint64_t n, uint64_t n_keys, const char *source,
                               const char *meta, moe_error *err) {
    moe_trace *t = calloc(1, sizeof *t);
    if (!t || (meta && !(t->meta = strdup(meta)))) {
        if (t) free(t);
        free(keys);
        moe_fail(err, "out of memory");
        return NULL;
    }
    if (n_keys == 0 || n_keys > MOE_MAX_KEYS) {
        free(t->meta), free(t), free(keys);
        moe_fail(err, "%llu distinct keys: a key sequence holds 1..%llu", (unsigned long long)n_keys,
                 (unsigned long long)MOE_MAX_KEYS);
        return NULL;
    }
    snprintf(t->source, sizeof t->source, "%s", source ? source : "");
    t->n_layers = t->top_k = 1;
    t->n_experts = (uint32_t)n_keys;
    t->n_steps = t->n_tokens = n;
    t->keys = keys;
    if (validate_keys(t, err)) {
        moe_trace_free(t);
        return NULL;
    }
    return t;
}

int moe_trace_validate(const moe_trace *t, moe_error *err) {
    if (t->keys) return validate_keys(t, err);
    if (moe_trace_check_geometry(t->n_layers, t->n_experts, t->top_k, t->lookahead_depth, err))
        return moe_fail_prefix(err, "header");
    {
        /* Every array is indexed by tokens x (a per-token size): all must be
         * addressable, as an in-memory trace's are by construction. */
        size_t rec, lg, la, x;
        if (token_sizes(t->n_layers, t->n_experts, t->top_k, t->lookahead_depth, &rec, &lg, &la) ||
            __builtin_mul_overflow((size_t)t->n_tokens, rec, &x) ||
            __builtin_mul_overflow(x, sizeof(float), &x) ||
            (t->router_logits && (__builtin_mul_overflow((size_t)t->n_tokens, lg, &x) ||
                                  __builtin_mul_overflow(x, sizeof(float), &x))) ||
            (t->lookahead && (__builtin_mul_overflow((size_t)t->n_tokens, la, &x) ||
                              __builtin_mul_overflow(x, sizeof(uint16_t), &x))) ||
            t->n_tokens > SIZE_MAX / sizeof(uint64_t) || t->n_steps >= SIZE_MAX / sizeof(uint64_t))
            return moe_fail(err, "header: %llu tokens x %u layers x top_k %u overflows the address space",
                            (unsigned long long)t->n_tokens, t->n_layers, t->top_k);
    }
    if (t->step_first_token[0] != 0) return moe_fail(err, "step 0: first token is not 0");
    if (t->step_first_token[t->n_steps] != t->n_tokens)
        return moe_fail(err, "steps cover %llu tokens but the trace has %llu",
                        (unsigned long long)t->step_first_token[t->n_steps],
                        (unsigned long long)t->n_tokens);
    for (uint64_t s = 0; s < t->n_steps; s++) {
        if (t->step_first_token[s + 1] <= t->step_first_token[s])
            return moe_fail(err, "step %llu: has no tokens", (unsigned long long)t->step_id[s]);
        if (s && t->step_id[s] <= t->step_id[s - 1])
            return moe_fail(err, "step %llu follows step %llu: step numbers must increase",
                            (unsigned long long)t->step_id[s], (unsigned long long)t->step_id[s - 1]);
        if (t->step_phase[s] > MOE_PHASE_DECODE)
            return moe_fail(err, "step %llu: phase %u is neither prefill nor decode",
                            (unsigned long long)t->step_id[s], t->step_phase[s]);
    }
    /* Per record: slots packed (no expert after an absent slot), ids in
     * range, no expert twice, finite weights. The uint8 seen-array is cheap
     * since n_experts <= 65534. */
    uint8_t *seen = calloc(t->n_experts, 1);
    if (!seen) return moe_fail(err, "out of memory");
    int rc = 0;
    uint64_t step = 0;
    for (uint64_t tok = 0; tok < t->n_tokens && rc == 0; tok++) {
        while (t->step_first_token[step + 1] <= tok) step++;
        for (uint32_t l = 0; l < t->n_layers && rc == 0; l++) {
            size_t r = moe_trace_rec(t, tok, l);
            int ended = 0;
            for (uint32_t s = 0; s < t->top_k; s++) {
                uint16_t e = t->experts[r + s];
                if (e == MOE_NO_EXPERT) { ended = 1; continue; }
#define AT "step %llu, token %u, layer %u, slot %u: "
#define ATARGS (unsigned long long)t->step_id[step], t->token_pos[tok], l, s
                if (ended) { rc = moe_fail(err, AT "expert after an empty slot", ATARGS); break; }
                if (e >= t->n_experts) {
                    rc = moe_fail(err, AT "expert %u >= experts (%u)", ATARGS, e, t->n_experts);
                    break;
                }
                if (seen[e]) { rc = moe_fail(err, AT "expert %u appears twice", ATARGS, e); break; }
                seen[e] = 1;
                if (t->weights && !isnan(t->weights[r + s]) && !isfinite(t->weights[r + s])) {
                    rc = moe_fail(err, AT "weight is not finite", ATARGS);
                    break;
                }
            }
            for (uint32_t s = 0; s < t->top_k; s++)
                if (t->experts[r + s] != MOE_NO_EXPERT && t->experts[r + s] < t->n_experts)
                    seen[t->experts[r + s]] = 0;
            if (rc == 0 && t->lookahead) {
                const uint16_t *la = t->lookahead + ((size_t)tok * t->n_layers + l) * t->lookahead_depth * t->top_k;
                for (uint32_t i = 0; i < t->lookahead_depth * t->top_k; i++)
                    if (la[i] != MOE_NO_EXPERT && la[i] >= t->n_experts) {
                        uint32_t s = i % t->top_k;
                        rc = moe_fail(err, AT "lookahead expert %u >= experts (%u)",
                                      ATARGS, la[i], t->n_experts);
                        break;
                    }
            }
#undef AT
#undef ATARGS
        }
    }
    free(seen);
    return rc;
}

/* ---- builder ------------------------------------------------------------ */

struct moe_trace_builder {
    moe_trace *t;
    uint64_t cap_steps, cap_tokens;
    int in_step;
};

/* Resize one array to n elements of elem bytes; 0 or -1 (also when the
 * size overflows). */
static int grow(void **p, size_t elem, uint64_t n) {
    size_t bytes;
    if (n > SIZE_MAX || __builtin_mul_overflow(elem, (size_t)n, &bytes)) return -1;
    void *q = realloc(*p, bytes);
    if (!q) return -1;
    *p = q;
    return 0;
}

moe_trace_builder *moe_tb_new(uint32_t n_layers, uint32_t n_experts, uint32_t top_k,
                              int with_weights, int with_logits, uint32_t lookahead_depth) {
    size_t rec, lg, la;
    if (moe_trace_check_geometry(n_layers, n_experts, top_k, lookahead_depth, NULL) ||
        token_sizes(n_layers, n_experts, top_k, lookahead_depth, &rec, &lg, &la))
        return NULL;
    moe_trace_builder *b = calloc(1, sizeof *b);
    moe_trace *t = calloc(1, sizeof *t);
    if (!b || !t) { free(b); free(t); return NULL; }
    t->n_layers = n_layers;
    t->n_experts = n_experts;
    t->top_k = top_k;
    t->lookahead_depth = lookahead_depth;
    b->t = t;
    b->cap_steps = 64;
    /* Start with 64 tokens, fewer when a token's arrays are large (a wide
     * geometry), so that the first allocation stays near 1 MiB. */
    size_t per_tok = rec * sizeof(uint16_t) + (with_weights ? rec * sizeof(float) : 0) +
                     (with_logits ? lg * sizeof(float) : 0) + la * sizeof(uint16_t);
    b->cap_tokens = 64;
    while (b->cap_tokens > 1 && per_tok > (1u << 20) / b->cap_tokens) b->cap_tokens /= 2;
    t->step_first_token = calloc(b->cap_steps + 1, sizeof(uint64_t));
    t->step_id = malloc(b->cap_steps * sizeof(uint64_t));
    t->step_phase = malloc(b->cap_steps);
    t->token_seq = malloc(b->cap_tokens * sizeof(uint32_t));
    t->token_pos = malloc(b->cap_tokens * sizeof(uint32_t));
    /* No overflow: each per-token size fits (token_sizes), and cap_tokens
     * is 1 or keeps cap_tokens x per_tok within 1 MiB. */
    t->experts = malloc(b->cap_tokens * rec * sizeof(uint16_t));
    if (with_weights) t->weights = malloc(b->cap_tokens * rec * sizeof(float));
    if (with_logits) t->router_logits = malloc(b->cap_tokens * lg * sizeof(float));
    if (lookahead_depth) t->lookahead = malloc(b->cap_tokens * la * sizeof(uint16_t));
    if (!t->step_first_token || !t->step_id || !t->step_phase || !t->token_seq || !t->token_pos ||
        !t->experts || (with_weights && !t->weights) || (with_logits && !t->router_logits) ||
        (lookahead_depth && !t->lookahead)) {
        moe_tb_abort(b);
        return NULL;
    }
    return b;
}

void moe_tb_abort(moe_trace_builder *b) {
    if (!b) return;
    moe_trace_free(b->t);
    free(b);
}

uint64_t moe_tb_steps(const moe_trace_builder *b) { return b->t->n_steps; }
uint64_t moe_tb_tokens(const moe_trace_builder *b) { return b->t->n_tokens; }

int moe_tb_begin_step(moe_trace_builder *b, uint64_t step_id, int phase, moe_error *err) {
    moe_trace *t = b->t;
    if (t->n_steps && t->step_first_token[t->n_steps - 1] == t->n_tokens)
        return moe_fail(err, "step %llu has no tokens", (unsigned long long)t->step_id[t->n_steps - 1]);
    if (t->n_steps == b->cap_steps) {
        uint64_t n = b->cap_steps * 2;
        if (n < b->cap_steps || grow((void **)&t->step_first_token, sizeof(uint64_t), n + 1) ||
            grow((void **)&t->step_id, sizeof(uint64_t), n) ||
            grow((void **)&t->step_phase, 1, n))
            return moe_fail(err, "out of memory after %llu steps", (unsigned long long)t->n_steps);
        b->cap_steps = n;
    }
    t->step_id[t->n_steps] = step_id;
    t->step_phase[t->n_steps] = (uint8_t)phase;
    t->step_first_token[t->n_steps] = t->n_tokens;
    t->n_steps++;
    t->step_first_token[t->n_steps] = t->n_tokens;
    b->in_step = 1;
    return 0;
}

int64_t moe_tb_add_token(moe_trace_builder *b, uint32_t seq, uint32_t pos, moe_error *err) {
    moe_trace *t = b->t;
    if (!b->in_step) return moe_fail(err, "token added before any step");
    /* The products fit size_t: moe_tb_new checked them per token. */
    size_t rec = (size_t)t->n_layers * t->top_k;
    if (t->n_tokens == b->cap_tokens) {
        uint64_t n = b->cap_tokens * 2;
        /* grow() refuses a byte count that overflows, so a token count too
         * large for the geometry fails here instead of wrapping around. */
        if (n < b->cap_tokens ||
            grow((void **)&t->token_seq, sizeof(uint32_t), n) ||
            grow((void **)&t->token_pos, sizeof(uint32_t), n) ||
            grow((void **)&t->experts, rec * sizeof(uint16_t), n) ||
            (t->weights && grow((void **)&t->weights, rec * sizeof(float), n)) ||
            (t->router_logits &&
             grow((void **)&t->router_logits, (size_t)t->n_layers * t->n_experts * sizeof(float), n)) ||
            (t->lookahead &&
             grow((void **)&t->lookahead, rec * t->lookahead_depth * sizeof(uint16_t), n)))
            return moe_fail(err, "out of memory after %llu tokens of %u layers x top_k %u",
                            (unsigned long long)t->n_tokens, t->n_layers, t->top_k);
        b->cap_tokens = n;
    }
    uint64_t tok = t->n_tokens++;
    t->token_seq[tok] = seq;
    t->token_pos[tok] = pos;
    for (size_t i = 0; i < rec; i++) t->experts[tok * rec + i] = MOE_NO_EXPERT;
    if (t->weights)
        for (size_t i = 0; i < rec; i++) t->weights[tok * rec + i] = NAN;
    if (t->router_logits)
        memset(t->router_logits + tok * t->n_layers * (size_t)t->n_experts, 0,
               (size_t)t->n_layers * t->n_experts * sizeof(float));
    if (t->lookahead)
        for (size_t i = 0; i < rec * t->lookahead_depth; i++)
            t->lookahead[tok * rec * t->lookahead_depth + i] = MOE_NO_EXPERT;
    t->step_first_token[t->n_steps] = t->n_tokens;
    return (int64_t)(tok - t->step_first_token[t->n_steps - 1]);
}

static uint64_t tb_token(moe_trace_builder *b, uint64_t tok_in_step) {
    return b->t->step_first_token[b->t->n_steps - 1] + tok_in_step;
}

int moe_tb_set(moe_trace_builder *b, uint64_t tok_in_step, uint32_t layer, uint32_t slot,
               uint32_t expert, float weight, moe_error *err) {
    moe_trace *t = b->t;
    if (!t->n_steps) return moe_fail(err, "record before any step");
    uint64_t tok = tb_token(b, tok_in_step);
    if (tok >= t->n_tokens) return moe_fail(err, "token %llu not in the current step", (unsigned long long)tok_in_step);
    if (layer >= t->n_layers) return moe_fail(err, "layer %u >= layers (%u)", layer, t->n_layers);
    if (slot >= t->top_k) return moe_fail(err, "slot %u >= top_k (%u)", slot, t->top_k);
    if (expert >= t->n_experts) return moe_fail(err, "expert %u >= experts (%u)", expert, t->n_experts);
    size_t r = moe_trace_rec(t, tok, layer) + slot;
    t->experts[r] = (uint16_t)expert;
    if (t->weights) t->weights[r] = weight;
    return 0;
}

float *moe_tb_logits(moe_trace_builder *b, uint64_t tok_in_step, uint32_t layer) {
    moe_trace *t = b->t;
    if (!t->router_logits) return NULL;
    return t->router_logits + (tb_token(b, tok_in_step) * t->n_layers + layer) * (size_t)t->n_experts;
}

uint16_t *moe_tb_lookahead(moe_trace_builder *b, uint64_t tok_in_step, uint32_t layer) {
    moe_trace *t = b->t;
    if (!t->lookahead) return NULL;
    return t->lookahead + (tb_token(b, tok_in_step) * t->n_layers + layer) * (size_t)t->lookahead_depth * t->top_k;
}

moe_trace *moe_tb_finish(moe_trace_builder *b, const char *model, const char *source,
                         const char *meta, moe_error *err) {
    moe_trace *t = b->t;
    if (t->n_steps && t->step_first_token[t->n_steps - 1] == t->n_tokens) {
        moe_fail(err, "step %llu has no tokens", (unsigned long long)t->step_id[t->n_steps - 1]);
        moe_tb_abort(b);
        return NULL;
    }
    if (t->n_steps == 0) {
        moe_fail(err, "trace has no steps");
        moe_tb_abort(b);
        return NULL;
    }
    snprintf(t->model, sizeof t->model, "%s", model ? model : "");
    snprintf(t->source, sizeof t->source, "%s", source ? source : "");
    if (meta && *meta) t->meta = strdup(meta);
    if (moe_trace_validate(t, err)) {
        moe_tb_abort(b);
        return NULL;
    }
    free(b);
    return t;
}

/* A malloc'ed copy of n bytes of src, or NULL (then *ok = 0; NULL src stays NULL). */
static void *dup_bytes(const void *src, size_t n, int *ok) {
    if (!src) return NULL;
    void *p = malloc(n ? n : 1);
    if (!p) *ok = 0;
    else memcpy(p, src, n);
    return p;
}

moe_trace *moe_trace_token_steps(const moe_trace *t, moe_error *err) {
    if (t->keys) return moe_fail(err, "a key sequence already has one request per step"), NULL;
    moe_trace *c = calloc(1, sizeof *c);
    if (!c) return moe_fail(err, "out of memory"), NULL;
    memcpy(c->model, t->model, sizeof c->model);
    memcpy(c->source, t->source, sizeof c->source);
    c->n_layers = t->n_layers, c->n_experts = t->n_experts, c->top_k = t->top_k, c->n_shared = t->n_shared;
    c->lookahead_depth = t->lookahead_depth;
    memcpy(c->expert_bytes, t->expert_bytes, sizeof c->expert_bytes);
    c->n_steps = c->n_tokens = t->n_tokens;
    const size_t n = t->n_tokens, rec = n * t->n_layers;
    int ok = 1;
    c->meta = t->meta ? dup_bytes(t->meta, strlen(t->meta) + 1, &ok) : NULL;
    c->step_first_token = malloc((n + 1) * sizeof *c->step_first_token);
    c->step_id = malloc((n ? n : 1) * sizeof *c->step_id);
    c->step_phase = malloc(n ? n : 1);
    c->token_seq = dup_bytes(t->token_seq, n * sizeof *t->token_seq, &ok);
    c->token_pos = dup_bytes(t->token_pos, n * sizeof *t->token_pos, &ok);
    c->experts = dup_bytes(t->experts, rec * t->top_k * sizeof *t->experts, &ok);
    c->weights = dup_bytes(t->weights, rec * t->top_k * sizeof *t->weights, &ok);
    c->router_logits = dup_bytes(t->router_logits, rec * t->n_experts * sizeof *t->router_logits, &ok);
    c->lookahead = dup_bytes(t->lookahead, rec * t->lookahead_depth * t->top_k * sizeof *t->lookahead, &ok);
    if (!ok || !c->step_first_token || !c->step_id || !c->step_phase) {
        moe_trace_free(c);
        return moe_fail(err, "out of memory"), NULL;
    }
    /* each token its own step, numbered 0, 1, ..., with its step's phase */
    for (uint64_t s = 0; s < t->n_steps; s++)
        for (uint64_t tok = t->step_first_token[s]; tok < t->step_first_token[s + 1]; tok++) {
            c->step_first_token[tok] = c->step_id[tok] = tok;
            c->step_phase[tok] = t->step_phase[s];
        }
    c->step_first_token[n] = n;
    return c;
}

int moe_trace_meta_get(const moe_trace *t, const char *key, char *out, size_t cap) {
    size_t kl = strlen(key);
    for (const char *p = t->meta; p && *p;) {
        const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
        if ((size_t)(end - p) > kl && !strncmp(p, key, kl) && p[kl] == '=') {
            snprintf(out, cap, "%.*s", (int)(end - p - (ptrdiff_t)kl - 1), p + kl + 1);
            return 0;
        }
        p = nl ? nl + 1 : end;
    }
    return -1;
}
