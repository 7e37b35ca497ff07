/* readfile.c: whole-file reads with errors naming the file. */
#include "readfile.h"

#include <stdio.h>
#include <stdlib.h>

unsigned char *moe_backend_read_file(const char *path, size_t *len, moe_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        moe_fail(err, "%s: cannot open: %m", path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, r;
    unsigned char *buf = malloc(cap + 1);
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        moe_fail(err, "%s: read failed", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}
