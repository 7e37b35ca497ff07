/* replay_check.c: the rules a replay enforces before it starts (see
 * replay_check.h). */
#include "replay_check.h"

#include <stdio.h>
#include <string.h>

#include "../core/device_profile.h"
#include "../core/on_miss.h"
#include "../core/policy.h"
#include "../core/precision.h"
#include "../core/prefetch.h"
#include "../core/split.h"
#include "dense_stream.h"
#include "replay_opts.h"

static const moe_policy_ops *policy_of(const char *spec, char *name, size_t cap) {
    size_t nl = strcspn(spec ? spec : "", ":");
    snprintf(name, cap, "%.*s", (int)(nl < cap ? nl : cap - 1), spec ? spec : "");
    return moe_policy_find(name);
}

int moe_replay_policy_check(const moe_trace *t, const moe_replay_config *cfg, moe_error *err) {
    char name[64];
    const moe_policy_ops *ops = policy_of(cfg->policy, name, sizeof name);
    if (!ops) return 0; /* an unknown name is the policy parser's error, with the list of known ones */
    if (t->keys && (ops->flags & MOE_POLICY_NEEDS_ROUTING))
        return moe_fail(err, "policy %s reads a trace's routing; a key sequence has none", name);
    if (!t->keys && moe_replay_config_is_ext(cfg) && (ops->flags & MOE_POLICY_NEEDS_FUTURE))
        return moe_fail(err, "policy %s needs the future (next use), which the extended replay (prefetch, "
                             "precision, skip, timing, byte capacities) does not compute yet", name);
    return 0;
}

/* Global keys are l * E + e in uint32 (trace.h: MOE_MAX_KEYS). Traces that
 * pass moe_trace_validate() always fit; this guards hand-built ones. */
static int global_fits(const moe_trace *t, const moe_replay_config *cfg, moe_error *err) {
    uint64_t keys = (uint64_t)t->n_layers * t->n_experts;
    if (cfg->scope == MOE_SCOPE_GLOBAL && keys > MOE_MAX_KEYS)
        return moe_fail(err, "--scope global: %u layers x %u experts = %llu keys do not fit the key space (%llu); "
                        "use --scope per-layer", t->n_layers, t->n_experts, (unsigned long long)keys,
                        (unsigned long long)MOE_MAX_KEYS);
    return 0;
}

int moe_replay_keys_check(const moe_trace *t, const moe_replay_config *cfg, moe_error *err) {
    (void)t;
    if (moe_replay_config_is_ext(cfg))
        return moe_fail(err, "a key sequence takes eviction policies and capacities in keys only (no prefetch, "
                        "speculation, skip, precision, device, byte capacity or cache state)");
    if (!moe_split_is_uniform(cfg->split))
        return moe_fail(err, "--split %s: a key sequence has one key space, no layers to split among", cfg->split);
    if (cfg->count_from)
        return moe_fail(err, "--count-from counts tokens from a position in their sequence; a key sequence has none");
    return 0;
}

int moe_replay_plain_check(const moe_trace *t, const moe_replay_config *cfg, moe_error *err) {
    if (global_fits(t, cfg, err)) return -1;
    if (!moe_split_is_uniform(cfg->split) && cfg->scope == MOE_SCOPE_GLOBAL)
        return moe_fail(err, "--split %s: only per-layer scope has per-layer capacities", cfg->split);
    return 0;
}

int moe_replay_ext_check(const moe_trace *t, const moe_replay_config *cfg, moe_error *err) {
    if (global_fits(t, cfg, err)) return -1;
    /* model geometry and bytes: from the profile (which must fit the trace) or the trace header */
    moe_model_profile m;
    int have_bytes;
    if (cfg->model) {
        if (moe_model_profile_load(cfg->models_path ? cfg->models_path : MOE_MODELS_INI, cfg->model, &m, err) ||
            moe_model_profile_bind_trace(&m, t, err))
            return -1;
        have_bytes = 1;
    } else {
        have_bytes = moe_model_profile_from_trace(t, &m, NULL) == 0;
    }
    if (!have_bytes && (cfg->device || cfg->precision || cfg->capacity_bytes || cfg->capacity_frac > 0))
        return moe_fail(err, "%s needs bytes per expert: give --model NAME (a section of %s) or a trace "
                             "whose header has them",
                        cfg->device ? "--device" : cfg->precision ? "--precision" : "a byte capacity",
                        cfg->models_path ? cfg->models_path : MOE_MODELS_INI);
    if (cfg->device) {
        moe_device_profile d;
        if (moe_replay_device(cfg, &d, err))
            return -1;
        if (d.measured_compute && strcmp(d.model, t->model))
            return moe_fail(err, "device %s: its compute terms were measured with model %s, the trace is of %s "
                                 "(calibrate with --model for that model)", d.name, d.model,
                            t->model[0] ? t->model : "an unnamed model");
    }
    int dynamic = moe_precision_is_dynamic(cfg->precision);
    if (cfg->on_miss && (cfg->skip || dynamic))
        return moe_fail(err, "--on-miss %s cannot be combined with %s: both decide what a slot runs",
                        moe_on_miss_name(cfg->on_miss), cfg->skip ? "--skip" : "--precision hobbit");
    if (moe_on_miss_mode(cfg->on_miss) == MOE_ON_MISS_LOWBIT && !moe_on_miss_bits(cfg->on_miss))
        return moe_fail(err, "--on-miss lowbit: give the low copy's precision, lowbit:bits=B (8, 4, 3 or 2): the "
                             "replay prices its compute (an offloaded run reads B from its packs)");
    if (cfg->on_miss == MOE_ON_MISS_SUBSTITUTE && !t->router_logits)
        return moe_fail(err, "--on-miss substitute picks the resident expert the router scores highest: the trace "
                             "has no router logits (capture with `moesim infer --router-logits`)");
    if ((cfg->skip || dynamic) && !t->weights)
        return moe_fail(err, "%s needs gate weights, and the trace has none", cfg->skip ? "--skip" : "--precision hobbit");
    if (cfg->speculate) {
        if (!cfg->prefetch) return moe_fail(err, "--speculate needs a prefetcher (--prefetch) to say what to run");
        if (!cfg->device) return moe_fail(err, "--speculate needs --device (it only fills I/O stalls)");
        uint32_t ahead;
        if (moe_prefetch_ahead(cfg->prefetch, &ahead, err)) return -1;
        if (ahead != 1) return moe_fail(err, "--speculate needs a prefetcher predicting one layer ahead (%s)", cfg->prefetch);
    }
    if (!moe_split_is_uniform(cfg->split) &&
        (cfg->scope == MOE_SCOPE_GLOBAL || cfg->capacity_bytes || cfg->capacity_frac > 0))
        return moe_fail(err, "--split %s: needs per-layer scope and a capacity in experts", cfg->split);
    uint64_t dense_b;
    if (cfg->stream_dense && moe_dense_stream_bytes(cfg, cfg->model ? &m : NULL, t->n_layers, &dense_b, err)) return -1;
    return 0;
}

int moe_replay_check(const moe_trace *t, const moe_replay_config *cfg, moe_error *err) {
    if (moe_replay_config_check(cfg, err) || moe_replay_policy_check(t, cfg, err)) return -1;
    if (t->keys) return moe_replay_keys_check(t, cfg, err);
    return moe_replay_config_is_ext(cfg) ? moe_replay_ext_check(t, cfg, err) : moe_replay_plain_check(t, cfg, err);
}
