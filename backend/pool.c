/* pool.c: pthread worker pool (mutex + condition variables, generation counter). */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>

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

static void *worker(void *arg) {
    worker_arg *wa = arg;
    moe_pool *p = wa->p;
    int id = wa->id;
    free(wa);
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->quit) pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) break;
        seen = p->gen;
        if (id >= p->active) continue;
        moe_pool_fn fn = p->fn;
        void *ctx = p->ctx;
        int64_t b, e;
        chunk(p->n_items, p->active, id, &b, &e);
        pthread_mutex_unlock(&p->mu);
        if (b < e) fn(ctx, b, e);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
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
    p->quit = 1;
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
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_items = n;
    p->active = active;
    p->pending = active - 1;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    int64_t b, e;
    chunk(n, active, 0, &b, &e);
    fn(ctx, b, e);
    pthread_mutex_lock(&p->mu);
    while (p->pending) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
