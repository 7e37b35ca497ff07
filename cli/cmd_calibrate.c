/* cmd_calibrate.c: `moesim calibrate` — measure this machine and the backend
 * and write a device profile the simulator prices runs with.
 *
 * I/O: O_DIRECT reads of expert-sized blocks of a scratch file, each followed
 * by the backend's own per-read work (checksum; an f32 block's copy), at
 * queue depths 1..N; the channel count is picked by moe_iobench_pick_channels
 * and latency + bandwidth per channel are fitted at that depth over four
 * block sizes, once with the CPU idle and once beside a busy core (the
 * timing model's contention term, core/timing.h). Short passes over all
 * points are interleaved and repeated, and each point keeps its median pass
 * (a burst from another tenant bends one pass, not the fit).
 * Compute: the backend itself (resident, same thread count) runs a
 * calibration text that is not any validation prompt (seeded pseudo-random
 * bytes) in prefill steps of 1..32 tokens and in decode steps, recording each
 * layer's dense part (tokens, attended keys, seconds), each layer's expert
 * block (experts run, token slots, seconds) and each step's LM head; least
 * squares then fits
 *   dense  = dense_us + dense_us_per_token * T + attn_ns_per_ctx * keys
 *   expert = expert_us + expert_us_per_token * n   (the block's fixed cost
 *            goes to dense_us, the simulator's per-layer term)
 *   head   = head_us (one row per step, as generation computes it)
 * after dropping the slowest 2% of samples (preemptions), which would
 * otherwise pull a fit on a shared two-core machine. */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>


#include "../backend/iobench.h"
#include "../backend/matmul.h"
#include "../backend/pack.h"
#include "../core/device_profile.h"
#include "../core/timing.h"
#include "../core/trace_formats.h"
#include "calib_probe.h"
#include "cli.h"
#include "commands.h"

static const char calibrate_usage[] =
    "usage: moesim calibrate --model DIR [options]\n"
    "\n"
    "Measure this machine and the backend, and write a device profile (a section of an\n"
    "INI file) that `moesim validate`, `run --device` and `plan` price runs with:\n"
    "io_channels, io_latency_us, io_bandwidth_GBps from O_DIRECT reads of expert-sized\n"
    "blocks (plus the backend's checksum per read), io_busy_latency_us and\n"
    "io_busy_bandwidth_GBps from the same reads beside a busy core, io_wake_us and\n"
    "io_resume_us from demand reads of DIR's own pack through the backend's I/O thread (which\n"
    "also anchor the idle read time of one expert), mem_bandwidth_GBps, and\n"
    "the backend's own compute cost for DIR's model (dense_us, dense_us_per_token,\n"
    "attn_ns_per_ctx, expert_us, expert_us_per_token, head_us).\n"
    "\n"
    "  --model DIR        the model whose compute is measured (its expert size sets the\n"
    "                     read size)\n"
    "  --dir D            where the scratch file goes: the disk experts are read from\n"
    "                     (default: the model directory)\n"
    "  --size GiB         scratch file size (default 0.5, at least four expert blocks);\n"
    "                     larger than the page cache\n"
    "                     is not needed: reads are O_DIRECT\n"
    "  -o, --output FILE  profile file to write or update (default " MOE_LOCAL_DEVICES_INI ")\n"
    "  --name NAME        section name (default this-machine)\n"
    "  --threads N        compute threads (default: half the online CPUs); validate uses\n"
    "                     the same\n"
    "  --max-depth N      I/O queue depths tried, 1..N (default: the CPUs left over, so\n"
    "                     compute and I/O threads do not share a CPU)\n"
    "  --io MODE          direct (default), buffered or mmap\n"
    "  --seconds S        time per I/O point per pass (default 0.1; 12 passes)\n"

    "  -h, --help         this text\n"
    "\n"
    "Two calibrations in a row agree within about 10% on a quiet machine; the report\n"
    "prints each fit's residual so a noisy one can be seen.\n";

typedef struct copts {
    const char *model, *dir, *out, *name;
    double size_gib, seconds;
    uint64_t threads, max_depth;
    int io_mode;
} copts;

