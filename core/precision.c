/* precision.c: precision schemes (see precision.h). */
#include "precision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_profile.h"
#include "params.h"

enum { S_UNIFORM, S_MLX, S_HOTCOLD, S_HOBBIT };

typedef struct scheme {
    const char *name;
    moe_param params[4];
    size_t n;
} scheme;

static int lookup(const char *spec, scheme *out, char *canonical, size_t cap, moe_error *err) {
    static const scheme schemes[] = {
        {"uniform", {{"bits", MOE_PARAM_INT, "16", 2, 32, "bits of every expert", 0, 0, ""}}, 1},
        {"mlx-tiers", {{"profile", MOE_PARAM_STRING, "oracle", 0, 0, "oracle or a trace path", 0, 0, ""}}, 1},
        {"hot-cold",
         {{"hot", MOE_PARAM_INT, "4", 0, 65535, "hot experts per layer", 0, 0, ""},
          {"hot_bits", MOE_PARAM_INT, "4", 2, 32, "bits of hot experts", 0, 0, ""},
          {"cold_bits", MOE_PARAM_INT, "2", 2, 32, "bits of cold experts", 0, 0, ""},
          {"profile", MOE_PARAM_STRING, "oracle", 0, 0, "oracle or a trace path", 0, 0, ""}},
         4},
        {"hobbit",
         {{"hi", MOE_PARAM_DOUBLE, "0.6", 0, 1, "cumulative weight below which high precision", 0, 0, ""},
          {"lo", MOE_PARAM_DOUBLE, "0.9", 0, 1, "cumulative weight below which low precision", 0, 0, ""},
          {"high_bits", MOE_PARAM_INT, "16", 2, 32, "bits of the high tier", 0, 0, ""},
          {"low_bits", MOE_PARAM_INT, "4", 2, 32, "bits of the low tier", 0, 0, ""}},
         4},
    };
    char name[64];
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (!len || len >= sizeof name) return moe_fail(err, "bad precision scheme '%s'", spec);
    memcpy(name, spec, len);
    name[len] = 0;
    for (int i = 0; i < 4; i++)
        if (!strcmp(schemes[i].name, name)) {
            *out = schemes[i];
            if (moe_params_parse(name, colon ? colon + 1 : "", out->params, out->n, canonical, cap, err))
                return -1;
            for (size_t j = 0; j < out->n; j++)
                if (strstr(out->params[j].key, "bits") && moe_prec_of_bits(out->params[j].i) < 0)
                    return moe_fail(err, "%s: %s=%lld is not a tier (32, 16, 8, 4, 3, 2)", name,
                                    out->params[j].key, out->params[j].i);
            if (i == S_HOBBIT && out->params[0].d > out->params[1].d)
                return moe_fail(err, "hobbit: hi=%g > lo=%g", out->params[0].d, out->params[1].d);
            return i;
        }
    return moe_fail(err, "unknown precision scheme '%s' (known: uniform, mlx-tiers, hot-cold, hobbit)", name);
}

int moe_precision_canonical(const char *spec, char *canonical, size_t cap, moe_error *err) {
    scheme s;
    return lookup(spec, &s, canonical, cap, err) < 0 ? -1 : 0;
}

int moe_precision_is_dynamic(const char *spec) {
    scheme s;
    char c[512];
    return spec && lookup(spec, &s, c, sizeof c, NULL) == S_HOBBIT;
}

int moe_precision_uniform_tier(const char *spec) {
    scheme s;
    char c[512];
    return spec && lookup(spec, &s, c, sizeof c, NULL) == S_UNIFORM ? moe_prec_of_bits(s.params[0].i) : -1;
}

int moe_precision_frequency(const moe_trace *t, double *freq, moe_error *err) {
    (void)err;
    size_t m = (size_t)t->n_layers * t->n_experts;
    memset(freq, 0, m * sizeof *freq);
    for (uint64_t tok = 0; tok < t->n_tokens; tok++)
        for (uint32_t l = 0; l < t->n_layers; l++) {
            size_t r = moe_trace_rec(t, tok, l);
            for (uint32_t k = 0; k < t->top_k && t->experts[r + k] != MOE_NO_EXPERT; k++)
                freq[(size_t)l * t->n_experts + t->experts[r + k]] += 1;
        }
    for (size_t i = 0; i < m; i++) freq[i] = t->n_tokens ? freq[i] / (double)t->n_tokens : 0;
    return 0;
}

