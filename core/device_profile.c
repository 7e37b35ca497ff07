/* device_profile.c: reading device and model profiles, roofline pricing. */
#include "device_profile.h"

#include "datadir.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ini.h"
#include "params.h"
#include "timing.h"

const double moe_prec_bits[MOE_PREC_COUNT] = {32, 16, 8, 4, 3, 2};
const char *const moe_prec_name[MOE_PREC_COUNT] = {"f32", "f16", "q8", "q4", "q3", "q2"};

int moe_prec_of_bits(long bits) {
    for (int p = 0; p < MOE_PREC_COUNT; p++)
        if ((long)moe_prec_bits[p] == bits) return p;
    return -1;
}

static int known_sections(const moe_ini *ini, const char *what, const char *name, moe_error *err) {
    char list[512] = "";
    for (size_t i = 0; i < ini->n_sections; i++) {
        if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, ini->sections[i].name, sizeof list - strlen(list) - 1);
    }
    return moe_fail(err, "%s: unknown %s '%s' (known: %s)", ini->path, what, name, list);
}

/* Load the profile file (checkout, $MOESIM_DATA or the installed copy) and
 * find section `name`; on failure the message lists the known sections. */
static moe_ini *open_section(const char *path, const char *what, const char *name, const moe_ini_section **sec,
                             moe_error *err) {
    char where[4096];
    const char *file = moe_data_path(path, where, sizeof where);
    moe_ini *ini = moe_ini_load(file, err);
    if (!ini) {
        if (file == path && path[0] != '/' && access(path, F_OK)) { /* found nowhere: say where we looked */
            char dirs[2048], old[sizeof err->msg];
            moe_data_dirs_text(dirs, sizeof dirs);
            snprintf(old, sizeof old, "%s", err ? err->msg : "");
            moe_fail(err, "%s (looked in the working directory, then %s)", old, dirs);
        }
        return NULL;
    }
    if (!(*sec = moe_ini_find_section(ini, name))) {
        known_sections(ini, what, name, err);
        moe_ini_free(ini);
        return NULL;
    }
    return ini;
}

void moe_device_profile_canonicalize(moe_device_profile *d) {
    /* The values, not just the name, identify a run: editing the profile
     * changes the config text and so the run's identity. %g keeps six
     * digits, so a value read from the file prints as it was written. */
    snprintf(d->canonical, sizeof d->canonical,
             "%s:io_channels=%u,io_latency_us=%g,io_bandwidth_GBps=%g,mem_bandwidth_GBps=%g,"
             "peak_tflops=%g,expert_overhead_us=%g,layer_overhead_us=%g",
             d->name, d->io_channels, d->io_latency_s * 1e6, d->io_bandwidth_Bps / 1e9, d->mem_bandwidth_Bps / 1e9,
             d->peak_flops / 1e12, d->expert_overhead_s * 1e6, d->layer_overhead_s * 1e6);
    size_t n = strlen(d->canonical);
    if (d->measured_compute)
        n += (size_t)snprintf(d->canonical + n, sizeof d->canonical - n,
                              ",model=%s,dense_us=%g,dense_us_per_token=%g,attn_ns_per_ctx=%g,expert_us=%g,"
                              "expert_us_per_token=%g,head_us=%g",
                              d->model, d->dense_us, d->dense_us_per_token, d->attn_ns_per_ctx, d->expert_us,
                              d->expert_us_per_token, d->head_us);
    if (n < sizeof d->canonical && d->io_busy_bandwidth_Bps > 0)
        n += (size_t)snprintf(d->canonical + n, sizeof d->canonical - n,
                              ",io_busy_latency_us=%g,io_busy_bandwidth_GBps=%g", d->io_busy_latency_s * 1e6,
                              d->io_busy_bandwidth_Bps / 1e9);
    if (n < sizeof d->canonical && (d->io_wake_s > 0 || d->io_resume_s > 0))
        snprintf(d->canonical + n, sizeof d->canonical - n, ",io_wake_us=%g,io_resume_us=%g", d->io_wake_s * 1e6,
                 d->io_resume_s * 1e6);
}

