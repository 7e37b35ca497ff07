/* capture.h: turn the routing of forward calls into a moe_trace.
 *
 * One forward call = one step (the prefill: phase prefill with every prompt
 * token; each decoded token: phase decode). Per token and MoE layer: top-k
 * expert ids in rank order with their applied gate weights; optionally the
 * full router logits and lookahead predictions (see engine.h). */
#ifndef MOE_BACKEND_CAPTURE_H
#define MOE_BACKEND_CAPTURE_H

#include "../core/trace.h"
#include "engine.h"

typedef struct moe_capture moe_capture;

moe_capture *moe_capture_new(const moe_model *m, int with_logits, int lookahead_depth, int max_tokens_per_step);
/* Routing buffers for the next step (sized for max_tokens_per_step). */
moe_routing *moe_capture_routing(moe_capture *c);
/* Record the step just computed: n tokens at positions pos0.. of sequence seq. */
int moe_capture_step(moe_capture *c, int phase, uint32_t seq, int pos0, int n, moe_error *err);
/* Finish; the trace header carries n_shared and bytes per expert per precision. */
moe_trace *moe_capture_finish(moe_capture *c, const char *meta, moe_error *err);
void moe_capture_abort(moe_capture *c);

#endif
