/* replay_opts.c: replay options by name (see replay_opts.h). */
#include "replay_opts.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/device_profile.h"
#include "../core/on_miss.h"
#include "../core/precision.h"
#include "../core/prefetch.h"
#include "../core/split.h"
#include "../core/units.h"
#include "replay_ext.h"

const char moe_replay_opts_help[] =
    "  --count-from N     count only tokens at position >= N of their sequence; the\n"
    "                     steps before still warm the caches (hit/miss counts only)\n"
    "  --capacity C       experts per layer (per-layer scope) or in all (global);\n"
    "                     or bytes in all, e.g. 12GiB, 800MB (split evenly per layer\n"
    "                     in per-layer scope); or 40% of all experts' bytes\n"
    "  --prefetch P       prefetcher: none, gate:ahead=1,n=2 (trace lookahead),\n"
    "                     transition:hops=1, history, topn:n=2, oracle\n"
    "  --speculate        run predicted next-layer experts while the lane stalls on I/O\n"
    "  --skip S           cum=0.9 (skip-on-miss past this cumulative gate weight) and/or\n"
    "                     topk_frac=0.3 (adaptive top-k: drop below 0.3 x top-1)\n"
    "  --on-miss M        wait (default), skip, substitute or lowbit:bits=B: a missing\n"
    "                     expert is read and waited for, dropped, replaced by the\n"
    "                     resident expert the router scores highest (needs router\n"
    "                     logits in the trace), or run from a B-bit copy held in\n"
    "                     memory; dropped, replaced and low-copy ones read nothing\n"
    "  --precision S      uniform:bits=16|8|4|3|2, mlx-tiers, hot-cold:hot=4,\n"
    "                     hobbit:hi=0.6,lo=0.9 (profile=oracle|PATH for the first two)\n"
    "  --device D         device profile (experiments/devices.ini): turns on the timing model\n"
    "  --model M          model profile (experiments/models.ini), M[:dense_bits=4]\n"
    "  --devices F, --models F   other profile files\n"
    "  --split S          per-layer scope: divide capacity x layers among the layers:\n"
    "                     uniform (default), adapmoe (DP over per-layer LRU miss\n"
    "                     curves; profile=oracle|PATH), fate:shallow=1.5 (shallow\n"
    "                     layers get more, linear weights 1.5..1)\n"
    "  --load-state F     insert the experts of a saved cache state (`infer --offload\n"
    "                     --save-state`) before the first step\n"
    "  --save-state F     save the resident experts at the end (least recently used first)\n"
    "  --stream-dense[=B] each layer's dense weights are read too, one layer ahead within\n"
    "                     B layer buffers (default 2), on the I/O channels (the backend's\n"
    "                     --stream-dense); a block's bytes from --model's dense_params\n";

static int flag_value(const char *name, const char *v, int *out, moe_error *err) {
    if (!v || !strcmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") || !strcasecmp(v, "true"))
        *out = 1;
    else if (!strcmp(v, "0") || !strcasecmp(v, "off") || !strcasecmp(v, "no") || !strcasecmp(v, "false"))
        *out = 0;
    else return moe_fail(err, "--%s: expected on/off, got '%s'", name, v);
    return 0;
}

int moe_replay_parse_capacity(moe_replay_config *cfg, const char *s, moe_error *err) {
    if (!s || !*s || *s == '-' || *s == '+') return moe_fail(err, "--capacity: expected a number, got '%s'", s ? s : "");
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0) return moe_fail(err, "--capacity: bad value '%s'", s);
    while (isspace((unsigned char)*end)) end++;
    cfg->capacity = 0;
    cfg->capacity_bytes = 0;
    cfg->capacity_frac = 0;
    if (!*end) {
        if (v != floor(v) || v > 4294967295.0)
            return moe_fail(err, "--capacity: '%s' is not a whole number of experts (add a unit for bytes)", s);
        cfg->capacity = (uint32_t)v;
        return 0;
    }
    if (!strcmp(end, "%")) {
        if (v <= 0 || v > 100) return moe_fail(err, "--capacity: %s out of range 0..100%%", s);
        cfg->capacity_frac = v / 100.0;
        return 0;
    }
    /* sizes with a unit: the one size parser (core/units.h) */
    return moe_bytes_parse("--capacity", s, "%", &cfg->capacity_bytes, err) ? -1 : 0;
}

static int same(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (*a != *b && !((*a == '-' || *a == '_') && (*b == '-' || *b == '_'))) return 0;
    return *a == *b;
}

static int need(const char *name, const char *v, moe_error *err) {
    if (!v || !*v) return moe_fail(err, "--%s needs a value", name);
    return 0;
}