/* The backend's per-read work on a block, as its I/O thread does it
 * (offload.c): the checksum, plus the copy out of an f32 block; bf16 and
 * quantized blocks are computed on where they were read. */
typedef struct work_ctx {
    moe_pack fake;  /* geometry only: dtype, inter, hidden, expert_bytes */
    float *gu, *down;
    volatile uint64_t sink;
} work_ctx;

static int read_work(void *ctx, void *buf, uint64_t block) {
    work_ctx *w = ctx;
    w->sink ^= moe_pack_check64(buf, block < w->fake.expert_bytes ? block : w->fake.expert_bytes);
    if (w->fake.dtype == MOE_PACK_F32 && block >= w->fake.expert_bytes) moe_pack_to_f32(&w->fake, buf, w->gu, w->down);
    return 0;
}

static void progress(void *ctx, double f) {
    (void)ctx;
    if (cli_is_tty(2)) fprintf(stderr, "\rmoesim calibrate: writing the scratch file %3.0f%%", 100 * f);
}

/* ---- I/O ----------------------------------------------------------------- */

typedef struct io_fit {
    uint32_t channels;
    moe_iobench_fit fit, busy; /* CPU idle, CPU busy computing */
    moe_iobench_result depth[16];
    uint32_t n_depth;
} io_fit;

/* The busy core for the second set of reads: in the offloaded backend reads
 * overlap expert compute, and on a VM whose disk the host emulates
 * (Firecracker here) a busy guest CPU slows every read (by ~80 us of ~110 us
 * in our measurement). The load is what an expert MLP does: dot products
 * over a weight-sized array. */
typedef struct load_ctx {
    _Atomic int stop;
    float *w;
    size_t n;
    volatile float sink;
} load_ctx;

static void *load_main(void *p) {
    load_ctx *l = p;
    while (!atomic_load_explicit(&l->stop, memory_order_relaxed))
        for (size_t i = 0; i + 128 <= l->n; i += 128) l->sink += moe_dot(l->w + i, l->w, 128);
    return NULL;
}

static int start_load(load_ctx *l, pthread_t *th, moe_error *err) {
    atomic_store(&l->stop, 0);
    if (pthread_create(th, NULL, load_main, l)) return moe_fail(err, "cannot start the compute-load thread");
    return 0;
}

static void stop_load(load_ctx *l, pthread_t th) {
    atomic_store(&l->stop, 1);
    pthread_join(th, NULL);
}

/* Combine the passes of each block size and fit latency + bandwidth. */
static int fit_blocks(const moe_iobench_result *pb, int passes, int nb, moe_iobench_fit *fit, moe_error *err) {
    moe_iobench_result pts[8], v[32]; /* nb <= 8 block sizes, passes <= 32 */
    for (int b = 0; b < nb; b++) {
        for (int pass = 0; pass < passes; pass++) v[pass] = pb[(size_t)pass * nb + b];
        if (moe_iobench_combine(v, (uint32_t)passes, &pts[b], err)) return -1;
        /* the timeline adds read times up, so the mean read (tail included)
         * is the figure to fit, not the typical (median) one */
        pts[b].median_s = pts[b].mean_s;
    }
    return moe_iobench_fit_channel(pts, (uint32_t)nb, fit, err);
}

/* The depth sweep (CPU idle) picks the channel count; then reads of four
 * block sizes at that depth are timed with the CPU idle and under a compute
 * load, in interleaved passes, for the two rates of the timing model's
 * contention term. */
