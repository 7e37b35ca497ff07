/* replay_engine.c: the replay's general loop: every option (semantics in
 * replay.h and replay_ext.h). moe_replay (sim/replay.c) calls it for the
 * configs its demand-only fast path does not take. */
#include "replay_ext.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/cache.h"
#include "../core/cache_state.h"
#include "../core/device_profile.h"
#include "../core/on_miss.h"
#include "../core/params.h"
#include "../core/precision.h"
#include "../core/prefetch.h"
#include "../core/timing.h"
#include "dense_stream.h"
#include "replay_check.h"
#include "replay_internal.h"

int moe_skip_parse(const char *spec, double *cum, double *topk_frac, char *canonical, size_t cap,
                   moe_error *err) {
    moe_param p[] = {
        {"cum", MOE_PARAM_DOUBLE, "0", 0, 1, "skip-on-miss cumulative weight threshold (0 = off)", 0, 0, ""},
        {"topk_frac", MOE_PARAM_DOUBLE, "0", 0, 1, "adaptive top-k: drop below this x top-1 (0 = off)", 0, 0, ""},
    };
    char c[256];
    if (moe_params_parse("skip", spec, p, 2, c, sizeof c, err)) return -1;
    if (p[0].d == 0 && p[1].d == 0) return moe_fail(err, "skip: give cum=X and/or topk_frac=Y (both are 0)");
    *cum = p[0].d;
    *topk_frac = p[1].d;
    snprintf(canonical, cap, "%s", c + strlen("skip:"));
    return 0;
}

enum { ST_NONE = 0, ST_PF_UNUSED = 1, ST_PF_EVICTED = 2 };

typedef struct eng {
    const moe_trace *t;
    const moe_replay_config *cfg;
    moe_replay_result *res;
    moe_replay_ext *x;
    uint32_t L, E, n_caches;
    int global, timing, have_bytes, dynamic;
    moe_cache **caches;
    moe_prefetcher *pf;
    moe_precision_plan plan;
    moe_device_profile dev;
    moe_model_profile model;
    moe_timeline tl;
    moe_dense_stream ds; /* --stream-dense; budget 0 = off */
    double skip_cum, skip_frac;
    /* per (layer, expert) */
    double *ready;       /* time the resident copy's data is (was) complete */
    int64_t *rid;        /* contended timeline: the read that brings it (-1 = none) */
    int64_t *rid_e;      /* per expert of the current layer: the read its data comes from */
    uint8_t *keyprec;    /* tier of the resident copy */
    uint8_t *pfstate;    /* ST_* */
    uint8_t *seen;
    uint64_t *pred_stamp; /* step + 1 when predicted for this key in that step */
    uint64_t *pred_has;  /* per layer: step + 1 when a prediction targets it */
    /* per expert scratch */
    uint32_t *st_full, *st_kept, cur;
    uint16_t *full, *kept, *order, *pred, *cand;
    int8_t *pf_status;   /* per predicted expert: moe_cache_admit_prefetch's status */
    uint32_t *nt_full, *nt_kept;
    uint8_t *need, *prec_used, *hit, *pfhit, *late_kind;
    float *wmax;
    double *rdy;
    uint32_t *spec_ok;   /* == cur: speculated at the previous layer and confirmed */
    /* speculation carried to the next layer */
    uint16_t *spec_e;
    double *spec_dt;
    uint32_t n_spec, n_cand, cand_layer;
    uint64_t spec_step; /* step + 1 of the pending speculation, 0 = none */
    uint32_t spec_layer;
    /* --on-miss substitute: substitutes of the current (step, layer), with
     * their token counts (st_sub == cur: in the list); lowbit: the missing
     * experts whose low copies run, in the same list */
    uint16_t *sub, *onmiss;
    uint32_t n_sub, *st_sub, *nt_sub;
    int lowbit, low_tier; /* --on-miss lowbit:bits=B, B's tier */
    /* per-slot scratch of a step: kept expert or MOE_NO_EXPERT */
    uint16_t *slot_kept;
    /* count_from (replay.h): slot_counted[slot] = its token counts; st_cnt[e]
     * == cur: a counted token kept e; step_counts: some token of the step counts */
    uint8_t *slot_counted;
    uint32_t *st_cnt;
    int step_counts;
    size_t n_slots;
    double *dur;        /* decode step durations */
    uint64_t *last_use; /* per (layer, expert): access time + 1 of its last use (save_state) */
} eng;

static uint64_t bytes_of(const eng *g, int prec) { return g->have_bytes ? g->model.expert_bytes[prec] : 0; }
static int static_tier(const eng *g, size_t gk) { return g->plan.tier ? g->plan.tier[gk] : MOE_PREC_F16; }

static size_t gkey(const eng *g, const moe_cache *c, uint32_t key) {
    return c->env.fixed_layer >= 0 ? (size_t)c->env.fixed_layer * g->E + key : key;
}

static void on_evict(void *ctx, const moe_cache *c, uint32_t key) {
    eng *g = ctx;
    size_t gk = gkey(g, c, key);
    if (g->pfstate[gk] == ST_PF_UNUSED) {
        g->pfstate[gk] = ST_PF_EVICTED;
        g->x->pf_evicted_unused++;
        g->x->pf_wasted_bytes += bytes_of(g, g->keyprec[gk]);
    }
}

