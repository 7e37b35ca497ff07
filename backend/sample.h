/* sample.h: next-token choice: greedy, or seeded temperature / top-p sampling
 * with our own generator (xoshiro256**, seeded through splitmix64), so a
 * seed gives the same text on every machine. */
#ifndef MOE_BACKEND_SAMPLE_H
#define MOE_BACKEND_SAMPLE_H

#include <stdint.h>

typedef struct moe_rng {
    uint64_t s[4];
} moe_rng;

void moe_rng_seed(moe_rng *r, uint64_t seed);
uint64_t moe_rng_next(moe_rng *r);
/* uniform in [0, 1) with 53 random bits */
double moe_rng_uniform(moe_rng *r);

typedef struct moe_sampler {
    float temperature; /* <= 0: greedy (argmax, lowest id on ties) */
    float top_p;       /* nucleus mass in (0, 1]; 1 = off */
    moe_rng rng;
    int vocab;
    double *prob;      /* scratch [vocab] */
    struct moe_sample_pair *pairs; /* scratch [vocab] for top-p sorting */
} moe_sampler;

int moe_sampler_init(moe_sampler *s, int vocab, float temperature, float top_p, uint64_t seed);
void moe_sampler_free(moe_sampler *s);
int moe_sample(moe_sampler *s, const float *logits);

#endif