int moe_device_profile_load(const char *path, const char *name, moe_device_profile *out, moe_error *err) {
    static const char *const keys[] = {"description", "io_channels", "io_latency_us", "io_bandwidth_GBps",
                                       "mem_bandwidth_GBps", "peak_tflops", "expert_overhead_us",
                                       "layer_overhead_us", "memory_GiB",
                                       /* measured by `moesim calibrate` (device_profile.h) */
                                       "model", "threads", "io_mode", "calibrated", "dense_us",
                                       "dense_us_per_token", "attn_ns_per_ctx", "expert_us",
                                       "expert_us_per_token", "head_us", "io_busy_latency_us",
                                       "io_busy_bandwidth_GBps", "io_wake_us", "io_resume_us", NULL};
    memset(out, 0, sizeof *out);
    const moe_ini_section *sec;
    moe_ini *ini = open_section(path, "device", name, &sec, err);
    if (!ini) return -1;
    int rc = -1;
    const char *s = sec->name;
    uint64_t ch;
    double lat, bw, mbw, tf, eo, lo, mem;
    uint64_t thr;
    double blat, bbw, wake, resume;
    if (moe_ini_check_keys(ini, s, keys, err) ||
        moe_ini_get_u64(ini, s, "io_channels", 1, 1, 1024, &ch, err) ||
        moe_ini_get_double(ini, s, "io_latency_us", 0, 0, 1e9, &lat, err) ||
        moe_ini_get_double(ini, s, "io_bandwidth_GBps", 0, 0, 1e9, &bw, err) ||
        moe_ini_get_double(ini, s, "mem_bandwidth_GBps", 0, 0, 1e9, &mbw, err) ||
        moe_ini_get_double(ini, s, "peak_tflops", 0, 0, 1e9, &tf, err) ||
        moe_ini_get_double(ini, s, "expert_overhead_us", 0, 0, 1e9, &eo, err) ||
        moe_ini_get_double(ini, s, "layer_overhead_us", 0, 0, 1e9, &lo, err) ||
        moe_ini_get_double(ini, s, "memory_GiB", 0, 0, 1e9, &mem, err) ||
        moe_ini_get_double(ini, s, "dense_us", -1, 0, 1e9, &out->dense_us, err) ||
        moe_ini_get_double(ini, s, "dense_us_per_token", 0, 0, 1e9, &out->dense_us_per_token, err) ||
        moe_ini_get_double(ini, s, "attn_ns_per_ctx", 0, 0, 1e9, &out->attn_ns_per_ctx, err) ||
        moe_ini_get_double(ini, s, "expert_us", 0, 0, 1e9, &out->expert_us, err) ||
        moe_ini_get_double(ini, s, "expert_us_per_token", 0, 0, 1e9, &out->expert_us_per_token, err) ||
        moe_ini_get_double(ini, s, "head_us", 0, 0, 1e9, &out->head_us, err) ||
        moe_ini_get_u64(ini, s, "threads", 0, 0, 4096, &thr, err) ||
        moe_ini_get_double(ini, s, "io_busy_latency_us", 0, 0, 1e9, &blat, err) ||
        moe_ini_get_double(ini, s, "io_busy_bandwidth_GBps", 0, 0, 1e9, &bbw, err) ||
        moe_ini_get_double(ini, s, "io_wake_us", 0, 0, 1e9, &wake, err) ||
        moe_ini_get_double(ini, s, "io_resume_us", 0, 0, 1e9, &resume, err))
        goto out;
    out->io_wake_s = wake * 1e-6;
    out->io_resume_s = resume * 1e-6;
    out->io_busy_latency_s = blat * 1e-6;
    out->io_busy_bandwidth_Bps = bbw * 1e9;
    out->threads = (uint32_t)thr;
    /* dense_us present = the compute terms were measured on the backend */
    out->measured_compute = out->dense_us >= 0;
    if (!out->measured_compute) out->dense_us = 0;
    const char *mm = moe_ini_get(ini, s, "model");
    if (out->measured_compute && !mm) {
        moe_fail(err, "%s:%u: device [%s]: measured compute terms (dense_us ...) need 'model = NAME', the model "
                      "they were measured with", ini->path, sec->line, s);
        goto out;
    }
    snprintf(out->model, sizeof out->model, "%s", mm ? mm : "");
    if (!(bw > 0)) {
        moe_fail(err, "%s:%u: device [%s] needs io_bandwidth_GBps > 0", ini->path, sec->line, s);
        goto out;
    }
    snprintf(out->name, sizeof out->name, "%s", s);
    out->io_channels = (uint32_t)ch;
    out->io_latency_s = lat * 1e-6;
    out->io_bandwidth_Bps = bw * 1e9;
    out->mem_bandwidth_Bps = mbw * 1e9;
    out->peak_flops = tf * 1e12;
    out->expert_overhead_s = eo * 1e-6;
    out->layer_overhead_s = lo * 1e-6;
    moe_device_profile_canonicalize(out);
    rc = 0;
out:
    moe_ini_free(ini);
    return rc;
}

static void fill_bytes(moe_model_profile *m) {
    for (int p = 0; p < MOE_PREC_COUNT; p++) {
        if (m->expert_bytes[p]) continue;
        double bits = moe_prec_bits[p] + (moe_prec_bits[p] < 16 ? m->quant_overhead_bits : 0);
        m->expert_bytes[p] = (uint64_t)llround(m->expert_params * bits / 8.0);
    }
}

