/* util.h: small helpers shared by the policy files: a dense set of resident
 * keys with O(1) add/remove (for policies that scan their residents to pick a
 * victim), and a seeded splitmix64 generator (no rand(), no clock). */
#ifndef MOE_POLICY_UTIL_H
#define MOE_POLICY_UTIL_H

#include <stdint.h>
#include <stdlib.h>

/* Resident set: keys[0..n) in an order that only depends on the sequence of
 * adds and removes (remove swaps the last key into the hole), so every scan
 * over it is deterministic. pos[key] is the index in keys. */
typedef struct moe_kset {
    uint32_t *keys, *pos;
    uint32_t n;
} moe_kset;

static inline int moe_kset_init(moe_kset *s, uint32_t n_keys) {
    s->keys = malloc((n_keys ? n_keys : 1) * sizeof(uint32_t));
    s->pos = malloc((n_keys ? n_keys : 1) * sizeof(uint32_t));
    s->n = 0;
    return s->keys && s->pos ? 0 : -1;
}
static inline void moe_kset_free(moe_kset *s) {
    free(s->keys);
    free(s->pos);
}
static inline void moe_kset_add(moe_kset *s, uint32_t k) {
    s->pos[k] = s->n;
    s->keys[s->n++] = k;
}
static inline void moe_kset_remove(moe_kset *s, uint32_t k) {
    uint32_t i = s->pos[k], last = s->keys[--s->n];
    s->keys[i] = last;
    s->pos[last] = i;
}

/* splitmix64 (Steele, Lea & Flood 2014): one 64-bit state word. */
static inline uint64_t moe_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* Uniform integer in [0, n), n > 0, by rejection (no modulo bias). */
static inline uint64_t moe_rand_below(uint64_t *state, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do r = moe_splitmix64(state);
    while (r >= limit);
    return r % n;
}

#endif
