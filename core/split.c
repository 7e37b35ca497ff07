/* split.c: per-layer capacity splits (see split.h). */
#include "split.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mrc.h"
#include "params.h"

enum { SPLIT_UNIFORM, SPLIT_ADAPMOE, SPLIT_FATE };

typedef struct split_spec {
    int kind;
    char profile[256];
    double shallow;
} split_spec;

static int parse(const char *spec, split_spec *out, char *canonical, size_t cap, moe_error *err) {
    char name[32];
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    const char *args = colon ? colon + 1 : "";
    if (len == 0 || len >= sizeof name) return moe_fail(err, "--split: bad value '%s'", spec);
    memcpy(name, spec, len);
    name[len] = 0;
    memset(out, 0, sizeof *out);
    if (!strcmp(name, "uniform")) {
        out->kind = SPLIT_UNIFORM;
        return moe_params_parse("uniform", args, NULL, 0, canonical, cap, err);
    }
    if (!strcmp(name, "adapmoe")) {
        moe_param p[] = {{.key = "profile", .type = MOE_PARAM_STRING, .default_value = "oracle",
                          .help = "hit curves from: oracle (the replayed trace) or a trace path"}};
        if (moe_params_parse("adapmoe", args, p, 1, canonical, cap, err)) return -1;
        out->kind = SPLIT_ADAPMOE;
        snprintf(out->profile, sizeof out->profile, "%s", p[0].s);
        return 0;
    }
    if (!strcmp(name, "fate")) {
        moe_param p[] = {{.key = "shallow", .type = MOE_PARAM_DOUBLE, .default_value = "1.5", .min = 1, .max = 1000,
                          .help = "weight of the shallowest layer over the deepest"}};
        if (moe_params_parse("fate", args, p, 1, canonical, cap, err)) return -1;
        out->kind = SPLIT_FATE;
        out->shallow = p[0].d;
        return 0;
    }
    return moe_fail(err, "--split: unknown split '%s' (uniform, adapmoe[:profile=oracle|PATH], fate[:shallow=S])", name);
}

int moe_split_canonical(const char *spec, char *canonical, size_t cap, moe_error *err) {
    split_spec s;
    return parse(spec, &s, canonical, cap, err);
}

int moe_split_is_uniform(const char *spec) {
    if (!spec) return 1;
    split_spec s;
    char c[512];
    moe_error err;
    return parse(spec, &s, c, sizeof c, &err) == 0 && s.kind == SPLIT_UNIFORM;
}

uint64_t moe_split_dp(const uint64_t *hits, uint32_t L, uint32_t E, uint64_t budget, uint32_t *caps) {
    uint64_t B = budget < (uint64_t)L * E ? budget : (uint64_t)L * E;
    size_t W = (size_t)B + 1;
    /* best[b] = most hits of layers 0..l-1 with exactly b experts (UINT64_MAX
     * = impossible); choice[l * W + b] = capacity of layer l in that optimum */
    uint64_t *best = malloc(W * sizeof *best), *next = malloc(W * sizeof *next);
    uint32_t *choice = malloc((size_t)(L ? L : 1) * W * sizeof *choice);
    if (!best || !next || !choice) {
        free(best); free(next); free(choice);
        return UINT64_MAX;
    }
    for (size_t b = 0; b < W; b++) best[b] = b == 0 ? 0 : UINT64_MAX;
    for (uint32_t l = 0; l < L; l++) {
        const uint64_t *h = hits + (size_t)l * (E + 1);
        for (size_t b = 0; b < W; b++) {
            uint64_t bv = UINT64_MAX;
            uint32_t bc = 0;
            for (uint32_t c = 0; c <= E && c <= b; c++) {
                if (best[b - c] == UINT64_MAX) continue;
                uint64_t v = best[b - c] + h[c];
                /* smallest c on ties: later (deeper) layers take the least */
                if (bv == UINT64_MAX || v > bv) { bv = v; bc = c; }
            }
            next[b] = bv;
            choice[(size_t)l * W + b] = bc;
        }
        uint64_t *tmp = best; best = next; next = tmp;
    }
    uint64_t total = best[B];
    size_t b = B;
    for (uint32_t l = L; l-- > 0;) {
        caps[l] = choice[(size_t)l * W + b];
        b -= caps[l];
    }
    free(best); free(next); free(choice);
    return total;
}

