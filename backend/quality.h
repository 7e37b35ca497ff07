/* quality.h: how far a constrained model's next-token predictions are from
 * the full model's on the same text (teacher-forced: both read the true
 * text, so every position is compared on the same context).
 *
 * Per position, with p = softmax of the full model's logits and q = the
 * constrained model's (in double):
 *   delta nats  -log q(next) - (-log p(next))
 *   KL(p || q)  sum_v p(v) (log p(v) - log q(v)), nats
 *   top-1       1 when both put the same token first (ties: the lower id)
 * Summed here; the caller divides by the positions. */
#ifndef MOE_BACKEND_QUALITY_H
#define MOE_BACKEND_QUALITY_H

#include <stdint.h>

typedef struct moe_quality {
    uint64_t positions, top1_agree;
    double nll_full, nll_con, kl; /* sums, nats */
} moe_quality;

/* Add one position: logits of the full (lf) and constrained (lc) model over
 * V tokens, and the token that came next. */
void moe_quality_add(moe_quality *q, const float *lf, const float *lc, int V, int next);

/* Repetition of a generated text: the share of its n-grams (the len - n + 1
 * windows of n consecutive tokens) that already occurred earlier in it, in
 * [0, 1]; 0 when len < n. A text stuck in a loop scores near 1, ordinary
 * prose of n = 16 bytes near 0. */
#define MOE_REPETITION_GRAM 16
double moe_repetition(const int *x, int len, int n);

#endif