static int bench_io(const copts *o, uint64_t expert_block, work_ctx *wc, io_fit *f, moe_error *err) {
    char path[4096];
    const char *dir = o->dir ? o->dir : o->model;
    load_ctx load = {.n = 1 << 18};
    /* the largest block timed is twice an expert's; the file holds at least
     * two of those, so reads land at different offsets */
    uint64_t size = (uint64_t)(o->size_gib * 1073741824.0), need = 4 * ((expert_block + 4095) / 4096 * 4096);
    if (size < need) {
        fprintf(stderr, "moesim calibrate: scratch file %.2f GiB instead of --size %.2f: four expert blocks\n",
                (double)need / 1073741824.0, o->size_gib);
        size = need;
    }
    if (moe_iobench_prepare(dir, size, path, sizeof path, progress, NULL, err)) return -1;
    if (cli_is_tty(2)) fputc('\n', stderr);
    enum { PASSES = 12, NB = 4 }; /* many short interleaved passes: a burst from another tenant bends a few */
    uint64_t blocks[NB] = {expert_block / 4, expert_block / 2, expert_block, expert_block * 2};
    for (int i = 0; i < NB; i++) blocks[i] = (blocks[i] + 4095) / 4096 * 4096;
    uint32_t D = (uint32_t)o->max_depth;
    moe_iobench_result *pd = calloc((size_t)PASSES * D, sizeof *pd);
    moe_iobench_result pi[PASSES * NB], pl[PASSES * NB];
    int rc = -1;
    if (!pd || !(load.w = calloc(load.n, sizeof *load.w))) {
        moe_fail(err, "out of memory");
        goto out;
    }
    moe_iobench_params p = {.path = path, .mode = o->io_mode, .seconds = o->seconds, .work = read_work, .work_ctx = wc};
    for (int pass = 0; pass < PASSES; pass++)
        for (uint32_t d = 1; d <= D; d++) {
            p.block = expert_block;
            p.depth = d;
            p.seed = 1000u * (unsigned)pass + d;
            if (cli_is_tty(2)) fprintf(stderr, "\rmoesim calibrate: reads, pass %d/%d, depth %u      ", pass + 1, PASSES, d);
            if (moe_iobench_run(&p, &pd[(size_t)pass * D + (d - 1)], err)) goto out;
        }
    f->n_depth = D;
    for (uint32_t d = 0; d < D; d++) {
        moe_iobench_result v[PASSES];
        for (int pass = 0; pass < PASSES; pass++) v[pass] = pd[(size_t)pass * D + d];
        if (moe_iobench_combine(v, PASSES, &f->depth[d], err)) goto out;
    }
    if (moe_iobench_pick_channels(f->depth, D, &f->channels, err)) goto out;
    /* a pass hit by another tenant's burst can make a fit meaningless (read
     * time not growing with the block size): measure again, twice at most */
    for (int attempt = 0;; attempt++) {
        for (int pass = 0; pass < PASSES; pass++)
            for (int loaded = 0; loaded < 2; loaded++) {
                pthread_t th;
                if (loaded && start_load(&load, &th, err)) goto out;
                for (int b = 0; b < NB && rc == -1; b++) {
                    p.block = blocks[b];
                    p.depth = f->channels;
                    p.seed = 7000u + 1000u * (unsigned)attempt + 100u * (unsigned)pass + 10u * (unsigned)loaded + (unsigned)b;
                    if (cli_is_tty(2))
                        fprintf(stderr, "\rmoesim calibrate: reads, pass %d/%d, %llu KiB blocks%s   ", pass + 1, PASSES,
                                (unsigned long long)blocks[b] / 1024, loaded ? ", CPU busy" : "");
                    if (moe_iobench_run(&p, &(loaded ? pl : pi)[(size_t)pass * NB + b], err)) rc = -2;
                }
                if (loaded) stop_load(&load, th);
                if (rc == -2) {
                    rc = -1;
                    goto out;
                }
            }
        if (cli_is_tty(2)) fputc('\n', stderr);
        if (!fit_blocks(pi, PASSES, NB, &f->fit, err) && !fit_blocks(pl, PASSES, NB, &f->busy, err)) break;
        if (attempt == 2) goto out;
        fprintf(stderr, "moesim calibrate: %s; measuring the reads again\n", err->msg);
    }
    printf("I/O (%s, %s): queue depth -> throughput at %llu-byte reads:", moe_io_mode_name(o->io_mode), dir,
           (unsigned long long)expert_block);
    for (uint32_t d = 0; d < D; d++) printf(" %u: %.0f MB/s", d + 1, f->depth[d].throughput_Bps / 1e6);
    printf("\n  channels %u (smallest depth within 10%% of the best); per channel, CPU idle: latency %.1f us, "
           "bandwidth %.0f MB/s (max residual %.1f%%);\n  a CPU busy computing: latency %.1f us, bandwidth %.0f MB/s "
           "(max residual %.1f%%)\n",
           f->channels, f->fit.latency_s * 1e6, f->fit.bandwidth_Bps / 1e6, 100 * f->fit.max_rel_resid,
           f->busy.latency_s * 1e6, f->busy.bandwidth_Bps / 1e6, 100 * f->busy.max_rel_resid);
    rc = 0;
out:
    free(load.w);
    free(pd);
    moe_iobench_cleanup(path);
    return rc;
}

