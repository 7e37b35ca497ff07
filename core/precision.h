/* precision.h: mixed-precision schemes: which precision tier each expert is
 * stored and read at.
 *
 * Schemes ("name:k=v,..." like policies; canonical names are config keys):
 *   uniform:bits=16          every expert at one tier (32/16/8/4/3/2)
 *   mlx-tiers:profile=P      MLX-Flash's activation-frequency tiers: an
 *                            expert chosen by > 15% of tokens (of its layer)
 *                            is FP16, 8-15% Q8, 5-8% Q4, 2-5% Q3, < 2% Q2
 *                            (a boundary value goes to the higher tier)
 *   hot-cold:hot=N,hot_bits=4,cold_bits=2,profile=P
 *                            the N most frequent experts of each layer hot,
 *                            the rest cold (ties to the lower id)
 *   hobbit:hi=0.6,lo=0.9,high_bits=16,low_bits=4
 *                            HOBBIT's per-token rule: slots of a token in
 *                            rank order, c = normalised gate weight of the
 *                            slots ranked before; c < hi: high precision,
 *                            c < lo: low precision, else the slot is skipped.
 *                            A miss is loaded at the precision its tokens
 *                            need (the highest of them); a hit uses whatever
 *                            copy is resident.
 * Frequency profiles (P): "oracle" = the replayed trace itself (the tiers
 * then know the future: an upper bound, and the canonical name says so), or
 * a path to another trace with the same geometry. Frequency = tokens routed
 * to (layer, expert) / tokens. */
#ifndef MOE_PRECISION_H
#define MOE_PRECISION_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "trace.h"

typedef struct moe_precision_plan {
    char canonical[512];
    int dynamic;        /* 1 for hobbit (per-token decision) */
    uint32_t n_layers, n_experts;
    uint8_t *tier;      /* L * E: static tier (enum moe_precision); dynamic: the high tier */
    double hi, lo;      /* hobbit thresholds */
    int high, low;      /* hobbit tiers */
    int profile_oracle; /* tiers computed from the replayed trace */
} moe_precision_plan;

int moe_precision_canonical(const char *spec, char *canonical, size_t cap, moe_error *err);
/* What a valid spec is, without a trace (an invalid spec: 0 and -1):
 * whether it decides per token (hobbit: it needs gate weights), and the one
 * tier (enum moe_precision) of a uniform scheme, -1 for any other. */
int moe_precision_is_dynamic(const char *spec);
int moe_precision_uniform_tier(const char *spec);
int moe_precision_plan_new(const char *spec, const moe_trace *t, moe_precision_plan *out, moe_error *err);
void moe_precision_plan_free(moe_precision_plan *p);

/* Per-(layer, expert) token frequency of a trace: freq[l*E+e] in [0, 1]. */
int moe_precision_frequency(const moe_trace *t, double *freq, moe_error *err);
/* Rank of expert e among the E frequencies f (0 = the most frequent): the
 * experts strictly more frequent, or as frequent with a lower id. The rule
 * hot-cold's hot set and moesim quality's pinned set are both cut from. */
static inline uint32_t moe_precision_rank(const double *f, uint32_t E, uint32_t e) {
    uint32_t rank = 0;
    for (uint32_t o = 0; o < E; o++) rank += f[o] > f[e] || (f[o] == f[e] && o < e);
    return rank;
}
/* MLX-Flash tier of a frequency. */
int moe_precision_mlx_tier(double freq);
/* HOBBIT's rule for a slot whose preceding normalised weight is c: the
 * high copy, the low copy, or skipped. The replay (through the plan) and the
 * backend (sim/replay_engine.c, backend/moe_block.c) both decide by it. */
enum { MOE_HOBBIT_HIGH = 0, MOE_HOBBIT_LOW = 1, MOE_HOBBIT_SKIP = 2 };
static inline int moe_hobbit_class(double c, double hi, double lo) {
    return c < hi ? MOE_HOBBIT_HIGH : c < lo ? MOE_HOBBIT_LOW : MOE_HOBBIT_SKIP;
}
/* HOBBIT: tier for a slot whose preceding normalised weight is c, -1 = skip. */
static inline int moe_precision_hobbit_slot(const moe_precision_plan *p, double c) {
    int k = moe_hobbit_class(c, p->hi, p->lo);
    return k == MOE_HOBBIT_HIGH ? p->high : k == MOE_HOBBIT_LOW ? p->low : -1;
}

#endif
