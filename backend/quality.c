/* quality.c: per-position comparison of two next-token distributions. */
#include "quality.h"

#include <math.h>
#include <string.h>

/* log-softmax normaliser of v[0..V): max + log sum exp(v - max), and argmax. */
static double log_norm(const float *v, int V, int *arg) {
    int a = 0;
    for (int i = 1; i < V; i++)
        if (v[i] > v[a]) a = i;
    double z = 0;
    for (int i = 0; i < V; i++) z += exp((double)v[i] - v[a]);
    *arg = a;
    return (double)v[a] + log(z);
}

void moe_quality_add(moe_quality *q, const float *lf, const float *lc, int V, int next) {
    int af, ac;
    double nf = log_norm(lf, V, &af), nc = log_norm(lc, V, &ac);
    double kl = 0;
    for (int i = 0; i < V; i++) {
        double lpf = (double)lf[i] - nf, lpc = (double)lc[i] - nc;
        kl += exp(lpf) * (lpf - lpc);
    }
    q->positions++;
    q->top1_agree += af == ac;
    q->nll_full += nf - lf[next];
    q->nll_con += nc - lc[next];
    /* each term of KL is >= 0 only in sum; rounding can leave -1e-17 for equal inputs */
    q->kl += kl > 0 ? kl : 0;
}

double moe_repetition(const int *x, int len, int n) {
    if (n < 1 || len < n) return 0;
    int windows = len - n + 1, repeated = 0;
    /* quadratic in len: the 1000-byte texts it scores take a millisecond */
    for (int i = 1; i < windows; i++)
        for (int j = 0; j < i; j++)
            if (!memcmp(x + i, x + j, (size_t)n * sizeof *x)) {
                repeated++;
                break;
            }
    return (double)repeated / windows;
}
