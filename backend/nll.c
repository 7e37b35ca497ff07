/* nll.c: sequence NLL in chunks of forward calls (chunking changes nothing). */
#include "nll.h"

#include <math.h>
#include <stdlib.h>

#define NLL_CHUNK 256

int moe_sequence_nll(moe_engine *e, const int *ids, int n, double *nll, moe_error *err) {
    return moe_sequence_nll_hooked(e, ids, n, NULL, nll, err);
}

int moe_sequence_nll_hooked(moe_engine *e, const int *ids, int n, const moe_step_hooks *h, double *nll,
                            moe_error *err) {
    int V = moe_engine_model(e)->cfg.vocab;
    int chunk = h && h->max_step > 0 && h->max_step < NLL_CHUNK ? h->max_step : NLL_CHUNK;
    if (n < 2) return moe_fail(err, "%d tokens: at least 2 are needed", n);
    float *logits = malloc((size_t)NLL_CHUNK * V * sizeof *logits);
    if (!logits) return moe_fail(err, "out of memory");
    moe_engine_reset(e);
    double sum = 0;
    for (int t0 = 0; t0 < n - 1; t0 += chunk) {
        int T = n - 1 - t0 < chunk ? n - 1 - t0 : chunk;
        if ((h && h->begin(h->ctx, t0, T, err)) || moe_engine_forward(e, ids + t0, T, logits, 1, NULL, err) ||
            (h && h->end(h->ctx, err))) {
            free(logits);
            return -1;
        }
        for (int t = 0; t < T; t++) {
            const float *lg = logits + (size_t)t * V;
            float mx = lg[0];
            for (int i = 1; i < V; i++) mx = lg[i] > mx ? lg[i] : mx;
            double z = 0;
            for (int i = 0; i < V; i++) z += exp((double)lg[i] - mx);
            sum += log(z) + mx - lg[ids[t0 + t + 1]];
        }
    }
    free(logits);
    *nll = sum;
    return 0;
}
