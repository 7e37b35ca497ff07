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
 * Contention (moe_tl_set_contention, from a calibrated profile's
 * io_busy_latency_us / io_busy_bandwidth_GBps): on some machines a read is
 * slower while the compute lane is busy (a VM whose disk the host emulates
 * on the same cores: `moesim validate` found ~110 us per expert read with the
 * CPU idle and ~190 us beside a busy one). A read then does its work at the
 * idle rate while the lane stalls and at the busy rate while it computes, so
 * its end depends on what the lane does after it was issued; moe_tl_read
 * returns the end estimated as of `now` (the lane idle from then on) and
 * moe_tl_ready(id) re-estimates it later. An estimate at or before `now` is
 * final. Without contention both rates are equal and a read's end is fixed
 * at issue, exactly as before.
 *
 * The replay engine (sim/replay_engine.c) prices a trace on this timeline; the
 * offloaded backend (backend/offload.c) measures the same terms (dense and
 * expert compute, stalls by kind, I/O busy time) with a clock, so predicted
 * and measured runs are compared term by term (`moesim validate`). */
#ifndef MOE_TIMING_H
#define MOE_TIMING_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* The kind of a read (moe_tl_read) and of the stall waiting for it: a
 * demand miss, a prefetch, or a streamed layer's dense block (--stream-dense,
 * sim/dense_stream.h). */
enum moe_stall_kind { MOE_STALL_MISS = 0, MOE_STALL_LATE_PREFETCH = 1, MOE_STALL_DENSE = 2 };
enum moe_compute_kind { MOE_COMPUTE_DENSE = 0, MOE_COMPUTE_EXPERT = 1, MOE_COMPUTE_SPECULATIVE = 2 };

typedef struct moe_timeline {
    double now;              /* compute lane clock, seconds */
    uint32_t n_channels;
    double latency_s;        /* per read, per channel */
    double bandwidth_Bps;    /* per channel; INFINITY allowed */
    double *ch_free;         /* n_channels: when each channel is next free */
    /* accounting */
    double compute_s[3];     /* by enum moe_compute_kind */
    double stall_s[3];       /* by enum moe_stall_kind */
    double io_busy_s;        /* sum over channels of busy time */
    uint64_t reads, bytes_read;
    uint64_t reads_kind[3];  /* demand (MOE_STALL_MISS) / prefetch / dense reads */
    uint64_t bytes_kind[3];
    /* contention (see above); contended == 0 leaves everything below unused */
    int contended;
    double busy_latency_s, busy_bandwidth_Bps;
    double *seg;             /* lane busy segments [seg[2i], seg[2i+1]), in time order */
    size_t n_seg, cap_seg;
    struct moe_tl_io *rd;    /* every read: issue, bytes, channel, previous read on it */
    size_t n_rd, cap_rd;
    int64_t *ch_last;        /* n_channels: last read queued on each channel, -1 none */
    int64_t last_id;         /* id of the last moe_tl_read */
    double wake_s;           /* extra time of a read issued to an idle channel (moe_tl_set_wake) */
    double resume_s;         /* extra time of a lane resuming after a wait */
} moe_timeline;

typedef struct moe_tl_io {
    double issue, end;       /* end: the estimate; final once <= the lane's now */
    double wake;             /* wake_s if its channel was idle when it was issued, else 0 */
    uint64_t bytes;
    int64_t prev;            /* previous read on the same channel, -1 */
    int final;
} moe_tl_io;

int moe_tl_init(moe_timeline *tl, uint32_t channels, double latency_s, double bandwidth_Bps,
                moe_error *err);
void moe_tl_free(moe_timeline *tl);
/* Back to time 0 with all counters cleared. */
void moe_tl_reset(moe_timeline *tl);

/* Queue a read of `bytes` issued at `issue` (>= previous issues);
 * kind: enum moe_stall_kind (any other non-zero value counts as a prefetch). Returns the time its data is available
 * (contended: the estimate as of now); its id is then tl->last_id. */
double moe_tl_read(moe_timeline *tl, uint64_t bytes, double issue, int kind);
/* Reads slow down to latency + bytes / bandwidth while the lane computes.
 * Call on a fresh timeline; fails on bad values. */
int moe_tl_set_contention(moe_timeline *tl, double busy_latency_s, double busy_bandwidth_Bps, moe_error *err);
/* Thread wake-ups, measured by calibrate through the backend's own queue: a
 * read issued to an idle channel starts wake_s late (the thread serving the
 * channel sleeps; `io_wake_us`), and a lane that had to wait for data
 * resumes resume_s after it arrives (the waiting thread sleeps;
 * `io_resume_us`). Both 0 unless a profile measured them. */
void moe_tl_set_wake(moe_timeline *tl, double wake_s, double resume_s);
/* The (re-)estimated end of read `id` as of now; exact without contention. */
double moe_tl_ready(moe_timeline *tl, int64_t id);
/* Re-estimate every read as of now (before the totals are read at the end). */
void moe_tl_settle(moe_timeline *tl);
/* Run an operation of `seconds` on the lane. Returns its end time. */
double moe_tl_compute(moe_timeline *tl, double seconds, int kind);
/* Wait on the lane until `ready` (plus resume_s); returns the stall added
 * (0 if ready <= now). */
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
