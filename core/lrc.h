/* lrc.h: moe-lrc's local routing consistency metrics and cache hit rates.
 *
 * Source: J. Liang et al., "Not All Models Suit Expert Offloading: On Local
 * Routing Consistency of Mixture-of-Expert Models", arXiv:2505.16056,
 * https://arxiv.org/abs/2505.16056, code https://github.com/ljcleo/moe-lrc.
 * The definitions below are read from the code (commit 4ff45dda, the
 * version whose src/README lists 40_topk / 41_sch_calc / 50_chr_calc):
 * src/30_srp_calc.py + 31_srp_refine.py (SRP), src/41_sch_calc.py +
 * 42_sch_refine.py (SCH), src/50_chr_calc.py (cache hit rates). The paper's
 * own text was not available to us (not in the search library), so where we
 * say "paper" below we mean its code; nothing here was copied from it.
 *
 * Common ground (code): the unit is the TOKEN (not the replay's step); each
 * token activates the top-k experts of each layer; samples are 512-token
 * sequences and nothing crosses a sample boundary. Here a sample ("chunk")
 * is a maximal run of tokens with the same sequence id, cut every seq_len
 * (default 512) tokens. Absent slots (MOE_NO_EXPERT) are skipped. "Layer
 * level" works on one layer's E experts; "model level" concatenates all
 * layers (key = l*E + e, token order: layer 0's slots, then layer 1's ...).
 *
 * SRP(m), segment routing best performance (30_srp_calc/31_srp_refine).
 * For every window of m consecutive tokens inside a chunk (all start
 * positions, sliding) and every expert e, let c_w(e) = number of tokens of
 * the window that activate e. A threshold c in 0..m predicts, for the whole
 * window, every expert with c_w(e) >= c. Then
 *   matches(c) = sum over (w, e) with c_w(e) >= c of c_w(e)
 *   preds(c)   = m * #{(w, e) : c_w(e) >= c}
 *   acts       = matches(0)     (= total activations over all windows)
 *   F1(c)      = 2 matches(c) / max(preds(c) + acts, 1)
 *   SRP(m)     = max over c of F1(c)      (one c per layer; at model level
 *                one c for all layers: the sums run over all layers first)
 *   rho_hat    = preds(c*) / acts at the best c* (relative set size: mean
 *                predicted set size over k). Ties between thresholds: the
 *                smallest c (torch's max on CPU returns the first).
 * Not reproduced: the bootstrap confidence interval (1000 resamples of
 * samples). The code only evaluates m = 4, 16, 64, 256 (doubling trick);
 * any m >= 1 gives the same definition here.
 *
 * SCH(m, rho), segment cache best hit rate (41_sch_calc "calc_fsf",
 * 42_sch_refine). A cache of n = floor(rho * k) experts per layer (layer
 * level) or floor(rho * L * k) (model level), cold at each chunk start.
 * Priority of an expert = (number of occurrences in the next m tokens,
 * recency); the victim is the lowest priority: fewest future occurrences,
 * ties to the least recently accessed. Exactly: at the start of token i the
 * count of x is its occurrences in tokens [i, i+m); when token i accesses x
 * the count drops by one and x gets a new timestamp (accesses are numbered
 * in slot order, so a later slot is "more recent"); after token i, the
 * experts of token i+m (if inside the chunk) gain one. The code runs this
 * as a Mattson priority stack and reads every cache size at once; we run
 * one cache per size, which is equivalent (a priority-driven stack
 * algorithm) and was checked against the code on random sequences.
 *
 * Cache hit rate mode (50_chr_calc: calc_lru, calc_lfu, calc_beladi), the
 * DESIGN's "moe-lrc mode": one global cache of n = floor(rho * L * k)
 * (layer, expert) keys at model level (also reported per layer with
 * floor(rho * k)), cold per chunk; a token's hits for ALL its layers are
 * decided against the cache as it was before the token, then its experts
 * are inserted in order (layer-major, slot order). LRU: victim least
 * recently accessed. LFU: fewest accesses in the chunk so far (counts kept
 * for evicted experts: "perfect" LFU), ties to least recent. Belady: the
 * expert whose next access is farthest; never-again experts are farther
 * than any access, ordered among themselves by key (larger key first),
 * as the code's sentinel timestamps do.
 *
 * Where the code differs from a plain reading:
 *  - Compulsory misses. The code gives an expert's first access in a chunk
 *    depth u = number of distinct experts accessed before it in the chunk
 *    (earlier slots of the same token included), so it counts as a HIT for
 *    every cache size > u: the cache behaves as if pre-loaded with the
 *    chunk's first experts, and every curve reaches 1.0 when the cache holds
 *    all experts. We do the same (SCH and CHR) and say so in the output.
 *  - Averaging. The code averages per-sample hit rates (all samples are
 *    512 tokens). We pool hits over accesses, identical when every chunk
 *    has the same length, and not swayed by a short tail chunk otherwise.
 *  - SCH in the code uses every 16th sample (topk[::16]); we use all.
 *  - An earlier version of the code (commit 61c86cf5, 40_sch_calc.py)
 *    defined SCH as the share of activations covered by the n most frequent
 *    experts of each sliding m-token window (an oracle set per window); we
 *    implement the later cache-based definition named in issue 5. */
#ifndef MOE_LRC_H
#define MOE_LRC_H

#include <stdint.h>

#include "error.h"
#include "trace.h"

enum { MOE_LRC_LRU = 0, MOE_LRC_LFU = 1, MOE_LRC_BELADY = 2, MOE_LRC_N_POLICIES = 3 };

typedef struct moe_lrc_config {
    uint32_t seq_len;      /* chunk length in tokens; 0 = whole sequences (default 512 in commands) */
    const uint32_t *m;     /* window lengths (>= 1) */
    uint32_t n_m;
    const double *rho;     /* relative cache sizes (> 0) */
    uint32_t n_rho;
} moe_lrc_config;

/* Level index l: 0..L-1 a layer, L the model level. NaN where undefined
 * (no window of length m fits in any chunk). */
typedef struct moe_lrc {
    uint32_t n_layers, top_k, n_m, n_rho;
    uint32_t *m;           /* copies of the configuration */
    double *rho;
    uint64_t n_chunks, n_tokens;
    double *srp;           /* [i_m * (L+1) + l] */
    double *srp_rho;       /* [i_m * (L+1) + l]: rho_hat */
    uint32_t *srp_thr;     /* [i_m * (L+1) + l]: best threshold c* */
    double *sch;           /* [(i_m * n_rho + i_rho) * (L+1) + l] */
    double *chr;           /* [(policy * n_rho + i_rho) * (L+1) + l] */
    uint32_t *cap;         /* [i_rho * (L+1) + l]: cache size used */
} moe_lrc;

int moe_lrc_compute(const moe_trace *t, const moe_lrc_config *cfg, moe_lrc *out, moe_error *err);
void moe_lrc_free(moe_lrc *r);
const char *moe_lrc_policy_name(int policy);

/* One cache run in moe-lrc mode, exposed for tests and reproductions.
 * level: a layer (0..L-1) or L (model level); policy: MOE_LRC_* or
 * MOE_LRC_FSF (SCH's future-count policy with window m). Returns the hits
 * and accesses through the pointers. */
#define MOE_LRC_FSF 3
int moe_lrc_cache_run(const moe_trace *t, uint32_t seq_len, uint32_t level, int policy, uint32_t m,
                      uint32_t capacity, uint64_t *hits, uint64_t *accesses, moe_error *err);

#endif