static void flush_unused(eng *g) {
    for (size_t gk = 0; gk < (size_t)g->L * g->E; gk++)
        if (g->pfstate[gk] == ST_PF_UNUSED) {
            g->x->pf_unused_end++;
            g->x->pf_wasted_bytes += bytes_of(g, g->keyprec[gk]);
        }
}

static void sort_ids(uint16_t *v, uint32_t n) {
    for (uint32_t i = 1; i < n; i++) {
        uint16_t a = v[i];
        uint32_t j = i;
        while (j && v[j - 1] > a) { v[j] = v[j - 1]; j--; }
        v[j] = a;
    }
}

/* Step 2 of the semantics: the full and the kept sets of (s, l). */
static void gather(eng *g, uint64_t s, uint32_t l, moe_cache *c, uint32_t base, uint32_t *n_full,
                   uint32_t *n_kept) {
    const moe_trace *t = g->t;
    moe_replay_ext *x = g->x;
    if (++g->cur == 0) {
        memset(g->st_full, 0, g->E * sizeof *g->st_full);
        memset(g->st_kept, 0, g->E * sizeof *g->st_kept);
        memset(g->spec_ok, 0, g->E * sizeof *g->spec_ok);
        memset(g->st_sub, 0, g->E * sizeof *g->st_sub);
        memset(g->st_cnt, 0, g->E * sizeof *g->st_cnt);
        g->cur = 1;
    }
    uint32_t nf = 0, nk = 0;
    g->n_sub = 0;
    uint64_t t0 = t->step_first_token[s], t1 = t->step_first_token[s + 1];
    size_t slot = 0;
    g->step_counts = 0;
    for (uint64_t tok = t0; tok < t1; tok++) {
        size_t r = moe_trace_rec(t, tok, l), slot0 = slot;
        int counts = t->token_pos[tok] >= g->cfg->count_from;
        g->step_counts |= counts;
        uint32_t ns = 0;
        double wsum = 0;
        for (; ns < t->top_k && t->experts[r + ns] != MOE_NO_EXPERT; ns++)
            if (t->weights && !isnan(t->weights[r + ns])) wsum += t->weights[r + ns];
        double cum = 0, w0 = t->weights ? t->weights[r] : NAN;
        if (g->cfg->on_miss) {
            /* the rule the backend applies (core/on_miss.h); substitutes are computed, not served */
            x->substituted_slots += moe_on_miss_token(g->cfg->on_miss, t->experts + r, ns, c, base,
                                                      t->router_logits ? t->router_logits + (tok * g->L + l) * g->E : NULL,
                                                      g->E, g->onmiss);
            for (uint32_t k = 0; k < ns; k++) {
                uint16_t e = g->onmiss[k];
                if (g->lowbit && e == MOE_NO_EXPERT) e = t->experts[r + k]; /* missing: its low copy runs */
                else if (e == MOE_NO_EXPERT || e == t->experts[r + k]) continue;
                if (g->st_sub[e] != g->cur) g->st_sub[e] = g->cur, g->sub[g->n_sub++] = e, g->nt_sub[e] = 0;
                g->nt_sub[e]++;
            }
        }
        for (uint32_t k = 0; k < ns; k++) {
            uint16_t e = t->experts[r + k];
            float w = t->weights ? t->weights[r + k] : NAN;
            double wn = wsum > 0 && !isnan(w) ? w / wsum : 0;
            if (g->st_full[e] != g->cur) {
                g->st_full[e] = g->cur;
                g->full[nf++] = e;
                g->nt_full[e] = 0;
            }
            g->nt_full[e]++;
            int drop = 0, low = 0, need = -1;
            if (moe_skip_by_frac(g->skip_frac, k, w, w0)) drop = 1;
            if (!drop && g->dynamic && (need = moe_precision_hobbit_slot(&g->plan, cum)) < 0) drop = 1;
            if (!drop && moe_skip_by_cum(g->skip_cum, k, cum, moe_cache_resident(c, base + e))) drop = 1;
            if (!drop && g->cfg->on_miss && g->onmiss[k] != e) *(g->lowbit ? &low : &drop) = 1; /* missed */
            cum += wn;
            x->total_mass += wn;
            if (low) { /* served, by the low copy: not a token slot of the cache */
                x->lowbit_slots++;
                g->slot_kept[slot++] = MOE_NO_EXPERT;
                continue;
            }
            if (drop) {
                x->skipped_slots++;
                x->skipped_mass += wn;
                g->slot_kept[slot++] = MOE_NO_EXPERT;
                continue;
            }
            g->slot_kept[slot++] = e;
            if (g->st_kept[e] != g->cur) {
                g->st_kept[e] = g->cur;
                g->kept[nk++] = e;
                g->nt_kept[e] = 0;
                g->wmax[e] = w;
                g->need[e] = (uint8_t)(need >= 0 ? need : MOE_PREC_COUNT - 1);
            } else if (w > g->wmax[e] || isnan(g->wmax[e])) {
                g->wmax[e] = w;
            }
            /* the highest precision any token needs (lower enum = more bits) */
            if (need >= 0 && need < g->need[e]) g->need[e] = (uint8_t)need;
            g->nt_kept[e]++;
            if (counts) g->st_cnt[e] = g->cur;
        }
        memset(g->slot_counted + slot0, counts, slot - slot0);
    }
    g->n_slots = slot;
    sort_ids(g->full, nf);
    sort_ids(g->kept, nk);
    x->skipped_activations += nf - nk - (g->lowbit ? g->n_sub : 0);
    if (g->lowbit) x->lowbit_activations += g->n_sub;
    *n_full = nf;
    *n_kept = nk;
}

