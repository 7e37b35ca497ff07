/* device_profile.h: device profiles (experiments/devices.ini) and model
 * profiles (experiments/models.ini) that price a replay in seconds.
 *
 * Device section keys (all optional except io_bandwidth_GBps):
 *   io_channels         I/O channels serving the FIFO read queue (default 1)
 *   io_latency_us       fixed cost per read on a channel (default 0)
 *   io_bandwidth_GBps   bytes per second per channel, in 1e9 bytes
 *   mem_bandwidth_GBps  memory bandwidth the compute reads weights at
 *   peak_tflops         dense half-precision matmul peak (1e12 FLOP/s)
 *   expert_overhead_us  fixed cost per expert computed (kernel launches)
 *   layer_overhead_us   fixed cost per layer (norms, router, framework)
 *   memory_GiB, description   informational
 * Measured by `moesim calibrate` on the real backend (all or none; with
 * them, the compute terms below replace the roofline, because the backend's
 * CPU kernels are far from it and attention grows with the context):
 *   model               the model the compute terms were measured with; a
 *                       trace of another model is refused
 *   dense_us, dense_us_per_token   one layer's attention + router + norms for
 *                       a step of T tokens: dense_us + dense_us_per_token*T
 *   attn_ns_per_ctx     plus this per attended (token, key) pair: a step's
 *                       tokens at positions p attend to p+1 keys each
 *   expert_us, expert_us_per_token one routed expert serving n tokens
 *                       (computed in f32 whatever its stored precision)
 *   head_us             final norm + LM head of a step (its last token)
 *   io_busy_latency_us, io_busy_bandwidth_GBps   a read's latency and bandwidth
 *                       while the compute lane is busy (core/timing.h,
 *                       contention); absent = reads do not slow down
 *   io_wake_us          extra time of a read issued to an idle I/O channel (the
 *                       thread serving it wakes up, and on a VM the first read
 *                       of a burst completes while every vCPU sleeps)
 *   io_resume_us        extra time of a stall (the waiting thread wakes up)
 *                       (calibrate: bursts of 1, 2 and 4 demand reads of the
 *                       model's pack through the backend's queue; the I/O
 *                       thread's own time over the burst size gives the
 *                       per-read time, which anchors io_latency_us or the
 *                       bandwidths at one expert, and the first read's extra;
 *                       the rest of the burst's time gives the thread terms)
 *   threads, io_mode, calibrated   informational (how it was measured)
 * Model section keys:
 *   layers, experts, top_k, shared (informational), hidden
 *   expert_params       parameters of one routed expert (w1, w2, w3)
 *   dense_params        per-layer parameters always resident and always run:
 *                       attention, router, norms, shared experts
 *   head_params         parameters read once per step (LM head)
 *   dense_bits          bits per dense weight (default 16)
 *   quant_overhead_bits extra bits per weight of a quantised expert for its
 *                       group scales/zeros (default 0.5 = fp16 scale + zero
 *                       per group of 64)
 *   attn_us             if > 0: attention + router time per token per layer,
 *                       replacing the roofline estimate from dense_params
 *   bytes_f32 .. bytes_q2  explicit bytes per expert per precision, replacing
 *                       expert_params * bits / 8
 * Bytes per expert from a trace header, where present, win over the profile. */
#ifndef MOE_DEVICE_PROFILE_H
#define MOE_DEVICE_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "trace.h"

#define MOE_DEVICES_INI "experiments/devices.ini"
#define MOE_MODELS_INI "experiments/models.ini"
/* Where `moesim calibrate` writes this machine's profile by default: measured
 * here, so never committed. */
#define MOE_LOCAL_DEVICES_INI "results/devices.local.ini"

typedef struct moe_device_profile {
    char name[64];
    uint32_t io_channels;
    double io_latency_s, io_bandwidth_Bps;
    double mem_bandwidth_Bps, peak_flops;
    double expert_overhead_s, layer_overhead_s;
    int measured_compute;   /* calibrated backend compute terms present */
    uint32_t threads;       /* compute threads they were measured with (0 = unknown) */
    char model[64];
    double dense_us, dense_us_per_token, attn_ns_per_ctx, expert_us, expert_us_per_token, head_us;
    double io_busy_latency_s, io_busy_bandwidth_Bps; /* 0 = no contention term */
    double io_wake_s, io_resume_s;
    char canonical[1024]; /* "name:k=v,..." with every effective value */
} moe_device_profile;

typedef struct moe_model_profile {
    char name[80];
    uint32_t n_layers, n_experts, top_k, n_shared, hidden;
    double expert_params, dense_params, head_params;
    double dense_bits, quant_overhead_bits, attn_s;
    uint64_t expert_bytes[MOE_PREC_COUNT];
    int from_trace;      /* 1: geometry from the trace header, no profile */
    char canonical[512];
} moe_model_profile;

/* Nominal bits of each precision tier: 32, 16, 8, 4, 3, 2. */
extern const double moe_prec_bits[MOE_PREC_COUNT];
extern const char *const moe_prec_name[MOE_PREC_COUNT]; /* "f32", "f16", "q8", "q4", "q3", "q2" */
/* Tier for a bit width (32/16/8/4/3/2), -1 otherwise. */
int moe_prec_of_bits(long bits);

/* Load section `name` (case-insensitive) of a devices file. Unknown names
 * list the known ones; unknown keys are errors with file:line. */
int moe_device_profile_load(const char *path, const char *name, moe_device_profile *out, moe_error *err);
/* Rebuild d->canonical from its fields (after changing them in memory, as
 * `validate --recalibrate` does). */
void moe_device_profile_canonicalize(moe_device_profile *d);
/* Load a model profile; spec is "name" or "name:dense_bits=4,..." where the
 * options override the file (keys: dense_bits, quant_overhead_bits, attn_us). */
int moe_model_profile_load(const char *path, const char *spec, moe_model_profile *out, moe_error *err);
/* A model profile from a trace header alone (expert bytes; params from the
 * f16 bytes; no dense part). Fails if the header has no bytes. */
int moe_model_profile_from_trace(const moe_trace *t, moe_model_profile *out, moe_error *err);
/* Check the profile's geometry against the trace and take the trace header's
 * bytes where they are non-zero. */
int moe_model_profile_bind_trace(moe_model_profile *m, const moe_trace *t, moe_error *err);

/* Seconds of attention + router + dense compute of one layer for `tokens`;
 * ctx = sum over those tokens of (position + 1), the keys they attend to
 * (used only by calibrated profiles; 0 where unknown). */
double moe_profile_dense_s(const moe_device_profile *d, const moe_model_profile *m, uint32_t tokens,
                           double ctx);
/* Seconds of one expert at precision `prec` serving `tokens` tokens. */
double moe_profile_expert_s(const moe_device_profile *d, const moe_model_profile *m, int prec, uint32_t tokens);
/* Seconds of the LM head for `tokens`. */
double moe_profile_head_s(const moe_device_profile *d, const moe_model_profile *m, uint32_t tokens);

#endif
