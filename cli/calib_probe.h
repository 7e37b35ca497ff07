/* calib_probe.h: quick re-measurements of the machine, shared by `moesim
 * calibrate` (once, beside its scratch-file sweep) and `moesim validate
 * --recalibrate` (before each configuration: on this two-vCPU VM the same
 * calibration gave 5.4 and then 7.5 us per token of dense compute, and 155
 * and then 234 us per expert read, a quarter of an hour apart, so a
 * profile measured at the start of a grid no longer describes its later
 * rows). */
#ifndef MOE_CALIB_PROBE_H
#define MOE_CALIB_PROBE_H

#include <stdint.h>
#include <stdio.h>

#include "../backend/model.h"
#include "../core/device_profile.h"
#include "../core/error.h"

/* Demand reads of a pack through the backend's queue (calib_pack_reads). */
typedef struct calib_reads {
    double read_s;   /* one expert read, as the I/O thread spends it */
    double wake_s;   /* io_wake_us: the first read of a burst, on top */
    double resume_s; /* io_resume_us: the waiting thread's wake-up, per read */
} calib_reads;

/* Bursts of 1, 2 and 4 demand reads of `pack` (a pack of m) through the
 * backend's I/O thread; block is the pack's expert stride (it sets how
 * many bursts fit in 2 GiB). report: where the one-paragraph account goes,
 * NULL for none. */
int calib_pack_reads(const moe_model *m, const char *pack, int io_mode, uint64_t block, FILE *report,
                     calib_reads *out, moe_error *err);

/* The backend's compute cost (seconds; head in us), the fitted terms of
 * the device profile: dense = dense[0] + dense[1] T + dense[2] keys,
 * expert = expert[0] per expert + expert[1] per token slot. */
typedef struct calib_compute_fit {
    double dense[3], expert[2], head_us;
    size_t n_dense, n_expert, n_head, n_fits;
} calib_compute_fit;

/* The model as calibration computes it: a model whose experts are only in
 * its pack (`model synth`) without them (calib_compute reads a pool of
 * them from the pack), any other whole. */
moe_model *calib_load_model(const char *dir, moe_error *err);

/* Run m (its experts from model_dir/experts.pack when they are not
 * loaded) on a seeded calibration text and fit cf; report as above. */
int calib_compute(const char *model_dir, const moe_model *m, int threads, FILE *report, calib_compute_fit *cf,
                  moe_error *err);

/* Tokens of calib_compute's pass and of calib_compute_scale's. */
#define CALIB_PASS_TOKENS (512 + 96)
#define CALIB_SCALE_TOKENS (64 + 16)

/* A short compute pass (a tenth of calib_compute's, the same text and
 * step sizes) priced by d's compute terms: *k = the measured time over
 * the price, *seconds = how long the pass took. For `validate
 * --recalibrate=all` where calibrate's passes take minutes (experts of
 * hundreds of MiB): too few samples to refit the terms, enough to say how
 * far the machine's compute has moved from them. */
int calib_compute_scale(const char *model_dir, const moe_model *m, int threads, const moe_device_profile *d,
                        double *k, double *seconds, moe_error *err);
/* Every compute term of d times k. */
void calib_scale_compute(moe_device_profile *d, double k);

/* The fitted compute terms into d's (us, ns) fields. */
void calib_set_compute(moe_device_profile *d, const calib_compute_fit *cf);

/* d as the INI section `calibrate` writes (a blank line, then [name] and
 * every measured key; calibrated = now). -1 if cap is too small. */
int calib_section_text(const moe_device_profile *d, const char *description, int io_mode, char *buf, size_t cap);

#endif
