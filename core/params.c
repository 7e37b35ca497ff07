/* params.c: parsing and canonicalisation of "name:k=v,..." strings. */
#include "params.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set_value(const char *name, moe_param *p, const char *v, size_t len, moe_error *err) {
    char buf[256];
    if (len >= sizeof buf) return moe_fail(err, "%s: value of '%s' is too long", name, p->key);
    memcpy(buf, v, len);
    buf[len] = 0;
    char *end;
    errno = 0;
    switch (p->type) {
    case MOE_PARAM_INT:
        p->i = strtoll(buf, &end, 10);
        if (!len || *end || errno)
            return moe_fail(err, "%s: '%s=%s' is not an integer", name, p->key, buf);
        if (p->i < p->min || p->i > p->max)
            return moe_fail(err, "%s: '%s=%s' out of range %g..%g", name, p->key, buf, p->min, p->max);
        p->d = (double)p->i;
        break;
    case MOE_PARAM_DOUBLE:
        p->d = strtod(buf, &end);
        if (!len || *end || errno || !isfinite(p->d))
            return moe_fail(err, "%s: '%s=%s' is not a number", name, p->key, buf);
        if (p->d < p->min || p->d > p->max)
            return moe_fail(err, "%s: '%s=%s' out of range %g..%g", name, p->key, buf, p->min, p->max);
        break;
    case MOE_PARAM_STRING:
        if (strpbrk(buf, ",="))
            return moe_fail(err, "%s: value of '%s' may not contain ',' or '='", name, p->key);
        break;
    }
    memcpy(p->s, buf, len + 1);
    return 0;
}

int moe_params_parse(const char *name, const char *args, moe_param *params, size_t n,
                     char *canonical, size_t cap, moe_error *err) {
    for (size_t i = 0; i < n; i++)
        if (set_value(name, &params[i], params[i].default_value, strlen(params[i].default_value), err))
            return -1;
    const char *p = args ? args : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq) return moe_fail(err, "%s: expected key=value, got '%.*s'", name, (int)len, p);
        size_t klen = (size_t)(eq - p);
        moe_param *found = NULL;
        for (size_t i = 0; i < n; i++)
            if (strlen(params[i].key) == klen && !memcmp(params[i].key, p, klen)) found = &params[i];
        if (!found) {
            char known[512] = "";
            for (size_t i = 0; i < n; i++) {
                strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
                strncat(known, params[i].key, sizeof known - strlen(known) - 1);
            }
            return moe_fail(err, "%s: unknown option '%.*s' (known: %s)", name, (int)klen, p,
                            n ? known : "none");
        }
        if (set_value(name, found, eq + 1, len - klen - 1, err)) return -1;
        p += len;
        if (*p == ',') p++;
    }
    /* Canonical text: numbers printed with %g so 0.10 and 0.1 agree. */
    size_t used = (size_t)snprintf(canonical, cap, "%s", name);
    for (size_t i = 0; i < n && used < cap; i++) {
        const moe_param *q = &params[i];
        const char *sep = i ? "," : ":";
        if (q->type == MOE_PARAM_INT)
            used += (size_t)snprintf(canonical + used, cap - used, "%s%s=%lld", sep, q->key, q->i);
        else if (q->type == MOE_PARAM_DOUBLE)
            used += (size_t)snprintf(canonical + used, cap - used, "%s%s=%g", sep, q->key, q->d);
        else
            used += (size_t)snprintf(canonical + used, cap - used, "%s%s=%s", sep, q->key, q->s);
    }
    if (used >= cap) return moe_fail(err, "%s: canonical name too long", name);
    return 0;
}

const moe_param *moe_params_get(const moe_param *params, size_t n, const char *key) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(params[i].key, key)) return &params[i];
    return NULL;
}
