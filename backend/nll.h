/* nll.h: negative log-likelihood of a token sequence under the model. */
#ifndef MOE_BACKEND_NLL_H
#define MOE_BACKEND_NLL_H

#include "engine.h"

/* Sum over i = 1..n-1 of -log p(ids[i] | ids[0..i-1]), one sequence from
 * position 0 (the engine is reset first; it needs a context of n-1). The
 * log-softmax is taken in double. */
int moe_sequence_nll(moe_engine *e, const int *ids, int n, double *nll, moe_error *err);

/* Brackets around every forward call (offloaded runs: one call is one step
 * of at most max_step tokens). */
typedef struct moe_step_hooks {
    void *ctx;
    int max_step;
    int (*begin)(void *ctx, int pos0, int n, moe_error *err);
    int (*end)(void *ctx, moe_error *err);
} moe_step_hooks;
/* moe_sequence_nll with hooks (NULL = none); the same result for any chunking. */
int moe_sequence_nll_hooked(moe_engine *e, const int *ids, int n, const moe_step_hooks *h, double *nll,
                            moe_error *err);

#endif
