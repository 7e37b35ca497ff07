/* test_dense_stream.c: the simulator's --stream-dense (sim/dense_stream.h) on
 * hand-worked timelines, and its refusals. Times in the comments are in
 * microseconds.
 *
 * Device "unit" (as in test_timing.c): one channel, 100 us latency, 1e6 B/s,
 * so a 1000-byte expert reads in 1100 us and a 400-byte dense block in
 * 500 us; memory 1e7 B/s: an expert computes in 100 us. Model "d3x4": three
 * layers of 4 experts, top-1, attention + router 50 us per token per layer,
 * no LM head; dense_params 400 with hidden 50, so a block is (400 - 4 x 50)
 * x 16 bits = 400 bytes. */
#include <unistd.h>

#include "../../sim/replay.h"
#include "../../sim/replay_ext.h"
#include "check.h"
#include "tracemaker.h"

static char dev_path[64], model_path[64];

static void write_profiles(void) {
    snprintf(dev_path, sizeof dev_path, "/tmp/moesim_test_dsdev_%d.ini", (int)getpid());
    snprintf(model_path, sizeof model_path, "/tmp/moesim_test_dsmodel_%d.ini", (int)getpid());
    FILE *f = fopen(dev_path, "w");
    fputs("[unit]\nio_channels = 1\nio_latency_us = 100\nio_bandwidth_GBps = 0.001\n"
          "mem_bandwidth_GBps = 0.01\npeak_tflops = 0\n", f);
    fclose(f);
    f = fopen(model_path, "w");
    fputs("[d3x4]\nlayers = 3\nexperts = 4\ntop_k = 1\nhidden = 50\nexpert_params = 500\ndense_params = 400\n"
          "attn_us = 50\nbytes_f16 = 1000\n"
          "[nodense]\nlayers = 3\nexperts = 4\ntop_k = 1\nexpert_params = 500\nattn_us = 50\nbytes_f16 = 1000\n", f);
    fclose(f);
}

#define US 1e-6
#define TOL 1e-9

/* Two steps of one token choosing expert 0 at each of the three layers,
 * capacity 4: step 0 misses everywhere, step 1 hits. */
static moe_replay_config cfg3(uint32_t budget) {
    moe_replay_config c = {.policy = "lru", .capacity = 4, .seed = 1, .device = "unit", .model = "d3x4",
                           .devices_path = dev_path, .models_path = model_path, .stream_dense = budget};
    return c;
}

