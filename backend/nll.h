/* nll.h: negative log-likelihood of a token sequence under the model. */
#ifndef MOE_BACKEND_NLL_H
#define MOE_BACKEND_NLL_H

#include "engine.h"

/* Sum over i = 1..n-1 of -log p(ids[i] | ids[0..i-1]), one sequence from
 * position 0 (the engine is reset first; it needs a context of n-1). The
 * log-softmax is taken in double. */
int moe_sequence_nll(moe_engine *e, const int *ids, int n, double *nll, moe_error *err);

#endif