/* Demand reads of a pack of this model through the backend's queue
 * (calib_pack_reads): DIR/experts.pack when it is one, else a temporary
 * one in --dir. */
static int bench_wake(const copts *o, const moe_model *m, uint64_t block, calib_reads *r, moe_error *err) {
    char pack[4096], tmp[4096] = "";
    moe_pack p;
    snprintf(pack, sizeof pack, "%s/experts.pack", o->model);
    int usable = moe_pack_open(&p, pack, MOE_IO_BUFFERED, err) == 0;
    if (usable) {
        usable = moe_pack_check_model(&p, m, err) == 0;
        moe_pack_close(&p);
    }
    if (!usable) {
        snprintf(tmp, sizeof tmp, "%s/moesim-calibrate-%d.pack", o->dir ? o->dir : o->model, (int)getpid());
        if (moe_pack_write(m, tmp, strcmp(m->dtype, "BF16") ? MOE_PACK_F32 : MOE_PACK_BF16, NULL, NULL, err)) return -1;
        snprintf(pack, sizeof pack, "%s", tmp);
    }
    int rc = calib_pack_reads(m, pack, o->io_mode, block, stdout, r, err);
    if (tmp[0]) unlink(tmp);
    return rc;
}

/* Anchor the idle read fit (a scratch file, read in a tight loop) at one
 * expert block on `read_s`, the backend's own read of the model's pack
 * (bench_wake): the two differ where the guest's disk is a file the host
 * caches (the pack runs live in the host's cache, a fresh scratch file
 * partly does not: 92 ms against 130 ms per 336 MiB expert) and in what a
 * read costs beside a sleeping CPU. A pack read that is slower goes to the
 * latency (a per-read cost); one that is faster scales the read (latency
 * and time per byte alike). The busy read moves with it so that busy over
 * idle at one expert stays what the scratch-file passes measured side by
 * side (they alternate idle and busy, so a drift of the host reaches both;
 * moving the idle read alone once left a profile whose busy read was a
 * quarter of its idle one, and `validate --recalibrate`, which scales both
 * by one factor, kept that). One channel only: the probe reads at depth 1. */
static void anchor_reads(io_fit *io, uint64_t block, double read_s) {
    double fit = io->fit.latency_s + (double)block / io->fit.bandwidth_Bps;
    double busy = io->busy.latency_s + (double)block / io->busy.bandwidth_Bps, ratio = busy / fit;
    if (!(read_s > 0) || io->channels != 1) {
        printf("  idle read not anchored (%s): %.1f us per expert from the scratch file\n",
               io->channels != 1 ? "more than one channel" : "no per-read time from the pack", fit * 1e6);
        return;
    }
    if (read_s >= fit) {
        io->fit.latency_s += read_s - fit;
        io->busy.latency_s += ratio * (read_s - fit);
    } else { /* the scale of the whole read: latency and time per byte alike */
        double k = read_s / fit;
        io->fit.latency_s *= k;
        io->fit.bandwidth_Bps /= k;
        io->busy.latency_s *= k;
        io->busy.bandwidth_Bps /= k;
    }
    printf("  idle read anchored on the pack: %.1f us per expert (the scratch file's fit: %.1f us): latency %.1f us, "
           "bandwidth %.0f MB/s; busy read %.1f us (x%.2f of idle, as the scratch file's): latency %.1f us, "
           "bandwidth %.0f MB/s\n",
           read_s * 1e6, fit * 1e6, io->fit.latency_s * 1e6, io->fit.bandwidth_Bps / 1e6, ratio * read_s * 1e6, ratio,
           io->busy.latency_s * 1e6, io->busy.bandwidth_Bps / 1e6);
}

