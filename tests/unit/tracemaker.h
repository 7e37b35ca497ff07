/* tracemaker.h: build small traces for tests from a compact text.
 *
 *   steps separated by '/', tokens of a step by ';', layers of a token by '|',
 *   experts of a layer (in slot order) by ','. A step may start with "sN:" to
 *   give its tokens sequence N (default: the previous step's, starting at 0).
 *   Example, 2 layers, top-2: "0,1|2,3 ; 1,2|0,3 / s1: 3,0|1,2"
 * Weights, when wanted, are 1/(slot+1). Returns NULL (and prints) on a bad spec. */
#ifndef MOE_TRACEMAKER_H
#define MOE_TRACEMAKER_H

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../core/trace.h"

static inline moe_trace *make_trace(uint32_t layers, uint32_t experts, uint32_t top_k, const char *spec) {
    moe_error err = {{0}};
    moe_trace_builder *b = moe_tb_new(layers, experts, top_k, 1, 0, 0);
    const char *p = spec;
    uint64_t step = 0;
    uint32_t seq = 0;
    while (*p) {
        while (isspace((unsigned char)*p)) p++;
        if (*p == 's') {
            seq = (uint32_t)strtoul(p + 1, (char **)&p, 10);
            if (*p == ':') p++;
        }
        if (moe_tb_begin_step(b, step, MOE_PHASE_DECODE, &err)) goto bad;
        uint32_t pos = 0;
        for (;;) { /* tokens */
            int64_t tok = moe_tb_add_token(b, seq, pos++, &err);
            if (tok < 0) goto bad;
            for (uint32_t l = 0;; l++) { /* layers */
                for (uint32_t s = 0;; s++) { /* experts */
                    while (isspace((unsigned char)*p)) p++;
                    if (isdigit((unsigned char)*p)) {
                        uint32_t e = (uint32_t)strtoul(p, (char **)&p, 10);
                        if (moe_tb_set(b, (uint64_t)tok, l, s, e, 1.0f / (float)(s + 1), &err)) goto bad;
                    }
                    while (isspace((unsigned char)*p)) p++;
                    if (*p != ',') break;
                    p++;
                }
                if (*p != '|') break;
                p++;
            }
            if (*p != ';') break;
            p++;
        }
        step++;
        if (*p == '/') p++;
        else if (*p) { moe_fail(&err, "unexpected '%c' at offset %ld", *p, (long)(p - spec)); goto bad; }
    }
    {
        moe_trace *t = moe_tb_finish(b, "test", "tracemaker", NULL, &err);
        if (!t) fprintf(stderr, "make_trace(%s): %s\n", spec, err.msg);
        return t;
    }
bad:
    fprintf(stderr, "make_trace(%s): %s\n", spec, err.msg);
    moe_tb_abort(b);
    return NULL;
}

#endif
