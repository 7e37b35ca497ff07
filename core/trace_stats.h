/* trace_stats.h: what a routing trace looks like, before any policy runs.
 *
 * Popularity (per layer, token-slot accounting: every (token, layer, slot)
 * naming an expert counts one activation of it):
 *   p_e = c_e / sum c;  entropy H = -sum p_e log2 p_e (bits; 0 log 0 = 0);
 *   normalised entropy H / log2 E (1 = uniform; 0 when E = 1);
 *   Gini over all E experts, zeros included, counts sorted ascending
 *   x_1..x_E: G = 2 sum_i i x_i / (E sum x) - (E + 1) / E
 *   (0 = uniform, (E-1)/E = one expert takes everything);
 *   top-n share = sum of the n largest counts / sum c, for n = 1, 2, k, E/4
 *   (E/4 rounded down, at least 1).
 * Reuse distance (per layer, the replay's unique (step, layer, expert)
 * accounting, warm over the whole trace): for a use of expert e at step s',
 * the number of distinct other experts of that layer used after e's
 * previous use and before step s' (steps ascending, experts ascending within
 * a step; the experts of step s' itself do not count). This is the LRU
 * stack depth that decides a hit in the replay for any capacity >= the set
 * size (core/mrc.h), so "distance < C" reads as "hit with C experts per
 * layer". Histogram in log2 buckets: bucket 0 holds d = 0, bucket b >= 1
 * holds 2^(b-1) <= d < 2^b; first uses are counted apart (cold).
 * Lookahead predictability (only when the trace has lookahead): for each
 * token and layer l < L-1, P = the d=1 prediction stored at layer l (for
 * layer l+1), A = the experts layer l+1 actually chose;
 *   precision = sum |P & A| / sum |P|,  recall = sum |P & A| / sum |A|
 * (recall = "fraction of layer l+1's actual experts present in layer l's
 * prediction"; its denominator is the active experts, k per token when all
 * slots are filled, as in Eliseev & Mazur). Reported per source layer l and
 * overall (sums over layers). */
#ifndef MOE_TRACE_STATS_H
#define MOE_TRACE_STATS_H

#include <stdint.h>

#include "error.h"
#include "trace.h"

#define MOE_RD_BUCKETS 18 /* d < 2^16 always (E <= 65534) */

typedef struct moe_popularity {
    uint64_t activations;
    double entropy_bits, entropy_norm, gini;
    double top1, top2, topk, topq; /* shares of the 1, 2, k, E/4 most used experts */
} moe_popularity;

typedef struct moe_trace_stats {
    uint32_t n_layers, n_experts, top_k, n_quarter; /* n_quarter = max(1, E/4) */
    uint64_t n_steps, n_tokens, accesses;            /* accesses: unique (step, layer, expert) */
    uint64_t *counts;            /* L * E activation counts */
    moe_popularity *layer;       /* L */
    moe_popularity mean;         /* plain mean of the per-layer figures (activations: sum) */
    uint64_t *rd_hist;           /* L * MOE_RD_BUCKETS */
    uint64_t *rd_cold;           /* L */
    uint32_t rd_buckets;         /* buckets in use: 1 + ceil(log2 E) */
    int has_lookahead;
    uint64_t *la_pred, *la_actual, *la_match; /* L entries (the last layer stays 0) */
    double la_precision, la_recall;           /* overall; NaN without lookahead */
} moe_trace_stats;

int moe_trace_stats_compute(const moe_trace *t, moe_trace_stats *out, moe_error *err);
void moe_trace_stats_free(moe_trace_stats *s);

/* Helpers, exposed for tests: popularity of one count vector. */
void moe_popularity_of(const uint64_t *counts, uint32_t n, uint32_t k, moe_popularity *p);
/* Lower bound of log2 bucket b (0, 1, 2, 4, 8 ...). */
uint32_t moe_rd_bucket_lo(uint32_t b);
uint32_t moe_rd_bucket_of(uint32_t d);

#endif
