/* dense_stream.h: the simulator's model of --stream-dense (the offloaded
 * backend's dense stream, backend/offload.h), on the replay's timeline.
 *
 * Each (step, layer) is one more use of a layer's dense block (norms,
 * attention, shared expert; `bytes` each), read on the same I/O channels
 * as the experts, into one of B layer buffers. Uses are numbered
 * u = step * layers + layer, and the controller is the backend's:
 *  - at layer u's issue point (right after its demand reads are queued,
 *    before any prefetch) the blocks of uses u+1 .. u+B-1 not yet queued are
 *    queued (kind MOE_STALL_DENSE), so they wait behind that layer's demand
 *    reads; uses cross step bounds (the last B-1 reads of a trace are never
 *    used, as in the backend);
 *  - at the start of layer u, before its dense compute, the lane waits for
 *    its block (a dense stall), queued then if it is not yet (the first
 *    use; B = 1).
 * Every layer is a MoE layer (the backend refuses models with dense-MLP
 * layers), so the trace's layers are the model's. */
#ifndef MOE_DENSE_STREAM_H
#define MOE_DENSE_STREAM_H

#include <stdint.h>

#include "../core/device_profile.h"
#include "../core/error.h"
#include "../core/timing.h"
#include "replay.h"

typedef struct moe_dense_stream {
    uint32_t budget, n_layers; /* B, layers */
    uint64_t bytes;            /* one block */
    uint64_t next;             /* next use to queue */
    double *ready;             /* per buffer: when its block is in */
    int64_t *rid;              /* per buffer: the read (contended timeline), -1 none */
} moe_dense_stream;

/* One layer's block bytes: cfg->dense_bytes, else the model profile's
 * (dense_params - experts x hidden) x dense_bits / 8; refused when neither
 * is known, or when B does not leave a layer to stream (B >= layers). */
int moe_dense_stream_bytes(const moe_replay_config *cfg, const moe_model_profile *m, uint32_t n_layers,
                           uint64_t *bytes, moe_error *err);
int moe_dense_stream_init(moe_dense_stream *d, uint32_t budget, uint32_t n_layers, uint64_t bytes, moe_error *err);
void moe_dense_stream_free(moe_dense_stream *d);
/* The start of layer l of step s: wait for its block (queue it first if needed). */
void moe_dense_stream_wait(moe_dense_stream *d, moe_timeline *tl, uint64_t s, uint32_t l);
/* Layer l's issue point: queue the uses the budget allows ahead. */
void moe_dense_stream_ahead(moe_dense_stream *d, moe_timeline *tl, uint64_t s, uint32_t l);

#endif