void moe_split_fate(uint32_t L, uint32_t E, uint64_t budget, double shallow, uint32_t *caps) {
    uint64_t R = budget < (uint64_t)L * E ? budget : (uint64_t)L * E;
    uint8_t *fixed = calloc(L ? L : 1, 1);
    double *frac = calloc(L ? L : 1, sizeof *frac);
    if (!fixed || !frac) { /* fall back to uniform */
        for (uint32_t l = 0; l < L; l++) caps[l] = (uint32_t)(R / L);
        free(fixed); free(frac);
        return;
    }
    for (;;) {
        double wsum = 0;
        for (uint32_t l = 0; l < L; l++)
            if (!fixed[l]) wsum += L > 1 ? 1.0 + (shallow - 1.0) * (double)(L - 1 - l) / (double)(L - 1) : 1.0;
        int over = 0;
        uint64_t used = 0;
        for (uint32_t l = 0; l < L; l++) {
            if (fixed[l]) continue;
            double w = L > 1 ? 1.0 + (shallow - 1.0) * (double)(L - 1 - l) / (double)(L - 1) : 1.0;
            double x = wsum > 0 ? (double)R * w / wsum : 0;
            if (x > (double)E) {
                fixed[l] = 1;
                caps[l] = E;
                over = 1;
                continue;
            }
            caps[l] = (uint32_t)floor(x);
            frac[l] = x - floor(x);
            used += caps[l];
        }
        if (over) { /* recompute the rest without the layers pinned at E */
            R = budget < (uint64_t)L * E ? budget : (uint64_t)L * E;
            for (uint32_t l = 0; l < L; l++)
                if (fixed[l]) R -= E;
            continue;
        }
        /* leftover units to the largest fractional parts, ties shallower */
        for (uint64_t left = R - used; left > 0; left--) {
            int64_t bl = -1;
            for (uint32_t l = 0; l < L; l++)
                if (!fixed[l] && caps[l] < E && (bl < 0 || frac[l] > frac[bl])) bl = l;
            if (bl < 0) break;
            caps[bl]++;
            frac[bl] = -1.0;
        }
        break;
    }
    free(fixed);
    free(frac);
}

int moe_split_compute(const char *spec, const moe_trace *t, uint32_t capacity, int cold_per_seq,
                      uint32_t *caps, moe_error *err) {
    const uint32_t L = t->n_layers, E = t->n_experts;
    split_spec s;
    char canon[512];
    if (!spec) spec = "uniform";
    if (parse(spec, &s, canon, sizeof canon, err)) return -1;
    uint64_t budget = (uint64_t)capacity * L;
    if (s.kind == SPLIT_UNIFORM) {
        for (uint32_t l = 0; l < L; l++) caps[l] = capacity;
        return 0;
    }
    if (s.kind == SPLIT_FATE) {
        moe_split_fate(L, E, budget, s.shallow, caps);
        return 0;
    }
    /* adapmoe */
    const moe_trace *pt = t;
    moe_trace *loaded = NULL;
    if (strcmp(s.profile, "oracle")) {
        if (!(loaded = moe_trace_load(s.profile, err))) return -1;
        if (loaded->n_layers != L || loaded->n_experts != E) {
            moe_trace_free(loaded);
            return moe_fail(err, "--split adapmoe: profile %s has %u layers x %u experts, the trace %u x %u",
                            s.profile, loaded->n_layers, loaded->n_experts, L, E);
        }
        pt = loaded;
    }
    moe_mrc m;
    int rc = moe_mrc_compute(pt, 0, cold_per_seq, &m, err);
    moe_trace_free(loaded);
    if (rc) return -1;
    uint64_t *hits = malloc((size_t)L * (E + 1) * sizeof *hits);
    if (!hits) {
        moe_mrc_free(&m);
        return moe_fail(err, "out of memory");
    }
    for (uint32_t l = 0; l < L; l++) {
        uint64_t acc = 0;
        hits[(size_t)l * (E + 1)] = 0;
        for (uint32_t c = 1; c <= E; c++) {
            acc += m.layer_dist[(size_t)l * m.max_capacity + (c - 1)];
            hits[(size_t)l * (E + 1) + c] = acc;
        }
    }
    moe_mrc_free(&m);
    uint64_t total = moe_split_dp(hits, L, E, budget, caps);
    free(hits);
    if (total == UINT64_MAX) return moe_fail(err, "out of memory");
    return 0;
}
