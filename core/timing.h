/* timing.h: the event timeline that turns a replay into seconds.
 *
 * One compute lane and N I/O channels. The lane runs one operation at a time
 * (attention + router, an expert, the LM head) and its clock `now` only moves
 * forward. A read is queued at an issue time on the I/O side: the N channels
 * serve one FIFO queue (a request goes to the channel that frees first, ties
 * to the lowest channel), and a channel is busy for latency + bytes/bandwidth
 * per read (latency is not overlapped within a channel; N channels model a
 * queue depth of N). Demand misses and prefetches share the same queue, so a
 * demand read issued after a prefetch waits behind it.
 *
 * When the lane needs data that has not arrived it waits; the wait is a
 * stall, booked as a miss stall or a late-prefetch stall by the caller's
 * `kind`. Everything is plain arithmetic on doubles in seconds: deterministic
 * and independent of the machine the simulation runs on.
 *
 * The replay engine (sim/replay_ext.c) and the real backend use this same
 * timeline, so a predicted and a measured timeline can be compared term by
 * term. */
#ifndef MOE_TIMING_H
#define MOE_TIMING_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum moe_stall_kind { MOE_STALL_MISS = 0, MOE_STALL_LATE_PREFETCH = 1 };
enum moe_compute_kind { MOE_COMPUTE_DENSE = 0, MOE_COMPUTE_EXPERT = 1, MOE_COMPUTE_SPECULATIVE = 2 };

typedef struct moe_timeline {
    double now;              /* compute lane clock, seconds */
    uint32_t n_channels;
    double latency_s;        /* per read, per channel */
    double bandwidth_Bps;    /* per channel; INFINITY allowed */
    double *ch_free;         /* n_channels: when each channel is next free */
    /* accounting */
    double compute_s[3];     /* by enum moe_compute_kind */
    double stall_s[2];       /* by enum moe_stall_kind */
    double io_busy_s;        /* sum over channels of busy time */
    uint64_t reads, bytes_read;
    uint64_t reads_kind[2];  /* demand (MOE_STALL_MISS) / prefetch reads */
    uint64_t bytes_kind[2];
} moe_timeline;

int moe_tl_init(moe_timeline *tl, uint32_t channels, double latency_s, double bandwidth_Bps,
                moe_error *err);
void moe_tl_free(moe_timeline *tl);
/* Back to time 0 with all counters cleared. */
void moe_tl_reset(moe_timeline *tl);

/* Queue a read of `bytes` issued at `issue` (>= previous issues);
 * kind 0 = demand, 1 = prefetch. Returns the time its data is available. */
double moe_tl_read(moe_timeline *tl, uint64_t bytes, double issue, int kind);
/* Run an operation of `seconds` on the lane. Returns its end time. */
double moe_tl_compute(moe_timeline *tl, double seconds, int kind);
/* Wait on the lane until `ready`; returns the stall added (0 if ready <= now). */
double moe_tl_wait(moe_timeline *tl, double ready, int kind);
/* Fraction of channel-time spent busy over [0, until]. */
double moe_tl_io_utilisation(const moe_timeline *tl, double until);

/* Roofline time of one operation: max(bytes / mem_bandwidth, flops / peak)
 * plus a fixed overhead. A zero or infinite rate removes its term. */
double moe_roofline_s(double bytes, double flops, double mem_bandwidth_Bps, double peak_flops,
                      double overhead_s);

/* Summary statistics of per-step durations. */
typedef struct moe_time_stats {
    uint64_t n;
    double mean, p50, p99, sum;
} moe_time_stats;
/* Sorts v in place. Percentiles are nearest-rank (p99 of 100 values = the 99th). */
moe_time_stats moe_time_stats_of(double *v, size_t n);

#endif