/* Step 4: observe, predict, insert the predicted experts, queue their reads. */
static void prefetch(eng *g, uint64_t s, uint32_t l, uint32_t n_full, moe_access a, uint32_t *nt_list) {
    moe_replay_ext *x = g->x;
    for (uint32_t i = 0; i < n_full; i++) nt_list[i] = g->nt_full[g->full[i]];
    g->pf->ops->observe(g->pf->st, s, l, g->full, nt_list, n_full);
    uint32_t lt = 0;
    uint32_t n = g->pf->ops->predict(g->pf->st, s, l, &lt, g->pred);
    g->n_cand = 0;
    if (!n || lt <= l || lt >= g->L) return;
    x->pf_predictions++;
    x->pf_predicted += n;
    g->pred_has[lt] = s + 1;
    moe_cache *ct = g->caches[g->global ? 0 : lt];
    uint32_t bt = g->global ? lt * g->E : 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t gk = (size_t)lt * g->E + g->pred[i];
        g->pred_stamp[gk] = s + 1;
        /* a byte cache admits by size: a predicted key keeps its residency
         * through the admission (they protect each other) */
        if (ct->byte_mode && !moe_cache_resident(ct, bt + g->pred[i]))
            moe_cache_set_key_bytes(ct, bt + g->pred[i], bytes_of(g, static_tier(g, gk)));
    }
    a.layer = lt;
    a.weight = NAN;
    uint64_t evicted = moe_cache_admit_prefetch(ct, bt, g->pred, n, g->global, &a, g->pf_status);
    if (g->step_counts) g->res->evictions += evicted; /* count_from: a step's prefetches count with it */
    for (uint32_t i = 0; i < n; i++) {
        size_t gk = (size_t)lt * g->E + g->pred[i];
        if (g->pf_status[i] <= 0) {
            x->pf_bypassed += g->pf_status[i] < 0;
            continue;
        }
        int prec = static_tier(g, gk);
        uint64_t b = bytes_of(g, prec);
        g->ready[gk] = moe_tl_read(&g->tl, b, g->tl.now, 1);
        g->rid[gk] = g->tl.last_id;
        x->tier_bytes_read[prec] += b;
        g->keyprec[gk] = (uint8_t)prec;
        g->pfstate[gk] = ST_PF_UNUSED;
        x->pf_issued++;
    }
    if (g->cfg->speculate && lt == l + 1) {
        memcpy(g->cand, g->pred, n * sizeof *g->cand);
        g->n_cand = n;
        g->cand_layer = lt;
    }
}

/* --on-miss substitute: the substitutes run on the lane with the kept
 * experts, as resident copies (their data as it stands; no access). A
 * substitute already kept for other tokens runs once, over more tokens.
 * lowbit: the missing experts' low copies, always in memory. Appends the
 * new ones to g->kept (re-sorted by id); returns how many. */
static uint32_t add_substitutes(eng *g, uint32_t l, uint32_t n_kept) {
    uint32_t n = n_kept;
    for (uint32_t i = 0; i < g->n_sub; i++) {
        uint16_t e = g->sub[i];
        size_t gk = (size_t)l * g->E + e;
        if (g->st_kept[e] == g->cur) {
            g->nt_kept[e] += g->nt_sub[e];
            continue;
        }
        g->st_kept[e] = g->cur;
        g->kept[n++] = e;
        g->nt_kept[e] = g->nt_sub[e];
        g->hit[e] = 1;
        g->pfhit[e] = 0;
        g->late_kind[e] = 0;
        g->prec_used[e] = g->lowbit ? (uint8_t)g->low_tier : g->keyprec[gk];
        g->rdy[e] = g->lowbit ? 0 : g->ready[gk];
        g->rid_e[e] = g->lowbit ? -1 : g->rid[gk];
    }
    sort_ids(g->kept, n);
    return n - n_kept;
}

/* Contended timeline: when expert e's data (of the current layer) arrives,
 * as estimated now. */
static double arrival(eng *g, uint16_t e) {
    return g->rid_e[e] >= 0 ? moe_tl_ready(&g->tl, g->rid_e[e]) : g->rdy[e];
}

