/* dense_stream.c: --stream-dense on the replay's timeline (dense_stream.h). */
#include "dense_stream.h"

#include <stdlib.h>

int moe_dense_stream_bytes(const moe_replay_config *cfg, const moe_model_profile *m, uint32_t n_layers,
                           uint64_t *bytes, moe_error *err) {
    if (cfg->stream_dense >= n_layers)
        return moe_fail(err, "--stream-dense=%u: %u layer buffers hold all %u layers; drop --stream-dense (the dense "
                             "weights then stay in RAM)", cfg->stream_dense, cfg->stream_dense, n_layers);
    if (cfg->dense_bytes) {
        *bytes = cfg->dense_bytes;
        return 0;
    }
    /* the backend keeps routers in RAM (backend/dense_pack.h): a block is the rest */
    double params = m ? m->dense_params - (double)m->n_experts * m->hidden : 0;
    if (!m || m->from_trace || !(params > 0))
        return moe_fail(err, "--stream-dense needs a layer's dense bytes: give --model NAME (a profile with "
                             "dense_params and hidden; %s)", m && !m->from_trace ? m->name : "the trace header has none");
    *bytes = (uint64_t)(params * m->dense_bits / 8 + 0.5);
    return 0;
}

int moe_dense_stream_init(moe_dense_stream *d, uint32_t budget, uint32_t n_layers, uint64_t bytes, moe_error *err) {
    *d = (moe_dense_stream){.budget = budget, .n_layers = n_layers, .bytes = bytes};
    d->ready = calloc(budget, sizeof *d->ready);
    d->rid = malloc(budget * sizeof *d->rid);
    if (!d->ready || !d->rid) {
        moe_dense_stream_free(d);
        return moe_fail(err, "out of memory");
    }
    for (uint32_t b = 0; b < budget; b++) d->rid[b] = -1;
    return 0;
}

void moe_dense_stream_free(moe_dense_stream *d) {
    free(d->ready);
    free(d->rid);
    d->ready = NULL;
    d->rid = NULL;
}

/* Queue use u's block now, into buffer u mod B. */
static void issue(moe_dense_stream *d, moe_timeline *tl, uint64_t u) {
    uint32_t b = (uint32_t)(u % d->budget);
    d->ready[b] = moe_tl_read(tl, d->bytes, tl->now, MOE_STALL_DENSE);
    d->rid[b] = tl->contended ? tl->last_id : -1;
}

void moe_dense_stream_wait(moe_dense_stream *d, moe_timeline *tl, uint64_t s, uint32_t l) {
    uint64_t u = s * d->n_layers + l;
    if (d->next <= u) { /* not queued yet: the first use, or B = 1 */
        d->next = u + 1;
        issue(d, tl, u);
    }
    uint32_t b = (uint32_t)(u % d->budget);
    double ready = d->rid[b] >= 0 ? moe_tl_ready(tl, d->rid[b]) : d->ready[b];
    moe_tl_wait(tl, ready, MOE_STALL_DENSE);
}

void moe_dense_stream_ahead(moe_dense_stream *d, moe_timeline *tl, uint64_t s, uint32_t l) {
    uint64_t u = s * d->n_layers + l;
    while (d->next <= u + d->budget - 1) issue(d, tl, d->next++);
}
