/* iobench.h: micro-benchmarks of this machine's expert read path, the
 * measuring half of `moesim calibrate`.
 *
 * The timing model (core/timing.h) prices an expert read as `latency +
 * bytes / bandwidth` on one of N FIFO I/O channels. The offloaded backend
 * reads experts with N I/O threads, each doing one blocking pread at a time
 * on an O_DIRECT descriptor. So a channel is measured as exactly that: `depth`
 * threads each issuing blocking preads of `block` bytes at random 4096-aligned
 * offsets of a scratch file, and the per-read service time (the time a thread
 * spends inside one pread, plus the optional per-read `work`) is what the
 * channel fit explains.
 *
 * Typical use (calibrate):
 *   moe_iobench_prepare(dir, 256 MiB, ...)         scratch file, out of the page cache,
 *                                                  read once untimed (a host's cache below a VM)
 *   P passes, each over every point (block, depth):  moe_iobench_run (short, ~0.1 s)
 *   moe_iobench_combine per point                  median pass
 *   moe_iobench_pick_channels over depths 1..n at the expert's block size
 *   moe_iobench_fit_channel over block sizes at the picked depth
 *   moe_iobench_mem_bandwidth(256 MiB, 20)
 *   moe_iobench_cleanup(path)
 *
 * Robustness (two calibrations in a row should agree within 10%): reads go
 * to random offsets (no read-ahead helps), each thread warms up before the
 * clock starts, fits use per-read medians, and the channel count is the
 * smallest depth near the best throughput rather than the noisy argmax.
 * Interference from other processes lasts 0.5-2 s at a time on a shared
 * machine, so many short interleaved passes (12 x 0.1 s per point) agree
 * far better than a few long ones; pass_spread and foreign_bytes say when
 * the machine was too busy for the numbers to be reproducible. */
#ifndef MOE_BACKEND_IOBENCH_H
#define MOE_BACKEND_IOBENCH_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "pack.h" /* enum moe_io_mode */

#define MOE_IOBENCH_ALIGN 4096
/* Reads each thread does at least, however long they take. */
#define MOE_IOBENCH_MIN_READS 32
/* Reads each thread does before the clock starts (not counted). */
#define MOE_IOBENCH_WARMUP 4

/* Create a scratch file of `bytes` (rounded up to 1 MiB, at least 1 MiB) in
 * `dir`, named moesim-iobench-XXXXXX, filled with pseudo-random data (no
 * zero pages, nothing compressible or deduplicable), fsync'ed and dropped from
 * the page cache. Its path goes to path_out (cap bytes). progress (may be
 * NULL) is called with the fraction written, 0..1. On failure nothing is left
 * behind and the message names `dir` (not writable, ENOSPC, ...). */
int moe_iobench_prepare(const char *dir, uint64_t bytes, char *path_out, size_t cap,
                        void (*progress)(void *ctx, double frac), void *progress_ctx,
                        moe_error *err);
/* Remove the scratch file (0, or -1 with errno set). */
int moe_iobench_cleanup(const char *path);

/* Per-read hook run by the I/O thread right after each read, on the block it
 * just read, and timed as part of the read (the backend verifies a checksum
 * and converts the weights there). Non-zero return aborts the run. */
typedef int (*moe_iobench_work_fn)(void *ctx, void *buf, uint64_t block);

typedef struct moe_iobench_result {
    int mode;               /* enum moe_io_mode */
    uint64_t block;         /* bytes per read */
    uint32_t depth;         /* threads, one blocking read in flight each */
    uint64_t reads, bytes;  /* timed reads (warm-up excluded); bytes = reads * block */
    double wall_s;          /* first thread's start to last thread's end */
    double throughput_Bps;  /* bytes / wall_s, all threads together */
    /* Per-read service time (read + work), seconds, over all threads' reads.
     * Quantiles interpolate linearly between order statistics. On a shared
     * machine the distribution is often bimodal (the device alone, and the
     * device serving another tenant too): the low quantiles stay on the
     * first mode, the median jumps between modes with the other's load. */
    double p10_s, p25_s, median_s, mean_s, p90_s;
    /* Sum of service times / (depth * wall_s): the share of thread time spent
     * in reads. Well below 1 means the threads were waiting for a CPU, not
     * for the device (a CPU-bound work hook, or more threads than cores). */
    double busy_frac;
    /* moe_iobench_combine only (0 otherwise): (q75 - q25) / q50 of the passes'
     * medians. Above ~0.1 the machine was busy while measuring, and another
     * calibration is unlikely to agree within 10%. */
    double pass_spread;
    /* Bytes the file's block device read during the run beyond this run's
     * own reads (warm-up included): another process using the same disk.
     * Meaningful in direct mode; -1 where the device has no counters (a
     * network or virtual file system). combine: the sum over passes (-1 if
     * any pass had none). */
    int64_t foreign_bytes;
} moe_iobench_result;