int moe_precision_mlx_tier(double f) {
    /* MLX-Flash thresholds, fraction of tokens: >15% FP16, 8-15% Q8, 5-8% Q4,
     * 2-5% Q3, <2% Q2; a value on a boundary takes the higher tier. */
    return f > 0.15 ? MOE_PREC_F16 : f >= 0.08 ? MOE_PREC_Q8 : f >= 0.05 ? MOE_PREC_Q4
         : f >= 0.02 ? MOE_PREC_Q3 : MOE_PREC_Q2;
}

static int profile(const char *src, const moe_trace *t, double *freq, int *oracle, moe_error *err) {
    if (!strcmp(src, "oracle")) {
        *oracle = 1;
        return moe_precision_frequency(t, freq, err);
    }
    *oracle = 0;
    moe_trace *p = moe_trace_load(src, err);
    if (!p) return moe_fail_prefix(err, "precision profile");
    int rc = 0;
    if (p->n_layers != t->n_layers || p->n_experts != t->n_experts)
        rc = moe_fail(err, "precision profile %s has %u layers x %u experts, the trace %u x %u", src,
                      p->n_layers, p->n_experts, t->n_layers, t->n_experts);
    else rc = moe_precision_frequency(p, freq, err);
    moe_trace_free(p);
    return rc;
}

int moe_precision_plan_new(const char *spec, const moe_trace *t, moe_precision_plan *out, moe_error *err) {
    memset(out, 0, sizeof *out);
    scheme s;
    int kind = lookup(spec, &s, out->canonical, sizeof out->canonical, err);
    if (kind < 0) return -1;
    uint32_t L = t->n_layers, E = t->n_experts;
    size_t m = (size_t)L * E;
    out->n_layers = L;
    out->n_experts = E;
    out->tier = malloc(m ? m : 1);
    double *freq = kind == S_MLX || kind == S_HOTCOLD ? malloc(m * sizeof *freq) : NULL;
    if (!out->tier || ((kind == S_MLX || kind == S_HOTCOLD) && !freq)) {
        free(freq);
        moe_precision_plan_free(out);
        return moe_fail(err, "out of memory");
    }
    int rc = 0;
    switch (kind) {
    case S_UNIFORM:
        memset(out->tier, moe_prec_of_bits(s.params[0].i), m);
        break;
    case S_MLX:
        if ((rc = profile(s.params[0].s, t, freq, &out->profile_oracle, err))) break;
        for (size_t i = 0; i < m; i++) out->tier[i] = (uint8_t)moe_precision_mlx_tier(freq[i]);
        break;
    case S_HOTCOLD: {
        if ((rc = profile(s.params[3].s, t, freq, &out->profile_oracle, err))) break;
        int hot = moe_prec_of_bits(s.params[1].i), cold = moe_prec_of_bits(s.params[2].i);
        uint32_t n_hot = (uint32_t)s.params[0].i;
        for (uint32_t l = 0; l < L; l++) {
            const double *f = freq + (size_t)l * E;
            for (uint32_t e = 0; e < E; e++) {
                out->tier[(size_t)l * E + e] = (uint8_t)(moe_precision_rank(f, E, e) < n_hot ? hot : cold);
            }
        }
        break;
    }
    case S_HOBBIT:
        out->dynamic = 1;
        out->hi = s.params[0].d;
        out->lo = s.params[1].d;
        out->high = moe_prec_of_bits(s.params[2].i);
        out->low = moe_prec_of_bits(s.params[3].i);
        memset(out->tier, out->high, m);
        break;
    }
    free(freq);
    if (rc) moe_precision_plan_free(out);
    return rc;
}

void moe_precision_plan_free(moe_precision_plan *p) {
    free(p->tier);
    p->tier = NULL;
}
