/* replay_setup.c: what both replay loops share (replay_internal.h): the
 * result's shape, scope names, which loop a config needs, and the caches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/device_profile.h"
#include "../core/split.h"
#include "replay_ext.h"
#include "replay_internal.h"

const char *moe_scope_name(int scope) { return scope == MOE_SCOPE_GLOBAL ? "global" : "per-layer"; }

int moe_scope_parse(const char *s, int *scope, moe_error *err) {
    if (!strcmp(s, "per-layer")) *scope = MOE_SCOPE_PER_LAYER;
    else if (!strcmp(s, "global")) *scope = MOE_SCOPE_GLOBAL;
    else return moe_fail(err, "unknown scope '%s' (use per-layer or global)", s);
    return 0;
}

int moe_replay_config_is_ext(const moe_replay_config *cfg) {
    return cfg->prefetch || cfg->speculate || cfg->skip || cfg->precision || cfg->device || cfg->model ||
           cfg->capacity_bytes || cfg->capacity_frac > 0 || cfg->load_state || cfg->save_state || cfg->on_miss ||
           cfg->stream_dense;
}

/* Sequences of the result (replay.h): one pass over the steps. */
static int result_alloc_seqs(moe_replay_result *res, const moe_trace *t) {
    uint32_t n = 1;
    if (!t->keys) {
        if (!(res->step_seq = malloc((t->n_steps ? t->n_steps : 1) * sizeof *res->step_seq))) return -1;
        uint32_t q = 0, id = 0;
        int any = 0;
        for (uint64_t s = 0; s < t->n_steps; s++) {
            uint64_t tok = t->step_first_token[s];
            if (tok < t->step_first_token[s + 1]) { /* a step without tokens stays in its sequence */
                if (any && t->token_seq[tok] != id) q++;
                id = t->token_seq[tok];
                any = 1;
            }
            res->step_seq[s] = q;
        }
        n = q + 1;
    }
    res->n_seqs = n;
    res->seq_ids = calloc(n, sizeof *res->seq_ids);
    res->seq_accesses = calloc(n, sizeof *res->seq_accesses);
    res->seq_hits = calloc(n, sizeof *res->seq_hits);
    if (!res->seq_ids || !res->seq_accesses || !res->seq_hits) return -1;
    if (!t->keys)
        for (uint64_t s = t->n_steps; s-- > 0;) /* each sequence's id: that of its first step with tokens */
            if (t->step_first_token[s] < t->step_first_token[s + 1])
                res->seq_ids[res->step_seq[s]] = t->token_seq[t->step_first_token[s]];
    return 0;
}

/* Each step's offset from its sequence's start, for the recovery curve
 * (replay.h); the first sequence's steps are not counted. */
static int result_alloc_since_start(moe_replay_result *res, const moe_trace *t) {
    if (t->keys) return 0;
    if (!(res->step_since_start = malloc((t->n_steps ? t->n_steps : 1) * sizeof *res->step_since_start))) return -1;
    uint64_t start = 0;
    uint32_t id = 0;
    int any = 0, counted = 0; /* a step with tokens seen; the current sequence is counted */
    for (uint64_t s = 0; s < t->n_steps; s++) {
        uint64_t tok = t->step_first_token[s];
        if (tok < t->step_first_token[s + 1]) { /* a step without tokens stays in its sequence */
            if (any && t->token_seq[tok] != id) {
                start = s;
                counted = 1;
                res->since_start_seqs++;
            }
            id = t->token_seq[tok];
            any = 1;
        }
        uint64_t o = s - start;
        res->step_since_start[s] = counted && o < MOE_SINCE_START_STEPS ? (uint32_t)o : MOE_SINCE_START_STEPS;
    }
    return 0;
}

int moe_replay_result_alloc(moe_replay_result *res, const moe_trace *t, uint32_t curve_windows) {
    res->n_layers = t->n_layers;
    res->layer_accesses = calloc(t->n_layers, sizeof(uint64_t));
    res->layer_hits = calloc(t->n_layers, sizeof(uint64_t));
    /* Windows of whole steps: ceil(steps / windows) steps each, so the last
     * window may be shorter and there may be fewer windows than asked. */
    res->n_windows = curve_windows ? curve_windows : 100;
    if (res->n_windows > t->n_steps) res->n_windows = (uint32_t)t->n_steps;
    res->win_steps = (t->n_steps + res->n_windows - 1) / res->n_windows;
    res->n_windows = (uint32_t)((t->n_steps + res->win_steps - 1) / res->win_steps);
    res->win_accesses = calloc(res->n_windows, sizeof(uint64_t));
    res->win_hits = calloc(res->n_windows, sizeof(uint64_t));
    if (!res->layer_accesses || !res->layer_hits || !res->win_accesses || !res->win_hits) return -1;
    return result_alloc_seqs(res, t) || result_alloc_since_start(res, t) ? -1 : 0;
}

int moe_replay_device(const moe_replay_config *cfg, moe_device_profile *out, moe_error *err) {
    if (cfg->device_profile) {
        *out = *cfg->device_profile;
        return 0;
    }
    return moe_device_profile_load(cfg->devices_path ? cfg->devices_path : MOE_DEVICES_INI, cfg->device, out, err);
}

void moe_replay_result_free(moe_replay_result *r) {
    free(r->layer_accesses);
    free(r->layer_hits);
    free(r->win_accesses);
    free(r->win_hits);
    free(r->step_seq);
    free(r->seq_ids);
    free(r->seq_accesses);
    free(r->seq_hits);
    free(r->step_since_start);
    if (r->ext) free(r->ext->step_s);
    free(r->ext);
    memset(r, 0, sizeof *r);
}

int moe_replay_caches_new(const moe_trace *t, const moe_replay_config *cfg, moe_cache ***caches, uint32_t *n,
                          moe_error *err) {
    const uint32_t L = t->n_layers, E = t->n_experts;
    const int global = cfg->scope == MOE_SCOPE_GLOBAL;
    *caches = NULL;
    *n = 0;
    /* the key space and the split's scope were checked before (replay_check.c:
     * every loop runs its check first) */
    uint32_t *caps = NULL; /* per-layer capacities of a non-uniform split */
    if (!moe_split_is_uniform(cfg->split)) {
        if (!(caps = malloc(L * sizeof *caps))) return moe_fail(err, "out of memory");
        if (moe_split_compute(cfg->split, t, cfg->capacity, cfg->cold_per_seq, caps, err)) {
            free(caps);
            return -1;
        }
    }
    uint32_t n_caches = global ? 1 : L;
    moe_cache **c = calloc(n_caches, sizeof *c);
    if (!c) {
        free(caps);
        return moe_fail(err, "out of memory");
    }
    for (uint32_t i = 0; i < n_caches; i++) {
        moe_policy_env env = {
            .n_keys = global ? L * E : E,
            .capacity = caps ? caps[i] : cfg->capacity,
            .n_layers = L,
            .n_experts = E,
            .fixed_layer = global ? -1 : (int32_t)i,
            /* each layer's cache gets its own stream, derived from the seed */
            .seed = cfg->seed * 1000003u + i,
            .trace = t,
        };
        if (!(c[i] = moe_cache_new(cfg->policy, &env, err))) {
            moe_replay_caches_free(c, n_caches);
            free(caps);
            return -1;
        }
    }
    free(caps);
    *caches = c;
    *n = n_caches;
    return 0;
}

void moe_replay_caches_free(moe_cache **caches, uint32_t n) {
    if (caches)
        for (uint32_t i = 0; i < n; i++) moe_cache_free(caches[i]);
    free(caches);
}
