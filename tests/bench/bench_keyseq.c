/* bench_keyseq.c: generic (key sequence) replay speed on the workload of
 * libCacheSim comparisons: 10 M requests, Zipf(1.0) over 1 M objects (own
 * seeded splitmix64; ranks shuffled onto random 64-bit object ids, keys
 * numbered by first appearance as `trace import` does), capacities of 1 %
 * and 10 % of the objects, for lru, fifo, sieve and belady (belady's
 * next-use pass included, as libCacheSim's reads it from the file).
 *
 * Baseline, measured in the same run: a reference LRU over the raw 64-bit
 * object ids, with a chained hash table and one malloc'ed node per cached
 * object: the structure a general cache simulator (libCacheSim among them)
 * uses, which moesim's dense keys avoid. Prints "bench <name> <value>
 * <unit>" lines; the ratio lines are moesim / reference at equal capacity.
 *
 * `bench_keyseq FILE` also writes the sequence as a libCacheSim
 * oracleGeneral file, so libCacheSim's cachesim can run the same requests
 * (README, "libCacheSim parity", says how it was measured). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/trace.h"
#include "../../sim/replay.h"
#include "bench.h"

#define REQUESTS 10000000u
#define OBJECTS 1000000u

/* ---- reference LRU over object ids ------------------------------------- */

typedef struct node {
    uint64_t id;
    struct node *hnext, *prev, *next;
} node;

static uint64_t ref_lru(const uint64_t *ids, uint64_t n, uint64_t cap) {
    size_t nb = 1;
    while (nb < 2 * cap) nb *= 2;
    node **bucket = calloc(nb, sizeof *bucket);
    node head = {0};
    head.prev = head.next = &head;
    uint64_t misses = 0, size = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t id = ids[i], h = (id * 0x9E3779B97F4A7C15ull) >> 20 & (nb - 1);
        node *x = bucket[h];
        while (x && x->id != id) x = x->hnext;
        if (x) { /* hit: move to the front */
            x->prev->next = x->next, x->next->prev = x->prev;
        } else {
            misses++;
            if (size == cap) { /* evict the tail, unlink it from its bucket */
                node *v = head.prev;
                v->prev->next = &head, head.prev = v->prev;
                node **p = &bucket[(v->id * 0x9E3779B97F4A7C15ull) >> 20 & (nb - 1)];
                while (*p != v) p = &(*p)->hnext;
                *p = v->hnext;
                free(v);
                size--;
            }
            x = malloc(sizeof *x);
            x->id = id, x->hnext = bucket[h], bucket[h] = x;
            size++;
        }
        x->next = head.next, x->prev = &head, head.next->prev = x, head.next = x;
    }
    for (node *x = head.next, *nx; x != &head; x = nx) nx = x->next, free(x);
    free(bucket);
    return misses;
}

int main(int argc, char **argv) {
    moe_error err;
    uint64_t rs = 20261202;
    /* Zipf(1.0) CDF over ranks, ranks onto random object ids */
    double *cdf = malloc(OBJECTS * sizeof *cdf), sum = 0;
    uint64_t *obj = malloc(OBJECTS * sizeof *obj), *ids = malloc(REQUESTS * sizeof *ids);
    uint32_t *keys = malloc(REQUESTS * sizeof *keys), *dense = malloc(OBJECTS * sizeof *dense);
    if (!cdf || !obj || !ids || !keys || !dense) return fputs("bench_keyseq: out of memory\n", stderr), 1;
    for (uint32_t r = 0; r < OBJECTS; r++) cdf[r] = (sum += 1.0 / (r + 1.0));
    for (uint32_t r = 0; r < OBJECTS; r++) cdf[r] /= sum, obj[r] = sm64(&rs) | 1, dense[r] = UINT32_MAX;
    uint32_t n_keys = 0;
    for (uint64_t i = 0; i < REQUESTS; i++) {
        double u = (double)(sm64(&rs) >> 11) * 0x1.0p-53;
        uint32_t lo = 0, hi = OBJECTS - 1;
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            if (cdf[mid] < u) lo = mid + 1;
            else hi = mid;
        }
        ids[i] = obj[lo];
        if (dense[lo] == UINT32_MAX) dense[lo] = n_keys++;
        keys[i] = dense[lo];
    }
    if (argc > 1) { /* oracleGeneral: {u32 time; u64 id; u32 size; i64 next access (INT64_MAX: none)} */
        FILE *f = fopen(argv[1], "wb");
        int64_t *next = malloc(REQUESTS * sizeof *next), *last = malloc(n_keys * sizeof *last);
        if (!f || !next || !last) return perror(argv[1]), 1;
        for (uint32_t k = 0; k < n_keys; k++) last[k] = INT64_MAX;
        for (uint64_t i = REQUESTS; i-- > 0;) next[i] = last[keys[i]], last[keys[i]] = (int64_t)i;
        for (uint64_t i = 0; i < REQUESTS; i++) {
            unsigned char r[24] = {0};
            uint32_t tm = (uint32_t)i, sz = 1;
            int64_t nx = next[i];
            memcpy(r, &tm, 4), memcpy(r + 4, &ids[i], 8), memcpy(r + 12, &sz, 4), memcpy(r + 16, &nx, 8);
            fwrite(r, 1, 24, f);
        }
        free(next), free(last);
        if (fclose(f)) return perror(argv[1]), 1;
    }
    moe_trace *t = moe_trace_from_keys(keys, REQUESTS, n_keys, "bench", NULL, &err);
    if (!t) return fprintf(stderr, "bench_keyseq: %s\n", err.msg), 1;
    static const char *const pol[] = {"lru", "fifo", "sieve", "belady"};
    const uint32_t caps[2] = {OBJECTS / 100, OBJECTS / 10};
    for (int ci = 0; ci < 2; ci++) {
        /* interleaved: reference, then each policy, per capacity */
        double a = now();
        uint64_t ref_miss = ref_lru(ids, REQUESTS, caps[ci]);
        double ref_s = now() - a;
        printf("bench keyseq_reference_lru_%uk %.1f Mreq/s\n", caps[ci] / 1000, REQUESTS / ref_s / 1e6);
        for (int p = 0; p < 4; p++) {
            moe_replay_config cfg = {.policy = pol[p], .capacity = caps[ci], .scope = MOE_SCOPE_GLOBAL, .seed = 1};
            moe_replay_result res;
            a = now();
            if (moe_replay(t, &cfg, &res, &err)) return fprintf(stderr, "bench_keyseq: %s\n", err.msg), 1;
            double s = now() - a;
            uint64_t miss = res.accesses - res.hits;
            if (p == 0 && miss != ref_miss) /* the two LRUs must agree request for request */
                return fprintf(stderr, "bench_keyseq: lru misses %llu, reference %llu\n", (unsigned long long)miss,
                               (unsigned long long)ref_miss), 1;
            printf("bench keyseq_%s_%uk %.1f Mreq/s (misses %llu)\n", pol[p], caps[ci] / 1000, REQUESTS / s / 1e6,
                   (unsigned long long)miss);
            if (p == 0) printf("bench keyseq_lru_%uk_vs_reference %.2f ratio\n", caps[ci] / 1000, ref_s / s);
            moe_replay_result_free(&res);
        }
    }
    moe_trace_free(t);
    free(cdf), free(obj), free(ids), free(dense);
    return 0;
}