int moe_replay_opt_set(moe_replay_config *cfg, const char *name, const char *v, moe_error *err) {
    char canon[512];
    if (same(name, "policy")) {
        if (need(name, v, err)) return -1;
        cfg->policy = v;
    } else if (same(name, "capacity")) {
        return moe_replay_parse_capacity(cfg, v, err);
    } else if (same(name, "scope")) {
        if (need(name, v, err)) return -1;
        return moe_scope_parse(v, &cfg->scope, err);
    } else if (same(name, "cold-per-seq")) {
        return flag_value(name, v, &cfg->cold_per_seq, err);
    } else if (same(name, "seed")) {
        if (need(name, v, err)) return -1;
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (!isdigit((unsigned char)*v) || *end || errno) return moe_fail(err, "--seed: bad value '%s'", v);
        cfg->seed = s;
    } else if (same(name, "count-from")) {
        if (need(name, v, err)) return -1;
        char *end;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (!isdigit((unsigned char)*v) || *end || errno)
            return moe_fail(err, "--count-from: expected a token position (0, 1, 2 ...), got '%s'", v);
        cfg->count_from = n;
    } else if (same(name, "prefetch")) {
        if (need(name, v, err) || moe_prefetch_canonical(v, canon, sizeof canon, err)) return -1;
        cfg->prefetch = v;
    } else if (same(name, "speculate")) {
        return flag_value(name, v, &cfg->speculate, err);
    } else if (same(name, "skip")) {
        double a, b;
        if (need(name, v, err) || moe_skip_parse(v, &a, &b, canon, sizeof canon, err)) return -1;
        cfg->skip = v;
    } else if (same(name, "on-miss")) {
        if (need(name, v, err)) return -1;
        return moe_on_miss_parse(v, &cfg->on_miss, err);
    } else if (same(name, "precision")) {
        if (need(name, v, err) || moe_precision_canonical(v, canon, sizeof canon, err)) return -1;
        cfg->precision = v;
    } else if (same(name, "device")) {
        if (need(name, v, err)) return -1;
        cfg->device = v;
    } else if (same(name, "model")) {
        if (need(name, v, err)) return -1;
        cfg->model = v;
    } else if (same(name, "devices")) {
        if (need(name, v, err)) return -1;
        cfg->devices_path = v;
    } else if (same(name, "load-state")) {
        if (need(name, v, err)) return -1;
        cfg->load_state = v;
    } else if (same(name, "save-state")) {
        if (need(name, v, err)) return -1;
        cfg->save_state = v;
    } else if (same(name, "split")) {
        if (need(name, v, err) || moe_split_canonical(v, canon, sizeof canon, err)) return -1;
        cfg->split = v;
    } else if (same(name, "stream-dense")) {
        /* a flag with an optional budget: on (or no value) = 2 buffers, off = resident */
        if (!v || !strcasecmp(v, "on")) cfg->stream_dense = 2;
        else if (!strcasecmp(v, "off")) cfg->stream_dense = 0;
        else {
            char *end;
            errno = 0;
            unsigned long b = strtoul(v, &end, 10);
            if (!isdigit((unsigned char)*v) || *end || errno || b > 1024)
                return moe_fail(err, "--stream-dense: expected a number of layer buffers (1..1024), on or off, got '%s'", v);
            if (!b) return moe_fail(err, "--stream-dense=0: at least 1 layer buffer (the layer being computed)");
            cfg->stream_dense = (uint32_t)b;
        }
    } else if (same(name, "models")) {
        if (need(name, v, err)) return -1;
        cfg->models_path = v;
    } else {
        return 1;
    }
    return 0;
}

int moe_replay_config_check(const moe_replay_config *cfg, moe_error *err) {
    char canon[512];
    if (cfg->device) {
        moe_device_profile d;
        if (moe_replay_device(cfg, &d, err))
            return -1;
    }
    if (cfg->model) {
        moe_model_profile m;
        if (moe_model_profile_load(cfg->models_path ? cfg->models_path : MOE_MODELS_INI, cfg->model, &m, err))
            return -1;
    }
    if (cfg->prefetch && moe_prefetch_canonical(cfg->prefetch, canon, sizeof canon, err)) return -1;
    if (cfg->precision && moe_precision_canonical(cfg->precision, canon, sizeof canon, err)) return -1;
    if (cfg->skip) {
        double a, b;
        if (moe_skip_parse(cfg->skip, &a, &b, canon, sizeof canon, err)) return -1;
    }
    if (cfg->split && moe_split_canonical(cfg->split, canon, sizeof canon, err)) return -1;
    if (!moe_split_is_uniform(cfg->split) && cfg->scope == MOE_SCOPE_GLOBAL)
        return moe_fail(err, "--split %s needs per-layer scope", cfg->split);
    if (cfg->speculate && !cfg->prefetch) return moe_fail(err, "--speculate needs --prefetch");
    if (cfg->speculate && !cfg->device) return moe_fail(err, "--speculate needs --device");
    return 0;
}