typedef struct moe_iobench_params {
    const char *path;
    int mode;               /* enum moe_io_mode */
    uint64_t block;         /* multiple of 4096, <= file size */
    uint32_t depth;         /* >= 1 */
    double seconds;         /* wall time to aim for, >= 0 */
    uint64_t seed;          /* offsets: a deterministic sequence per thread */
    uint32_t min_reads;     /* per thread; 0 = MOE_IOBENCH_MIN_READS */
    moe_iobench_work_fn work; /* may be NULL */
    void *work_ctx;
} moe_iobench_params;

/* `depth` threads each read `block` bytes at random aligned offsets into an
 * aligned buffer for about `seconds` (and at least min_reads each). mode
 * MOE_IO_DIRECT on a file system without O_DIRECT fails with a message naming
 * the path and suggesting another --dir. Buffered and mmap modes measure
 * whatever the page cache holds (the file is advised random access). */
int moe_iobench_run(const moe_iobench_params *p, moe_iobench_result *out, moe_error *err);
/* The same without a work hook and with the default minimum. */
int moe_iobench_reads(const char *path, int mode, uint64_t block, uint32_t depth, double seconds,
                      uint64_t seed, moe_iobench_result *out, moe_error *err);

/* Combine repeated passes of one point (same mode, block, depth) into one
 * result: reads, bytes and wall time add up; the quantiles, throughput and
 * busy_frac are the median over the passes, mean the read-weighted mean,
 * and pass_spread says how much the passes disagreed.
 * Interleaving short passes over all points and taking the median pass
 * rejects a burst of interference from another tenant, where one long
 * pass per point lets the burst bend whichever points it hit. */
int moe_iobench_combine(const moe_iobench_result *passes, uint32_t n, moe_iobench_result *out,
                        moe_error *err);

typedef struct moe_iobench_fit {
    double latency_s;       /* per read, per channel */
    double bandwidth_Bps;   /* per channel */
    double max_rel_resid;   /* max |median - fit| / median over the points */
    int latency_clamped;    /* 1: the free fit gave latency < 0; refitted with latency = 0 */
} moe_iobench_fit;

/* Bytes read so far by the block device holding `path` (its
 * /sys/dev/block/MAJ:MIN/stat counter), or -1 if it has none. */
int64_t moe_iobench_device_read_bytes(const char *path);

/* Which per-read statistic a fit explains. */
enum moe_iobench_stat { MOE_IOBENCH_MEDIAN = 0, MOE_IOBENCH_P25 = 1, MOE_IOBENCH_P10 = 2, MOE_IOBENCH_MEAN = 3 };

/* Fit median service time = latency + block / bandwidth over n results at
 * the same depth and >= 2 distinct block sizes. Weighted least squares with
 * weights 1/median^2, i.e. relative residuals: every block size counts
 * equally, where an unweighted fit lets the largest block's noise set the
 * latency that small reads depend on. Exact data is recovered exactly. */
int moe_iobench_fit_channel(const moe_iobench_result *r, uint32_t n, moe_iobench_fit *out,
                            moe_error *err);
/* The same fit of another statistic (enum moe_iobench_stat): p25 / p10 give
 * the uncontended device, reproducible on a shared machine; mean prices the
 * total time of many reads, contention included. */
int moe_iobench_fit_channel_stat(const moe_iobench_result *r, uint32_t n, int stat, moe_iobench_fit *out,
                                 moe_error *err);

/* Rule: the smallest depth whose throughput is >= 90% of the best throughput
 * among the n results (distinct depths, same block). Beyond it more queue
 * depth buys less than 10%, which is within run-to-run noise on a shared
 * machine: taking the argmax would make two calibrations pick different
 * channel counts from the same plateau, and would credit the timing model
 * with parallelism the device barely has. */
#define MOE_IOBENCH_PICK_FRAC 0.90
int moe_iobench_pick_channels(const moe_iobench_result *by_depth, uint32_t n, uint32_t *channels,
                              moe_error *err);

/* Memory bandwidth in bytes/s: memcpy of a `bytes` buffer (use one far larger
 * than the caches, e.g. 256 MiB) into another, best of `repeats`, counting
 * bytes read + bytes written (2 * bytes per copy, STREAM's "Copy"
 * convention; write-allocate traffic is not counted). A copy stream moves
 * about as many bytes per second as a read-only stream of weights, so this is
 * the figure for mem_bandwidth_GBps. Page faults are taken before timing.
 * On a shared machine use >= 20 repeats: copies take ~10 ms each, and best
 * of 5 still varied by a third under load where best of 20 held within 3%.
 * Returns 0 if the buffers cannot be allocated. */
double moe_iobench_mem_bandwidth(uint64_t bytes, int repeats);

#endif
