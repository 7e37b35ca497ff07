/* pool.c: pthread worker pool (generation counter; spin, then sleep).
 *
 * A job of a small model lasts microseconds (a 128 x 144 matrix), and a
 * condition-variable wake-up costs tens of them on a VM: sleeping between
 * jobs made two threads slower than one. So a waiting thread first spins on
 * the counters for a short while (SPIN pause instructions, about 50 us),
 * then sleeps on the condition variable; a job posted to a sleeping worker
 * wakes it. Counters are read and written with atomics; a sleeper checks
 * them again under the mutex, which the poster takes to broadcast, so no
 * wake-up is lost. */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>

#define SPIN 20000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

struct moe_pool {
    int n;                 /* threads including the caller */
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t gen;          /* bumped for every job; workers wait for a change */
    int pending;           /* workers still running the current job */
    int active;            /* threads taking part in the current job */
    int quit;
    moe_pool_fn fn;
    void *ctx;
    int64_t n_items;
};

typedef struct worker_arg {
    moe_pool *p;
    int id;
} worker_arg;

static void chunk(int64_t n, int parts, int i, int64_t *b, int64_t *e) {
    *b = n * i / parts;
    *e = n * (i + 1) / parts;
}

static uint64_t load_gen(moe_pool *p) { return __atomic_load_n(&p->gen, __ATOMIC_ACQUIRE); }

static void *worker(void *arg) {
    worker_arg *wa = arg;
    moe_pool *p = wa->p;
    int id = wa->id;
    free(wa);
    uint64_t seen = 0;
    for (;;) {
        for (int i = 0; i < SPIN && load_gen(p) == seen && !__atomic_load_n(&p->quit, __ATOMIC_ACQUIRE); i++) cpu_relax();
        if (load_gen(p) == seen) {
            pthread_mutex_lock(&p->mu);
            while (load_gen(p) == seen && !__atomic_load_n(&p->quit, __ATOMIC_ACQUIRE)) pthread_cond_wait(&p->go, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (__atomic_load_n(&p->quit, __ATOMIC_ACQUIRE)) break;
        seen = load_gen(p); /* the job's fields were written before it (release) */
        if (id >= p->active) continue;
        int64_t b, e;
        chunk(p->n_items, p->active, id, &b, &e);
        if (b < e) p->fn(p->ctx, b, e);
        if (__atomic_sub_fetch(&p->pending, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

moe_pool *moe_pool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    moe_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    p->tids = calloc((size_t)n_threads, sizeof *p->tids);
    if (!p->tids) { free(p); return NULL; }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) { p->n = i; moe_pool_free(p); return NULL; }
        wa->p = p;
        wa->id = i;
        if (pthread_create(&p->tids[i], NULL, worker, wa)) {
            free(wa);
            p->n = i;
            moe_pool_free(p);
            return NULL;
        }
    }
    return p;
}

void moe_pool_free(moe_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&p->quit, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->tids[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p->tids);
    free(p);
}

int moe_pool_threads(const moe_pool *p) { return p->n; }

void moe_pool_run(moe_pool *p, moe_pool_fn fn, void *ctx, int64_t n, int64_t min_chunk) {
    if (n <= 0) return;
    int active = p->n;
    if (min_chunk < 1) min_chunk = 1;
    if (n / min_chunk < active) active = (int)(n / min_chunk) > 1 ? (int)(n / min_chunk) : 1;
    if (active == 1) {
        fn(ctx, 0, n);
        return;
    }
    /* every worker finished the previous job (pending reached 0) before
     * these fields change */
    p->fn = fn;
    p->ctx = ctx;
    p->n_items = n;
    p->active = active;
    __atomic_store_n(&p->pending, active - 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&p->gen, p->gen + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    int64_t b, e;
    chunk(n, active, 0, &b, &e);
    fn(ctx, b, e);
    for (int i = 0; i < SPIN && __atomic_load_n(&p->pending, __ATOMIC_ACQUIRE); i++) cpu_relax();
    if (__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&p->mu);
        while (__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE)) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
