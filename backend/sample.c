/* sample.c: greedy, temperature and top-p sampling. */
#include "sample.h"

#include <math.h>
#include <stdlib.h>

struct moe_sample_pair {
    double p;
    int id;
};

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void moe_rng_seed(moe_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t moe_rng_next(moe_rng *r) {
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double moe_rng_uniform(moe_rng *r) { return (double)(moe_rng_next(r) >> 11) * 0x1.0p-53; }

int moe_sampler_init(moe_sampler *s, int vocab, float temperature, float top_p, uint64_t seed) {
    s->temperature = temperature;
    s->top_p = top_p > 0 && top_p < 1 ? top_p : 1;
    s->vocab = vocab;
    moe_rng_seed(&s->rng, seed);
    s->prob = malloc((size_t)vocab * sizeof *s->prob);
    s->pairs = malloc((size_t)vocab * sizeof *s->pairs);
    return s->prob && s->pairs ? 0 : -1;
}

void moe_sampler_free(moe_sampler *s) {
    free(s->prob);
    free(s->pairs);
}

static int cmp_pair(const void *a, const void *b) {
    const struct moe_sample_pair *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id - y->id; /* equal mass: lower id first, so the order is total */
}

int moe_sample(moe_sampler *s, const float *logits) {
    int V = s->vocab, best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (s->temperature <= 0) return best;
    double sum = 0;
    for (int i = 0; i < V; i++) {
        s->prob[i] = exp(((double)logits[i] - logits[best]) / s->temperature);
        sum += s->prob[i];
    }
    if (s->top_p < 1) {
        struct moe_sample_pair *v = s->pairs;
        {
            for (int i = 0; i < V; i++) v[i] = (struct moe_sample_pair){s->prob[i], i};
            qsort(v, (size_t)V, sizeof *v, cmp_pair);
            /* keep the smallest prefix whose mass reaches top_p (at least one token) */
            double acc = 0;
            int keep = 0;
            while (keep < V && (keep == 0 || acc < s->top_p * sum)) acc += v[keep++].p;
            double r = moe_rng_uniform(&s->rng) * acc, c = 0;
            int pick = v[keep - 1].id;
            for (int i = 0; i < keep; i++) {
                c += v[i].p;
                if (r < c) { pick = v[i].id; break; }
            }
            return pick;
        }
    }
    double r = moe_rng_uniform(&s->rng) * sum, c = 0;
    for (int i = 0; i < V; i++) {
        c += s->prob[i];
        if (r < c) return i;
    }
    return best;
}
