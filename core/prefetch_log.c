/* log: replays the predictions a real offloaded run made (`--prefetch-log`
 * of moesim infer / validate). At (step, layer) it predicts exactly what the
 * log says the backend predicted there, so replaying the captured trace with
 * the log reproduces the backend's prefetches, hits and bytes exactly.
 *
 * Log format (text): lines starting with '#' are comments; every other line
 * is "STEP LAYER TARGET E1 E2 ...": at (STEP, LAYER) the experts E1 < E2 <
 * ... of layer TARGET (> LAYER) were predicted. Lines are in (STEP, LAYER)
 * order with at most one line each. Parameters: file (the log's path). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prefetch.h"
#include "trace_formats.h"

static const moe_param log_params[] = {
    {"file", MOE_PARAM_STRING, "", 0, 0, "prefetch log written by a real run (--prefetch-log)", 0, 0, ""},
};

typedef struct entry {
    uint64_t step;
    uint32_t layer, target, first, n; /* experts[first .. first+n) */
} entry;

typedef struct plog {
    entry *e;
    size_t n, cur;
    uint16_t *experts;
} plog;

static void log_destroy(void *st) {
    plog *p = st;
    if (!p) return;
    free(p->e);
    free(p->experts);
    free(p);
}

/* Parse one number at *s (after blanks); -1 if none. */
static int next_num(char **s, unsigned long long *v) {
    while (**s == ' ' || **s == '\t') (*s)++;
    if (**s < '0' || **s > '9') return -1;
    errno = 0;
    *v = strtoull(*s, s, 10);
    return errno ? -1 : 0;
}

static int parse_line(plog *p, char *line, const char *path, size_t no, const moe_prefetch_env *env,
                      size_t *cap_e, size_t *cap_x, size_t *n_x, moe_error *err) {
    unsigned long long step, layer, target, x;
    char *s = line;
    if (next_num(&s, &step) || next_num(&s, &layer) || next_num(&s, &target))
        return moe_fail(err, "%s:%zu: expected 'STEP LAYER TARGET EXPERT...'", path, no);
    if (layer >= env->n_layers || target <= layer || target >= env->n_layers)
        return moe_fail(err, "%s:%zu: layer %llu -> target %llu is not a later layer of %u", path, no, layer, target,
                        env->n_layers);
    if (p->n) {
        const entry *q = &p->e[p->n - 1];
        if (step < q->step || (step == q->step && layer <= q->layer))
            return moe_fail(err, "%s:%zu: lines must be in increasing (step, layer) order", path, no);
    }
    if (p->n == *cap_e) {
        *cap_e = *cap_e ? *cap_e * 2 : 256;
        entry *e2 = realloc(p->e, *cap_e * sizeof *e2);
        if (!e2) return moe_fail(err, "out of memory");
        p->e = e2;
    }
    entry *en = &p->e[p->n];
    *en = (entry){step, (uint32_t)layer, (uint32_t)target, (uint32_t)*n_x, 0};
    long long prev = -1;
    while (next_num(&s, &x) == 0) {
        if (x >= env->n_experts || (long long)x <= prev)
            return moe_fail(err, "%s:%zu: expert %llu out of range or not ascending", path, no, x);
        prev = (long long)x;
        if (*n_x == *cap_x) {
            *cap_x = *cap_x ? *cap_x * 2 : 1024;
            uint16_t *x2 = realloc(p->experts, *cap_x * sizeof *x2);
            if (!x2) return moe_fail(err, "out of memory");
            p->experts = x2;
        }
        p->experts[(*n_x)++] = (uint16_t)x;
        en->n++;
    }
    while (*s == ' ' || *s == '\t' || *s == '\r') s++;
    if (*s) return moe_fail(err, "%s:%zu: unexpected '%.20s'", path, no, s);
    if (!en->n) return moe_fail(err, "%s:%zu: a prediction names no expert", path, no);
    p->n++;
    return 0;
}

static void *log_create(const moe_param *params, const moe_prefetch_env *env, moe_error *err) {
    const char *path = params[0].s;
    if (!*path) return moe_fail(err, "log: give file=PATH (a prefetch log)"), NULL;
    size_t len;
    char *text = moe_read_file(path, &len, err);
    if (!text) return NULL;
    plog *p = calloc(1, sizeof *p);
    size_t cap_e = 0, cap_x = 0, n_x = 0, no = 0;
    int bad = !p;
    if (!p) moe_fail(err, "out of memory");
    for (char *line = text, *next; !bad && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        no++;
        if (line[0] == '#' || line[0] == 0) continue;
        bad = parse_line(p, line, path, no, env, &cap_e, &cap_x, &n_x, err) != 0;
    }
    free(text);
    if (bad) {
        log_destroy(p);
        return NULL;
    }
    return p;
}

static void log_observe(void *st, uint64_t s, uint32_t l, const uint16_t *set, const uint32_t *nt, uint32_t n) {
    (void)st; (void)s; (void)l; (void)set; (void)nt; (void)n;
}

/* The replay asks in increasing (step, layer) order: a cursor suffices. */
static uint32_t log_predict(void *st, uint64_t s, uint32_t l, uint32_t *target, uint16_t *out) {
    plog *p = st;
    while (p->cur < p->n && (p->e[p->cur].step < s || (p->e[p->cur].step == s && p->e[p->cur].layer < l))) p->cur++;
    if (p->cur == p->n || p->e[p->cur].step != s || p->e[p->cur].layer != l) return 0;
    const entry *e = &p->e[p->cur];
    *target = e->target;
    memcpy(out, p->experts + e->first, e->n * sizeof *out);
    return e->n;
}

const moe_prefetch_ops moe_prefetch_log = {
    .name = "log",
    .summary = "replay the predictions a real offloaded run logged (--prefetch-log)",
    .params = log_params,
    .n_params = 1,
    .create = log_create,
    .observe = log_observe,
    .predict = log_predict,
    .destroy = log_destroy,
};