static void model_canonical(moe_model_profile *m) {
    snprintf(m->canonical, sizeof m->canonical,
             "%s:layers=%u,experts=%u,top_k=%u,expert_params=%.0f,dense_params=%.0f,head_params=%.0f,"
             "dense_bits=%g,attn_us=%g,bytes=%llu/%llu/%llu/%llu/%llu/%llu",
             m->name, m->n_layers, m->n_experts, m->top_k, m->expert_params, m->dense_params,
             m->head_params, m->dense_bits, m->attn_s * 1e6,
             (unsigned long long)m->expert_bytes[0], (unsigned long long)m->expert_bytes[1],
             (unsigned long long)m->expert_bytes[2], (unsigned long long)m->expert_bytes[3],
             (unsigned long long)m->expert_bytes[4], (unsigned long long)m->expert_bytes[5]);
}

int moe_model_profile_load(const char *path, const char *spec, moe_model_profile *out, moe_error *err) {
    static const char *const keys[] = {"description", "layers", "experts", "top_k", "shared", "hidden",
                                       "expert_params", "dense_params", "head_params", "dense_bits",
                                       "quant_overhead_bits", "attn_us", "bytes_f32", "bytes_f16",
                                       "bytes_q8", "bytes_q4", "bytes_q3", "bytes_q2", "source",
                                       /* the backend's geometry, read by `moesim model synth` */
                                       "arch", "heads", "kv_heads", "head_dim", "vocab", "expert_inter",
                                       "shared_inter", NULL};
    memset(out, 0, sizeof *out);
    char name[64];
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (!len || len >= sizeof name) return moe_fail(err, "bad model name '%s'", spec);
    memcpy(name, spec, len);
    name[len] = 0;
    const moe_ini_section *sec;
    moe_ini *ini = open_section(path, "model", name, &sec, err);
    if (!ini) return -1;
    int rc = -1;
    const char *s = sec->name;
    uint64_t L, E, K, S, H, b[MOE_PREC_COUNT];
    double ep, dp, hp, db, qo, au;
    if (moe_ini_check_keys(ini, s, keys, err) ||
        moe_ini_get_u64(ini, s, "layers", 0, 1, 100000, &L, err) ||
        moe_ini_get_u64(ini, s, "experts", 0, 1, MOE_MAX_EXPERTS, &E, err) ||
        moe_ini_get_u64(ini, s, "top_k", 0, 1, MOE_MAX_EXPERTS, &K, err) ||
        moe_ini_get_u64(ini, s, "shared", 0, 0, MOE_MAX_EXPERTS, &S, err) ||
        moe_ini_get_u64(ini, s, "hidden", 0, 0, 1u << 30, &H, err) ||
        moe_ini_get_double(ini, s, "expert_params", 0, 0, 1e15, &ep, err) ||
        moe_ini_get_double(ini, s, "dense_params", 0, 0, 1e15, &dp, err) ||
        moe_ini_get_double(ini, s, "head_params", 0, 0, 1e15, &hp, err) ||
        moe_ini_get_double(ini, s, "dense_bits", 16, 1, 32, &db, err) ||
        moe_ini_get_double(ini, s, "quant_overhead_bits", 0.5, 0, 16, &qo, err) ||
        moe_ini_get_double(ini, s, "attn_us", 0, 0, 1e9, &au, err))
        goto out;
    for (int p = 0; p < MOE_PREC_COUNT; p++) {
        char key[16];
        snprintf(key, sizeof key, "bytes_%s", moe_prec_name[p]);
        if (moe_ini_get_u64(ini, s, key, 0, 0, UINT64_MAX, &b[p], err)) goto out;
    }
    if (!L || !E || !K || !(ep > 0)) {
        moe_fail(err, "%s:%u: model [%s] needs layers, experts, top_k and expert_params", ini->path,
                 sec->line, s);
        goto out;
    }
    /* command-line overrides */
    moe_param ov[] = {
        {"dense_bits", MOE_PARAM_DOUBLE, "0", 0, 32, "bits per dense weight (0 = profile)", 0, 0, ""},
        {"quant_overhead_bits", MOE_PARAM_DOUBLE, "-1", -1, 16, "scale bits per weight (-1 = profile)", 0, 0, ""},
        {"attn_us", MOE_PARAM_DOUBLE, "-1", -1, 1e9, "attention us per token per layer (-1 = profile)", 0, 0, ""},
    };
    char canon_ov[256];
    if (moe_params_parse(s, colon ? colon + 1 : "", ov, 3, canon_ov, sizeof canon_ov, err)) goto out;
    if (ov[0].d > 0) db = ov[0].d;
    if (ov[1].d >= 0) qo = ov[1].d;
    if (ov[2].d >= 0) au = ov[2].d;
    snprintf(out->name, sizeof out->name, "%s", s);
    out->n_layers = (uint32_t)L;
    out->n_experts = (uint32_t)E;
    out->top_k = (uint32_t)K;
    out->n_shared = (uint32_t)S;
    out->hidden = (uint32_t)H;
    out->expert_params = ep;
    out->dense_params = dp;
    out->head_params = hp;
    out->dense_bits = db;
    out->quant_overhead_bits = qo;
    out->attn_s = au * 1e-6;
    for (int p = 0; p < MOE_PREC_COUNT; p++) out->expert_bytes[p] = b[p];
    fill_bytes(out);
    model_canonical(out);
    rc = 0;
out:
    moe_ini_free(ini);
    return rc;
}