/* Step 5: run the kept experts on the lane in order of arrival. */
static void compute_layer(eng *g, uint64_t s, uint32_t l, uint32_t n_kept, uint32_t T) {
    moe_replay_ext *x = g->x;
    /* settle the speculation made at layer l-1 */
    if (g->spec_step == s + 1 && g->spec_layer == l) {
        for (uint32_t j = 0; j < g->n_spec; j++) {
            uint16_t e = g->spec_e[j];
            if (g->st_kept[e] == g->cur) {
                x->spec_hits++;
                x->spec_hidden_s += g->spec_dt[j];
                g->spec_ok[e] = g->cur;
            } else {
                x->spec_wasted++;
                x->spec_wasted_s += g->spec_dt[j];
            }
        }
        g->spec_step = 0;
        g->n_spec = 0;
    }
    if (g->tl.contended) /* arrivals as estimated now */
        for (uint32_t i = 0; i < n_kept; i++) g->rdy[g->kept[i]] = arrival(g, g->kept[i]);
    memcpy(g->order, g->kept, n_kept * sizeof *g->order);
    for (uint32_t i = 1; i < n_kept; i++) { /* by arrival, ties by id (stable) */
        uint16_t v = g->order[i];
        uint32_t j = i;
        while (j && g->rdy[g->order[j - 1]] > g->rdy[v]) { g->order[j] = g->order[j - 1]; j--; }
        g->order[j] = v;
    }
    uint32_t ci = 0;
    for (uint32_t i = 0; i < n_kept; i++) {
        uint16_t e = g->order[i];
        if (g->spec_ok[e] == g->cur) continue; /* already run speculatively */
        if (g->tl.contended) g->rdy[e] = arrival(g, e); /* the lane computed since: re-estimate */
        if (g->rdy[e] > g->tl.now) {
            /* idle lane: speculate on the next layer's predicted experts */
            while (g->n_cand && g->tl.now < g->rdy[e] && ci < g->n_cand) {
                uint16_t ce = g->cand[ci++];
                uint32_t lc = g->cand_layer;
                moe_cache *cc = g->caches[g->global ? 0 : lc];
                uint32_t ckey = (g->global ? lc * g->E : 0) + ce;
                size_t cgk = (size_t)lc * g->E + ce;
                double cready = g->tl.contended ? moe_tl_ready(&g->tl, g->rid[cgk]) : g->ready[cgk];
                if (!moe_cache_resident(cc, ckey) || cready > g->tl.now) continue;
                double dt = moe_profile_expert_s(&g->dev, &g->model, g->keyprec[cgk], T);
                moe_tl_compute(&g->tl, dt, MOE_COMPUTE_SPECULATIVE);
                g->spec_e[g->n_spec] = ce;
                g->spec_dt[g->n_spec++] = dt;
                x->spec_executed++;
            }
            if (g->tl.contended) g->rdy[e] = arrival(g, e);
            double st = moe_tl_wait(&g->tl, g->rdy[e], g->late_kind[e] ? MOE_STALL_LATE_PREFETCH : MOE_STALL_MISS);
            if (st > 0 && g->pfhit[e]) x->pf_late++;
        }
        moe_tl_compute(&g->tl, moe_profile_expert_s(&g->dev, &g->model, g->prec_used[e], g->nt_kept[e]),
                       MOE_COMPUTE_EXPERT);
    }
    if (g->n_spec) {
        g->spec_step = s + 1;
        g->spec_layer = l + 1;
    }
    g->n_cand = 0;
}

/* --load-state: insert the saved experts, in file order, into the empty
 * caches (the normal eviction rule), their data there at time 0; the same
 * accesses the offloaded backend makes (backend/offload.c). */
static int load_state(eng *g, moe_error *err) {
    uint32_t *keys = NULL;
    size_t n = 0;
    if (moe_cache_state_load(g->cfg->load_state, g->L, g->E, &keys, &n, err)) return -1;
    moe_access a = {.next_use = MOE_NEVER, .weight = NAN};
    for (size_t i = 0; i < n; i++) {
        uint32_t l = keys[i] / g->E, e = keys[i] % g->E;
        moe_cache *c = g->caches[g->global ? 0 : l];
        a.layer = l;
        a.expert = e;
        moe_cache_begin_group(c);
        int64_t victim;
        if (c->byte_mode) moe_cache_set_key_bytes(c, g->global ? keys[i] : e, bytes_of(g, static_tier(g, keys[i])));
        if (moe_cache_insert(c, g->global ? keys[i] : e, &a, &victim) == 1) {
            g->keyprec[keys[i]] = (uint8_t)static_tier(g, keys[i]);
            g->ready[keys[i]] = 0;
            g->rid[keys[i]] = -1;
        }
    }
    free(keys);
    return 0;
}

