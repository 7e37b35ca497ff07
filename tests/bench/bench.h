/* bench.h: what the benchmarks share: a wall clock and the seeded
 * splitmix64 their generated workloads are drawn from. */
#ifndef MOE_BENCH_H
#define MOE_BENCH_H

#include <stdint.h>
#include <time.h>

static inline uint64_t sm64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* seconds on the monotonic clock */
static inline double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