int moe_model_profile_from_trace(const moe_trace *t, moe_model_profile *out, moe_error *err) {
    memset(out, 0, sizeof *out);
    int any = 0;
    for (int p = 0; p < MOE_PREC_COUNT; p++) any |= t->expert_bytes[p] != 0;
    if (!any)
        return moe_fail(err, "the trace header has no bytes per expert: give --model (a section of %s)",
                        MOE_MODELS_INI);
    snprintf(out->name, sizeof out->name, "trace:%s", t->model[0] ? t->model : "unnamed");
    out->n_layers = t->n_layers;
    out->n_experts = t->n_experts;
    out->top_k = t->top_k;
    out->n_shared = t->n_shared;
    out->dense_bits = 16;
    out->from_trace = 1;
    /* parameters from the widest known tier */
    if (t->expert_bytes[MOE_PREC_F16]) out->expert_params = (double)t->expert_bytes[MOE_PREC_F16] / 2;
    else if (t->expert_bytes[MOE_PREC_F32]) out->expert_params = (double)t->expert_bytes[MOE_PREC_F32] / 4;
    else
        for (int p = MOE_PREC_COUNT - 1; p >= 0; p--)
            if (t->expert_bytes[p]) out->expert_params = (double)t->expert_bytes[p] * 8 / moe_prec_bits[p];
    /* Tiers the header leaves unknown are filled as in a profile, with no
     * scale overhead (nothing says what the format would add). */
    for (int p = 0; p < MOE_PREC_COUNT; p++) out->expert_bytes[p] = t->expert_bytes[p];
    fill_bytes(out);
    model_canonical(out);
    return 0;
}

int moe_model_profile_bind_trace(moe_model_profile *m, const moe_trace *t, moe_error *err) {
    if (m->n_layers != t->n_layers || m->n_experts != t->n_experts)
        return moe_fail(err, "model %s has %u layers x %u experts but the trace has %u x %u", m->name,
                        m->n_layers, m->n_experts, t->n_layers, t->n_experts);
    int changed = 0;
    for (int p = 0; p < MOE_PREC_COUNT; p++)
        if (t->expert_bytes[p] && t->expert_bytes[p] != m->expert_bytes[p]) {
            m->expert_bytes[p] = t->expert_bytes[p];
            changed = 1;
        }
    if (changed) model_canonical(m);
    return 0;
}

double moe_profile_dense_s(const moe_device_profile *d, const moe_model_profile *m, uint32_t tokens,
                           double ctx) {
    if (d->measured_compute)
        return 1e-6 * (d->dense_us + d->dense_us_per_token * tokens) + 1e-9 * d->attn_ns_per_ctx * ctx;
    if (m->attn_s > 0) return m->attn_s * tokens + d->layer_overhead_s;
    /* Attention's KV-cache reads grow with context; this roofline counts only
     * the weights (a stated limit of the model). */
    return moe_roofline_s(m->dense_params * m->dense_bits / 8, 2.0 * m->dense_params * tokens,
                          d->mem_bandwidth_Bps, d->peak_flops, d->layer_overhead_s);
}

double moe_profile_expert_s(const moe_device_profile *d, const moe_model_profile *m, int prec, uint32_t tokens) {
    /* the backend computes every expert in f32 whatever it was stored as */
    if (d->measured_compute) return 1e-6 * (d->expert_us + d->expert_us_per_token * tokens);
    return moe_roofline_s((double)m->expert_bytes[prec], 2.0 * m->expert_params * tokens,
                          d->mem_bandwidth_Bps, d->peak_flops, d->expert_overhead_s);
}

double moe_profile_head_s(const moe_device_profile *d, const moe_model_profile *m, uint32_t tokens) {
    /* generation computes the LM head for a step's last token only */
    if (d->measured_compute) return 1e-6 * d->head_us;
    if (!(m->head_params > 0)) return 0;
    return moe_roofline_s(m->head_params * m->dense_bits / 8, 2.0 * m->head_params * tokens,
                          d->mem_bandwidth_Bps, d->peak_flops, 0);
}