static int save_state(const eng *g, moe_error *err) {
    size_t LE = (size_t)g->L * g->E;
    uint8_t *res = calloc(LE, 1);
    uint32_t *keys = malloc(LE * sizeof *keys);
    int rc = -1;
    if (!res || !keys) {
        moe_fail(err, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < g->n_caches; i++)
        for (uint32_t k = 0; k < g->caches[i]->n_keys; k++)
            if (moe_cache_resident(g->caches[i], k)) res[gkey(g, g->caches[i], k)] = 1;
    rc = moe_cache_state_save(g->cfg->save_state, g->L, g->E, keys, moe_cache_state_order(res, g->last_use, (uint32_t)LE, keys), err);
out:
    free(res);
    free(keys);
    return rc;
}

static int setup(eng *g, moe_error *err) {
    const moe_trace *t = g->t;
    const moe_replay_config *cfg = g->cfg;
    moe_replay_ext *x = g->x;
    /* the rules (bytes known, profiles that fit the trace, options that
     * go together) are checked by moe_replay_ext_check before this */
    if (cfg->model) {
        if (moe_model_profile_load(cfg->models_path ? cfg->models_path : MOE_MODELS_INI, cfg->model, &g->model, err) ||
            moe_model_profile_bind_trace(&g->model, t, err))
            return -1;
        g->have_bytes = 1;
    } else {
        g->have_bytes = moe_model_profile_from_trace(t, &g->model, NULL) == 0;
    }
    if (g->have_bytes) snprintf(x->model, sizeof x->model, "%s", g->model.canonical);
    memcpy(x->expert_bytes, g->model.expert_bytes, sizeof x->expert_bytes);
    if (cfg->device) {
        if (moe_replay_device(cfg, &g->dev, err))
            return -1;
        g->timing = x->timing = 1;
        snprintf(x->device, sizeof x->device, "%s", g->dev.canonical);
    }
    if (cfg->precision) {
        if (moe_precision_plan_new(cfg->precision, t, &g->plan, err)) return -1;
        g->dynamic = g->plan.dynamic;
        x->precision = 1;
        x->profile_oracle = g->plan.profile_oracle;
        snprintf(x->scheme, sizeof x->scheme, "%s", g->plan.canonical);
    }
    if (cfg->skip) {
        if (moe_skip_parse(cfg->skip, &g->skip_cum, &g->skip_frac, x->skip_spec, sizeof x->skip_spec, err))
            return -1;
        x->skip = 1;
    }
    if (moe_on_miss_mode(cfg->on_miss) == MOE_ON_MISS_LOWBIT) {
        g->lowbit = x->lowbit = 1;
        g->low_tier = moe_prec_of_bits(moe_on_miss_bits(cfg->on_miss));
    }
    return 0;
}

int moe_replay_engine_run(const moe_trace *t, const moe_replay_config *cfg, moe_replay_result *res,
                          moe_error *err) {
    memset(res, 0, sizeof *res);
    eng G = {0}, *g = &G;
    const uint32_t L = t->n_layers, E = t->n_experts;
    const size_t LE = (size_t)L * E;
    int rc = -1;
    if (moe_replay_ext_check(t, cfg, err) || moe_replay_policy_check(t, cfg, err)) return -1;
    if (moe_replay_caches_new(t, cfg, &g->caches, &g->n_caches, err)) return -1;
    g->t = t;
    g->cfg = cfg;
    g->res = res;
    g->L = L;
    g->E = E;
    g->global = cfg->scope == MOE_SCOPE_GLOBAL;
    moe_replay_ext *x = g->x = res->ext = calloc(1, sizeof *x);
    uint64_t max_tok = 0, n_dec = 0;
    for (uint64_t s = 0; s < t->n_steps; s++) {
        uint64_t n = t->step_first_token[s + 1] - t->step_first_token[s];
        if (n > max_tok) max_tok = n;
        n_dec += t->step_phase[s] == MOE_PHASE_DECODE;
    }
    g->ready = calloc(LE, sizeof *g->ready);
    g->rid = malloc(LE * sizeof *g->rid);
    g->rid_e = malloc(E * sizeof *g->rid_e);
    g->keyprec = calloc(LE, 1);
    g->pfstate = calloc(LE, 1);
    g->seen = calloc(LE, 1);
    g->pred_stamp = calloc(LE, sizeof *g->pred_stamp);
    g->pred_has = calloc(L, sizeof *g->pred_has);
    g->st_full = calloc(E, sizeof(uint32_t));
    g->st_kept = calloc(E, sizeof(uint32_t));
    g->spec_ok = calloc(E, sizeof(uint32_t));
    g->full = malloc(E * sizeof(uint16_t));
    g->kept = malloc(E * sizeof(uint16_t));
    g->order = malloc(E * sizeof(uint16_t));
    g->pred = malloc(E * sizeof(uint16_t));
    g->pf_status = malloc(E);
    g->cand = malloc(E * sizeof(uint16_t));
    g->spec_e = malloc(E * sizeof(uint16_t));
    g->spec_dt = malloc(E * sizeof(double));
    g->nt_full = calloc(E, sizeof(uint32_t));
    g->nt_kept = calloc(E, sizeof(uint32_t));
    g->sub = malloc(E * sizeof(uint16_t));
    g->onmiss = malloc((t->top_k + 1) * sizeof(uint16_t));
    g->st_sub = calloc(E, sizeof(uint32_t));
    g->nt_sub = calloc(E, sizeof(uint32_t));
    uint32_t *nt_list = calloc(E, sizeof(uint32_t));
    g->need = calloc(E, 1);
    g->prec_used = calloc(E, 1);
    g->hit = calloc(E, 1);
    g->pfhit = calloc(E, 1);
    g->late_kind = calloc(E, 1);
    g->wmax = calloc(E, sizeof(float));
    g->rdy = calloc(E, sizeof(double));
    g->slot_kept = malloc((max_tok * t->top_k + 1) * sizeof(uint16_t));
    g->slot_counted = malloc(max_tok * t->top_k + 1);
    g->st_cnt = calloc(E, sizeof(uint32_t));
    g->dur = malloc((n_dec + 1) * sizeof(double));
    g->last_use = calloc(LE, sizeof *g->last_use);
    int res_ok = moe_replay_result_alloc(res, t, cfg->curve_windows) == 0;
    if (!x || !g->ready || !g->rid || !g->rid_e || !g->keyprec || !g->pfstate || !g->seen || !g->pred_stamp ||
        !g->pred_has || !g->st_full || !g->st_kept || !g->spec_ok || !g->full || !g->kept || !g->order ||
        !g->pred || !g->pf_status || !g->cand || !g->spec_e || !g->spec_dt || !g->nt_full || !g->nt_kept || !nt_list ||
        !g->need || !g->prec_used || !g->hit || !g->pfhit || !g->late_kind || !g->wmax || !g->rdy ||
        !g->slot_kept || !g->slot_counted || !g->st_cnt || !g->dur || !g->last_use || !g->sub || !g->onmiss || !g->st_sub || !g->nt_sub || !res_ok) {
        moe_fail(err, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < LE; i++) g->rid[i] = -1;
    if (setup(g, err)) goto out;
    if (g->timing && !(x->step_s = calloc(t->n_steps ? t->n_steps : 1, sizeof *x->step_s))) {
        moe_fail(err, "out of memory");
        goto out;
    }
    if (moe_tl_init(&g->tl, g->timing ? g->dev.io_channels : 1, g->timing ? g->dev.io_latency_s : 0,
                    g->timing ? g->dev.io_bandwidth_Bps : INFINITY, err))
        goto out;
    if (g->timing) moe_tl_set_wake(&g->tl, g->dev.io_wake_s, g->dev.io_resume_s);
    if (g->timing && g->dev.io_busy_bandwidth_Bps > 0 &&
        moe_tl_set_contention(&g->tl, g->dev.io_busy_latency_s, g->dev.io_busy_bandwidth_Bps, err))
        goto out;
    uint64_t dense_b;
    if (cfg->stream_dense && (moe_dense_stream_bytes(cfg, cfg->model ? &g->model : NULL, L, &dense_b, err) ||
                              moe_dense_stream_init(&g->ds, cfg->stream_dense, L, dense_b, err)))
        goto out;
    for (uint32_t i = 0; i < g->n_caches; i++) moe_cache_set_evict_hook(g->caches[i], on_evict, g);
    snprintf(res->policy, sizeof res->policy, "%s", g->caches[0]->canonical);
    /* precision footprint and byte capacity */
    double all_bytes = 0, bits_sum = 0;
    for (size_t gk = 0; gk < LE; gk++) {
        int p = static_tier(g, gk);
        x->tier_experts[p]++;
        x->tier_model_bytes[p] += bytes_of(g, p);
        all_bytes += (double)bytes_of(g, p);
        bits_sum += moe_prec_bits[p];
    }
    x->eff_bits_model = g->dynamic || !LE ? 0 : bits_sum / (double)LE;
    if (cfg->capacity_bytes || cfg->capacity_frac > 0) {
        uint64_t total = cfg->capacity_bytes ? cfg->capacity_bytes : (uint64_t)floor(cfg->capacity_frac * all_bytes);
        uint64_t each = g->global ? total : total / L;
        x->byte_capacity = 1;
        x->capacity_bytes = g->global ? total : each * L;
        for (uint32_t i = 0; i < g->n_caches; i++) {
            moe_cache *c = g->caches[i];
            if (moe_cache_set_byte_budget(c, each, err)) goto out;
            for (uint32_t k = 0; k < c->n_keys; k++) moe_cache_set_key_bytes(c, k, bytes_of(g, static_tier(g, gkey(g, c, k))));
        }
    }
    if (cfg->prefetch) {
        moe_prefetch_env penv = {t, L, E, t->top_k, cfg->seed};
        if (!(g->pf = moe_prefetcher_new(cfg->prefetch, &penv, err))) goto out;
        x->prefetch = 1;
        snprintf(x->prefetcher, sizeof x->prefetcher, "%s", g->pf->canonical);
    }
    x->speculate = cfg->speculate != 0;

    if (cfg->load_state && load_state(g, err)) goto out;
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    uint64_t time = 0, nd = 0, n_served = 0; /* n_served: activations served, counted or not */
    double seq_start = 0, ttft_sum = 0, bits_active = 0;
    int ttft_done = 1;
    moe_access a = {.next_use = MOE_NEVER};
    for (uint64_t s = 0; s < t->n_steps; s++) {
        uint64_t t0 = t->step_first_token[s], t1 = t->step_first_token[s + 1];
        uint32_t T = (uint32_t)(t1 - t0);
        int seq_change = s > 0 && t->token_seq[t0] != t->token_seq[t->step_first_token[s - 1]];
        if (cfg->cold_per_seq && seq_change) {
            flush_unused(g);
            for (uint32_t i = 0; i < g->n_caches; i++)
                if (moe_cache_reset(g->caches[i], err)) goto out;
            memset(g->seen, 0, LE);
            memset(g->pfstate, 0, LE);
            res->restarts++;
        }
        for (uint32_t i = 0; i < g->n_caches; i++)
            if (g->caches[i]->ops->on_step) g->caches[i]->ops->on_step(g->caches[i]->st, s);
        if (s == 0 || seq_change) {
            seq_start = g->tl.now;
            ttft_done = 0;
            x->n_seqs++;
        }
        double step_start = g->tl.now;
        double ctx = 0; /* keys the step's tokens attend to (only calibrated profiles price them) */
        if (g->dev.measured_compute)
            for (uint64_t tok = t0; tok < t1; tok++) ctx += (double)t->token_pos[tok] + 1;
        a.step = s;
        for (uint32_t l = 0; l < L; l++) {
            moe_cache *c = g->caches[g->global ? 0 : l];
            uint32_t base = g->global ? l * E : 0;
            if (g->ds.budget) moe_dense_stream_wait(&g->ds, &g->tl, s, l);
            if (g->timing) moe_tl_compute(&g->tl, moe_profile_dense_s(&g->dev, &g->model, T, ctx), MOE_COMPUTE_DENSE);
            uint32_t n_full, n_kept;
            gather(g, s, l, c, base, &n_full, &n_kept);
            /* prefetch accuracy against the router's full set */
            if (g->pred_has[l] == s + 1) {
                const uint64_t *ps = g->pred_stamp + (size_t)l * E;
                x->pf_actual += n_full;
                for (uint32_t i = 0; i < n_full; i++) x->pf_correct += ps[g->full[i]] == s + 1;
                for (uint64_t tok = t0; tok < t1; tok++) {
                    size_t r = moe_trace_rec(t, tok, l);
                    for (uint32_t k = 0; k < t->top_k && t->experts[r + k] != MOE_NO_EXPERT; k++) {
                        x->pf_slots++;
                        x->pf_slot_correct += ps[t->experts[r + k]] == s + 1;
                    }
                }
            }
            /* step 3: serve the kept set */
            moe_cache_begin_group(c);
            for (uint32_t i = 0; i < n_kept; i++) moe_cache_protect(c, base + g->kept[i]);
            /* substitutes too: a global cache's prefetch must not evict one before it runs
             * (low copies are not in the cache) */
            for (uint32_t i = 0; i < g->n_sub && !g->lowbit; i++) moe_cache_protect(c, base + g->sub[i]);
            uint64_t hits = 0, n_counted = 0;
            a.layer = l;
            for (uint32_t i = 0; i < n_kept; i++) {
                uint32_t e = g->kept[i], key = base + e;
                size_t gk = (size_t)l * E + e;
                int cw = g->st_cnt[e] == g->cur; /* count_from: a counted token kept it */
                n_counted += (uint64_t)cw;
                a.time = time++;
                a.expert = e;
                a.weight = g->wmax[e];
                int prec = g->dynamic ? g->need[e] : static_tier(g, gk);
                if (c->byte_mode && !moe_cache_resident(c, key)) moe_cache_set_key_bytes(c, key, bytes_of(g, prec));
                int64_t victim;
                enum moe_access_result r = moe_cache_access(c, key, &a, &victim);
                if (cw) res->evictions += c->last_evictions;
                if (cfg->save_state) g->last_use[gk] = a.time + 1;
                g->pfhit[e] = 0;
                g->late_kind[e] = 0;
                if (r == MOE_HIT) {
                    hits += (uint64_t)cw;
                    g->hit[e] = 1;
                    g->prec_used[e] = g->keyprec[gk];
                    g->rdy[e] = g->ready[gk];
                    g->rid_e[e] = g->rid[gk];
                    if (g->pfstate[gk] == ST_PF_UNUSED) {
                        x->pf_useful++;
                        g->pfhit[e] = 1;
                        g->late_kind[e] = 1;
                    }
                } else {
                    g->hit[e] = 0;
                    if (!g->seen[gk] && cw) res->compulsory_misses++;
                    if (g->pfstate[gk] == ST_PF_EVICTED) x->collision_misses++;
                    g->prec_used[e] = (uint8_t)prec;
                    uint64_t b = bytes_of(g, prec);
                    g->rdy[e] = moe_tl_read(&g->tl, b, g->tl.now, 0);
                    g->rid_e[e] = g->tl.last_id;
                    x->tier_bytes_read[prec] += b;
                    if (r == MOE_MISS_INSERTED) {
                        g->ready[gk] = g->rdy[e];
                        g->rid[gk] = g->rid_e[e];
                        g->keyprec[gk] = (uint8_t)prec;
                    } else {
                        res->bypasses += (uint64_t)cw;
                    }
                }
                g->pfstate[gk] = ST_NONE;
                g->seen[gk] = 1;
                x->tier_activations[g->prec_used[e]]++;
                bits_active += moe_prec_bits[g->prec_used[e]];
            }
            n_served += n_kept;
            res->accesses += n_counted;
            res->hits += hits;
            res->layer_accesses[l] += n_counted;
            res->layer_hits[l] += hits;
            moe_replay_count_step(res, s, n_counted, hits);
            /* token slots: the kept ones (skipped slots are reported apart) */
            for (size_t k = 0; k < g->n_slots; k++) {
                uint16_t e = g->slot_kept[k];
                if (e != MOE_NO_EXPERT && g->slot_counted[k]) {
                    res->token_slots++;
                    res->token_slot_hits += g->hit[e];
                }
            }
            if (g->ds.budget) moe_dense_stream_ahead(&g->ds, &g->tl, s, l); /* behind the demand reads */
            if (g->pf) prefetch(g, s, l, n_full, a, nt_list);
            if (g->timing) compute_layer(g, s, l, n_kept + add_substitutes(g, l, n_kept), T);
        }
        if (g->timing) moe_tl_compute(&g->tl, moe_profile_head_s(&g->dev, &g->model, T), MOE_COMPUTE_DENSE);
        double dur = g->tl.now - step_start;
        if (x->step_s) x->step_s[s] = dur;
        if (t->step_phase[s] == MOE_PHASE_DECODE) {
            g->dur[nd++] = dur;
            x->decode_tokens += T;
        }
        x->tokens += T;
        if (!ttft_done) {
            int more_prefill = t->step_phase[s] == MOE_PHASE_PREFILL && s + 1 < t->n_steps &&
                               t->step_phase[s + 1] == MOE_PHASE_PREFILL &&
                               t->token_seq[t->step_first_token[s + 1]] == t->token_seq[t0];
            if (!more_prefill) {
                ttft_sum += g->tl.now - seq_start;
                ttft_done = 1;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &w1);
    res->seconds = (double)(w1.tv_sec - w0.tv_sec) + 1e-9 * (double)(w1.tv_nsec - w0.tv_nsec);
    flush_unused(g);
    if (cfg->save_state && save_state(g, err)) goto out;

    /* summaries */
    x->pf_precision = x->pf_predicted ? (double)x->pf_correct / (double)x->pf_predicted : 0;
    x->pf_recall = x->pf_actual ? (double)x->pf_correct / (double)x->pf_actual : 0;
    x->pf_recall_k = x->pf_slots ? (double)x->pf_slot_correct / (double)x->pf_slots : 0;
    x->skipped_mass_frac = x->total_mass > 0 ? x->skipped_mass / x->total_mass : 0;
    x->eff_bits_active = n_served ? bits_active / (double)n_served : 0;
    x->bytes_read = g->tl.bytes_kind[0] + g->tl.bytes_kind[1]; /* experts; dense blocks apart */
    x->stream_dense = g->ds.budget;
    x->dense_bytes = g->ds.bytes;
    x->bytes_dense = g->tl.bytes_kind[MOE_STALL_DENSE];
    x->reads_dense = g->tl.reads_kind[MOE_STALL_DENSE];
    x->bytes_demand = g->tl.bytes_kind[0];
    x->bytes_prefetch = g->tl.bytes_kind[1];
    x->reads_demand = g->tl.reads_kind[0];
    x->reads_prefetch = g->tl.reads_kind[1];
    x->decode_steps = nd;
    if (g->timing) {
        x->total_s = g->tl.now;
        x->dense_s = g->tl.compute_s[MOE_COMPUTE_DENSE];
        x->expert_s = g->tl.compute_s[MOE_COMPUTE_EXPERT];
        x->spec_compute_s = g->tl.compute_s[MOE_COMPUTE_SPECULATIVE];
        x->compute_s = x->dense_s + x->expert_s + x->spec_compute_s;
        x->stall_miss_s = g->tl.stall_s[MOE_STALL_MISS];
        x->stall_late_s = g->tl.stall_s[MOE_STALL_LATE_PREFETCH];
        x->stall_s = x->stall_miss_s + x->stall_late_s;
        x->stall_dense_s = g->tl.stall_s[MOE_STALL_DENSE];
        moe_tl_settle(&g->tl);
        x->io_util = moe_tl_io_utilisation(&g->tl, g->tl.now);
        x->ttft_mean_s = x->n_seqs ? ttft_sum / (double)x->n_seqs : 0;
        moe_time_stats ts = moe_time_stats_of(g->dur, nd);
        x->tpot_mean_s = ts.mean;
        x->tpot_p50_s = ts.p50;
        x->tpot_p99_s = ts.p99;
        x->tok_s = nd && ts.sum > 0 ? (double)x->decode_tokens / ts.sum
                 : x->total_s > 0 ? (double)x->tokens / x->total_s : 0;
    }
    rc = 0;
out:
    moe_replay_caches_free(g->caches, g->n_caches);
    moe_prefetcher_free(g->pf);
    moe_precision_plan_free(&g->plan);
    moe_tl_free(&g->tl);
    moe_dense_stream_free(&g->ds);
    free(g->ready); free(g->rid); free(g->rid_e); free(g->keyprec); free(g->pfstate); free(g->seen); free(g->pred_stamp);
    free(g->pred_has); free(g->st_full); free(g->st_kept); free(g->spec_ok); free(g->full);
    free(g->kept); free(g->order); free(g->pred); free(g->pf_status); free(g->cand); free(g->spec_e); free(g->spec_dt);
    free(g->sub); free(g->onmiss); free(g->st_sub); free(g->nt_sub);
    free(g->nt_full); free(g->nt_kept); free(nt_list); free(g->need); free(g->prec_used); free(g->hit);
    free(g->pfhit); free(g->late_kind); free(g->wmax); free(g->rdy); free(g->slot_kept); free(g->dur);
    free(g->slot_counted); free(g->st_cnt);
    free(g->last_use);
    if (rc) moe_replay_result_free(res);
    return rc;
}
