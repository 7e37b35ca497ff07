/* trace_fit.h: calibrate the synthetic generator (core/trace_gen.h) to
 * target hit-rate curves.
 *
 * Targets are moe-lrc cache hit rates (core/lrc.h "cache hit rate mode":
 * one global cache of floor(rho * L * k) (layer, expert) keys, a token's
 * hits for all layers decided before its insertions, cold per 512-token
 * chunk, first accesses counted as moe-lrc's code counts them) for LRU and
 * Belady at a list of rho values. Either curve may be left out per rho
 * (NaN).
 *
 * Method. Four generator parameters are tuned; each is mapped from an
 * unbounded coordinate x to its range so the minimiser cannot leave it:
 *   zipf_s       = 4 * sigmoid(x0)             in (0, 4)
 *   locality     = 0.98 * sigmoid(x1)          in (0, 0.98)
 *   cross_layer  = 0.98 * sigmoid(x2)          in (0, 0.98)
 *   topic_every  = round(exp(x3)), clamped to 2..100000 tokens
 * (locality and cross_layer stop short of 1: at 1 every sequence would be
 * its first token repeated, a degenerate corner the minimiser likes to
 * slide into when a target is out of reach). The objective is the sum of
 * squared errors of both curves on a fitting trace of fit_seqs sequences of
 * seq_len tokens generated with a FIXED seed: the same random stream for
 * every candidate (common random numbers) keeps the objective nearly smooth
 * in the parameters, so GSL's Nelder-Mead simplex (nmsimplex2) makes
 * progress. The simplex restarts once from its best point (a standard
 * remedy for a collapsed simplex) and stops after max_iter iterations in
 * all or when its size falls below 1e-3. Everything is deterministic. */
#ifndef MOE_TRACE_FIT_H
#define MOE_TRACE_FIT_H

#include <stdint.h>

#include "error.h"
#include "trace.h"
#include "trace_gen.h"

#define MOE_FIT_MAX_RHO 16

typedef struct moe_fit_target {
    uint32_t layers, experts, top_k;
    uint32_t n_rho;
    double rho[MOE_FIT_MAX_RHO];
    double lru[MOE_FIT_MAX_RHO];    /* NaN = no target at this rho */
    double belady[MOE_FIT_MAX_RHO];
} moe_fit_target;

typedef struct moe_fit_opts {
    uint32_t fit_seqs;   /* sequences in the fitting trace (default 20) */
    uint32_t seq_len;    /* tokens per sequence = moe-lrc chunk (default 512) */
    uint32_t prefill;    /* prefill step length (default 32; no effect on the curves) */
    uint32_t max_iter;   /* Nelder-Mead iterations in all (default 120) */
    uint64_t seed;       /* generator seed (default 1) */
    int verbose;         /* print one line per iteration to stderr */
} moe_fit_opts;

typedef struct moe_fit_result {
    moe_gen_params params;          /* the best parameters (steps = the fitting trace's) */
    double lru[MOE_FIT_MAX_RHO];    /* achieved on the fitting trace */
    double belady[MOE_FIT_MAX_RHO];
    double sse;                     /* sum of squared errors at the best point */
    uint32_t iterations, evaluations;
    double seconds;                 /* wall time of the fit */
} moe_fit_result;

void moe_fit_opts_defaults(moe_fit_opts *o);

/* moe-lrc LRU and Belady hit rates of a trace at model level for each rho
 * (capacity floor(rho * L * k)); chunk = seq_len tokens. Either output
 * array may be NULL to skip that policy. */
int moe_fit_curves(const moe_trace *t, uint32_t seq_len, const double *rho, uint32_t n_rho, double *lru,
                   double *belady, moe_error *err);

/* Generator parameters for a geometry, sequence layout and seed with the
 * four fitted values; steps cover n_seqs sequences exactly. */
void moe_fit_params(const moe_fit_target *tg, const moe_fit_opts *o, uint32_t n_seqs, double zipf, double locality,
                    double cross_layer, uint64_t topic_every, moe_gen_params *p);

int moe_trace_fit(const moe_fit_target *tg, const moe_fit_opts *o, moe_fit_result *res, moe_error *err);

#endif