static int replay(moe_trace *t, const moe_replay_config *c, moe_replay_result *r) {
    moe_error err;
    if (moe_replay(t, c, r, &err)) {
        printf("replay failed: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Without streaming: per step-0 layer attn 50, miss read 1100 (stall), run
 * 100 = 1250 x 3 = 3750; step 1: 3 x (50 + 100) = 450; total 4200. */
static void resident_reference(void) {
    moe_trace *t = make_trace(3, 4, 1, "0|0|0 / 0|0|0");
    CHECK(t);
    moe_replay_config c = cfg3(0);
    moe_replay_result r;
    CHECK(replay(t, &c, &r) == 0);
    CHECK_NEAR(r.ext->total_s, 4200 * US, TOL);
    CHECK_EQ_U(r.ext->stream_dense, 0);
    CHECK_EQ_U(r.ext->bytes_dense, 0);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

/* B = 1: each layer reads its own block at its start and waits 500.
 *  s0 L0: dense [0,500]; attn [500,550]; miss [550,1650], stall; run [1650,1750]
 *     L1: dense [1750,2250]; attn [2250,2300]; miss [2300,3400]; run [3400,3500]
 *     L2: dense [3500,4000]; attn [4000,4050]; miss [4050,5150]; run [5150,5250]
 *  s1 L0: dense [5250,5750]; attn; hit; run -> 5900; L1 -> 6550; L2 -> 7200.
 * total 7200 = compute 900 + miss stall 3300 + dense stall 6 x 500;
 * 6 reads of 400 bytes; expert bytes_read unchanged (3000). */
static void budget_one_is_serial(void) {
    moe_trace *t = make_trace(3, 4, 1, "0|0|0 / 0|0|0");
    CHECK(t);
    moe_replay_config c = cfg3(1);
    moe_replay_result r;
    CHECK(replay(t, &c, &r) == 0);
    moe_replay_ext *x = r.ext;
    CHECK_NEAR(x->total_s, 7200 * US, TOL);
    CHECK_NEAR(x->stall_dense_s, 3000 * US, TOL);
    CHECK_NEAR(x->stall_miss_s, 3300 * US, TOL);
    CHECK_NEAR(x->stall_s, 3300 * US, TOL); /* expert stalls only */
    CHECK_NEAR(x->compute_s, 900 * US, TOL);
    CHECK_EQ_U(x->stream_dense, 1);
    CHECK_EQ_U(x->dense_bytes, 400);
    CHECK_EQ_U(x->reads_dense, 6);
    CHECK_EQ_U(x->bytes_dense, 2400);
    CHECK_EQ_U(x->bytes_read, 3000);
    CHECK_EQ_U(x->reads_demand, 3);
    CHECK_NEAR(x->step_s[0], 5250 * US, TOL);
    CHECK_NEAR(x->step_s[1], 1950 * US, TOL);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

/* B = 2: the next layer's block is queued right after this layer's demand
 * read (behind it on the one channel).
 *  s0 L0 (u0): dense [0,500], stall 500; attn [500,550]; miss [550,1650];
 *              u1 queued at 550 -> [1650,2150]; stall to 1650; run [1650,1750]
 *     L1 (u1): stall 400 -> 2150; attn [2150,2200]; miss [2200,3300];
 *              u2 [3300,3800]; run [3300,3400]
 *     L2 (u2): stall 400 -> 3800; attn -> 3850; miss [3850,4950]; u3 [4950,5450];
 *              run [4950,5050]
 *  s1 L0 (u3): stall 400 -> 5450; attn -> 5500; hit; u4 [5500,6000]; run -> 5600
 *     L1 (u4): stall 400 -> 6000; attn -> 6050; u5 [6050,6550]; run -> 6150
 *     L2 (u5): stall 400 -> 6550; attn -> 6600; u6 [6600,7100] (never used); run -> 6700
 * total 6700 = compute 900 + miss 3300 + dense 500 + 5 x 400; 7 reads. */
static void budget_two_overlaps(void) {
    moe_trace *t = make_trace(3, 4, 1, "0|0|0 / 0|0|0");
    CHECK(t);
    moe_replay_config c = cfg3(2);
    moe_replay_result r;
    CHECK(replay(t, &c, &r) == 0);
    moe_replay_ext *x = r.ext;
    CHECK_NEAR(x->total_s, 6700 * US, TOL);
    CHECK_NEAR(x->stall_dense_s, 2500 * US, TOL);
    CHECK_NEAR(x->stall_miss_s, 3300 * US, TOL);
    CHECK_EQ_U(x->reads_dense, 7); /* steps x layers + B - 1 */
    CHECK_EQ_U(x->bytes_dense, 2800);
    CHECK_NEAR(x->step_s[0], 5050 * US, TOL);
    CHECK_NEAR(x->step_s[1], 1650 * US, TOL);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

/* Given bytes win over the profile's (validate passes the dense pack's):
 * 900-byte blocks read in 1000 us. B = 1: total = 4200 + 6 x 1000. */
static void given_bytes(void) {
    moe_trace *t = make_trace(3, 4, 1, "0|0|0 / 0|0|0");
    CHECK(t);
    moe_replay_config c = cfg3(1);
    c.dense_bytes = 900;
    moe_replay_result r;
    CHECK(replay(t, &c, &r) == 0);
    CHECK_NEAR(r.ext->total_s, 10200 * US, TOL);
    CHECK_EQ_U(r.ext->bytes_dense, 5400);
    moe_replay_result_free(&r);
    /* without a device: bytes and reads counted, no time */
    c.device = NULL;
    c.stream_dense = 2;
    CHECK(replay(t, &c, &r) == 0);
    CHECK_EQ_U(r.ext->reads_dense, 7);
    CHECK_EQ_U(r.ext->bytes_dense, 6300);
    CHECK_NEAR(r.ext->total_s, 0, TOL);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

static void refusals(void) {
    moe_trace *t = make_trace(3, 4, 1, "0|0|0 / 0|0|0");
    CHECK(t);
    moe_error err = {{0}};
    moe_replay_result r;
    moe_replay_config c = cfg3(3); /* three buffers hold all three layers */
    CHECK(moe_replay(t, &c, &r, &err) == -1);
    CHECK(strstr(err.msg, "hold all 3 layers"));
    c = cfg3(2);
    c.model = "nodense"; /* no dense_params */
    CHECK(moe_replay(t, &c, &r, &err) == -1);
    CHECK(strstr(err.msg, "--stream-dense needs a layer's dense bytes"));
    c.model = NULL; /* the trace header has no dense bytes either */
    c.device = NULL;
    CHECK(moe_replay(t, &c, &r, &err) == -1);
    CHECK(strstr(err.msg, "--stream-dense needs a layer's dense bytes"));
    moe_trace_free(t);
}

int main(void) {
    write_profiles();
    RUN(resident_reference);
    RUN(budget_one_is_serial);
    RUN(budget_two_overlaps);
    RUN(given_bytes);
    RUN(refusals);
    unlink(dev_path);
    unlink(model_path);
    CHECK_EXIT();
}