/* ---- the profile file ----------------------------------------------------- */

/* Write `section` into FILE, replacing a section of the same name and
 * keeping every other line; atomically. */
static int write_section(const char *path, const char *name, const char *section, moe_error *err) {
    size_t len = 0;
    char *old = access(path, F_OK) == 0 ? moe_read_file(path, &len, err) : NULL;
    if (!old && access(path, F_OK) == 0) return -1;
    moe_atomic_file af;
    if (moe_atomic_open(&af, path, err)) {
        free(old);
        return -1;
    }
    if (!old) fprintf(af.f, "# Device profiles measured on this machine by `moesim calibrate` (not committed:\n"
                            "# they describe this host). Keys: core/device_profile.h.\n");
    int skipping = 0, last_blank = 0;
    for (char *line = old, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (line[0] == '[') {
            char *end = strchr(line, ']');
            skipping = end && (size_t)(end - line - 1) == strlen(name) && !strncasecmp(line + 1, name, strlen(name));
        }
        if (!skipping) {
            fprintf(af.f, "%s\n", line);
            last_blank = !*line;
        }
    }
    /* the section starts with a blank line: no more than one in a row */
    fputs(last_blank ? section + 1 : section, af.f);
    free(old);
    return moe_atomic_commit(&af, err);
}

static int calibrate(const copts *o) {
    moe_error err = {{0}};
    int rc = 1;
    moe_model *m = calib_load_model(o->model, &err);
    work_ctx wc;
    memset(&wc, 0, sizeof wc);
    if (!m) return cli_error("calibrate", &err);
    /* the read path's geometry: the pack auto-packing writes (bf16 stays bf16, else f32) */
    wc.fake.dtype = strcmp(m->dtype, "BF16") && strcmp(m->dtype, "pack") ? MOE_PACK_F32 : MOE_PACK_BF16;
    wc.fake.hidden = (uint32_t)m->cfg.hidden;
    wc.fake.inter = (uint32_t)m->cfg.expert_inter;
    wc.fake.expert_bytes = moe_expert_params(m) * (wc.fake.dtype == MOE_PACK_F32 ? 4 : 2);
    wc.fake.stride = (wc.fake.expert_bytes + MOE_PACK_ALIGN - 1) / MOE_PACK_ALIGN * MOE_PACK_ALIGN;
    wc.gu = malloc(2 * moe_expert_params(m) / 3 * sizeof(float));
    wc.down = malloc(moe_expert_params(m) / 3 * sizeof(float) + 16);
    io_fit io = {0};
    calib_compute_fit cf;
    memset(&cf, 0, sizeof cf);
    if (!wc.gu || !wc.down) {
        moe_fail(&err, "out of memory");
        goto out;
    }
    /* the pack's reads first: writing and deleting the scratch file (on a
     * disk mounted with discard, the host then punches the hole) left the
     * pack's reads 2-3x slower for a while (OLMoE: 9-12 ms per expert
     * right after, 3.6 ms in a process of their own) */
    calib_reads rd = {0};
    if (bench_wake(o, m, wc.fake.stride, &rd, &err)) goto out;
    if (bench_io(o, wc.fake.stride, &wc, &io, &err)) goto out;
    anchor_reads(&io, wc.fake.stride, rd.read_s);
    double mem = moe_iobench_mem_bandwidth(256ull << 20, 20);
    printf("memory: %.1f GB/s (memcpy, bytes read + written)\n", mem / 1e9);
    if (calib_compute(o->model, m, (int)o->threads, stdout, &cf, &err)) goto out;
    char host[128] = "?", desc[512], sec[4096];
    gethostname(host, sizeof host - 1);
    snprintf(desc, sizeof desc, "measured by moesim calibrate on %s (%s reads of %llu-byte blocks, %s, %llu threads)",
             host, moe_io_mode_name(o->io_mode), (unsigned long long)wc.fake.stride, m->name,
             (unsigned long long)o->threads);
    moe_device_profile d = {
        .io_channels = io.channels, .io_latency_s = io.fit.latency_s, .io_bandwidth_Bps = io.fit.bandwidth_Bps,
        .io_busy_latency_s = io.busy.latency_s, .io_busy_bandwidth_Bps = io.busy.bandwidth_Bps,
        .io_wake_s = rd.wake_s, .io_resume_s = rd.resume_s, .mem_bandwidth_Bps = mem, .threads = (uint32_t)o->threads};
    snprintf(d.name, sizeof d.name, "%s", o->name);
    snprintf(d.model, sizeof d.model, "%s", m->name);
    calib_set_compute(&d, &cf);
    calib_section_text(&d, desc, o->io_mode, sec, sizeof sec);
    if (write_section(o->out, o->name, sec, &err)) goto out;
    printf("wrote [%s] to %s\n", o->name, o->out);
    rc = 0;
out:
    if (rc) cli_error("calibrate", &err);
    free(wc.gu);
    free(wc.down);
    moe_model_free(m);
    return rc;
}

