/* pool.h: a fixed set of worker threads that split a range of work items.
 *
 * moe_pool_run(p, fn, ctx, n) calls fn(ctx, begin, end) on contiguous,
 * disjoint sub-ranges covering [0, n), one per thread (the caller runs the
 * first), and returns when all are done. Each item is computed by exactly one
 * thread with the same code, so results do not depend on the thread count. */
#ifndef MOE_BACKEND_POOL_H
#define MOE_BACKEND_POOL_H

#include <stdint.h>

typedef struct moe_pool moe_pool;
typedef void (*moe_pool_fn)(void *ctx, int64_t begin, int64_t end);

/* n_threads >= 1 in all, including the calling thread. NULL on failure. */
moe_pool *moe_pool_new(int n_threads);
void moe_pool_free(moe_pool *p);
int moe_pool_threads(const moe_pool *p);
/* Items per thread below `min_chunk` use fewer threads (sync costs more than it saves). */
void moe_pool_run(moe_pool *p, moe_pool_fn fn, void *ctx, int64_t n, int64_t min_chunk);

#endif