int cmd_calibrate(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"dir", required_argument, 0, 'd'},
        {"size", required_argument, 0, 's'},    {"output", required_argument, 0, 'o'},
        {"name", required_argument, 0, 'n'},    {"threads", required_argument, 0, 'j'},
        {"max-depth", required_argument, 0, 'D'}, {"io", required_argument, 0, 'i'},
        {"seconds", required_argument, 0, 'S'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    /* Defaults: compute threads and I/O threads get half the CPUs each, so
     * the I/O threads' per-read work (checksum, copies) does not take
     * time from compute (the timing model has no term for that sharing). */
    uint64_t cpus = ncpu > 0 ? (uint64_t)ncpu : 1;
    copts o = {.out = MOE_LOCAL_DEVICES_INI, .name = "this-machine", .size_gib = 0.5, .seconds = 0.1,
               .threads = cpus > 1 ? cpus / 2 : 1, .max_depth = 0, .io_mode = MOE_IO_DIRECT};
    moe_error err = {{0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        int bad = 0;
        char *end;
        switch (c) {
        case 'm': o.model = optarg; break;
        case 'd': o.dir = optarg; break;
        case 's':
            o.size_gib = strtod(optarg, &end);
            if (end == optarg || *end || !(o.size_gib >= 0.01 && o.size_gib <= 1024))
                bad = moe_fail(&err, "--size: expected GiB in [0.01, 1024], got '%s'", optarg);
            break;
        case 'S':
            o.seconds = strtod(optarg, &end);
            if (end == optarg || *end || !(o.seconds > 0 && o.seconds <= 60))
                bad = moe_fail(&err, "--seconds: expected (0, 60], got '%s'", optarg);
            break;
        case 'o': o.out = optarg; break;
        case 'n':
            o.name = optarg;
            if (!*optarg || strpbrk(optarg, "[]\n=#;")) bad = moe_fail(&err, "--name: '%s' is not a section name", optarg);
            break;
        case 'j':
            bad = cli_parse_u64("--threads", optarg, 256, &o.threads, &err) ||
                  (!o.threads && moe_fail(&err, "--threads: at least 1"));
            break;
        case 'D':
            bad = cli_parse_u64("--max-depth", optarg, 16, &o.max_depth, &err) ||
                  (!o.max_depth && moe_fail(&err, "--max-depth: at least 1"));
            break;
        case 'i': bad = moe_io_mode_parse(optarg, &o.io_mode, &err); break;
        case 'h': fputs(calibrate_usage, stdout); return 0;
        default: fputs(calibrate_usage, stderr); return 2;
        }
        if (bad) return cli_error("calibrate", &err);
    }
    if (!o.max_depth) o.max_depth = cpus > o.threads ? cpus - o.threads : 1;
    if (o.max_depth > 16) o.max_depth = 16;
    if (optind < argc || !o.model) {
        if (optind < argc) fprintf(stderr, "moesim calibrate: unexpected argument '%s'\n", argv[optind]);
        else fprintf(stderr, "moesim calibrate: --model is required\n");
        fputs(calibrate_usage, stderr);
        return 2;
    }
    return calibrate(&o);
}
