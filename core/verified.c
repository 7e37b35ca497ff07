/* verified.c: see verified.h. */
#include "verified.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RECORD_MAX (1u << 20) /* a longer record is started afresh */

uint64_t moe_verify_once_bytes(void) {
    const char *e = getenv("MOESIM_VERIFY_ONCE_BYTES");
    return e && *e ? strtoull(e, NULL, 10) : MOE_VERIFY_ONCE_BYTES;
}

/* The record's path, or NULL when there is none. */
static const char *record_path(char *buf, size_t cap, int create_dir) {
    const char *e = getenv("MOESIM_VERIFY_CACHE");
    if (e) return *e && strcmp(e, "off") ? e : NULL;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[900];
    if (xdg && *xdg) snprintf(dir, sizeof dir, "%s/moesim", xdg);
    else if (home && *home) snprintf(dir, sizeof dir, "%s/.cache/moesim", home);
    else return NULL;
    if (create_dir) {
        char parent[900];
        snprintf(parent, sizeof parent, "%.*s", (int)(strrchr(dir, '/') - dir), dir);
        mkdir(parent, 0755), mkdir(dir, 0755);
    }
    snprintf(buf, cap, "%s/verified", dir);
    return buf;
}

static void line_of(const struct stat *st, uint64_t sum, char *out, size_t cap) {
    snprintf(out, cap, "%llu %llu %lld %lld %ld %lld %ld %016llx\n", (unsigned long long)st->st_dev,
             (unsigned long long)st->st_ino, (long long)st->st_size, (long long)st->st_mtim.tv_sec,
             st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec, (unsigned long long)sum);
}

int moe_verified_known(const struct stat *st, uint64_t checksum) {
    char pbuf[1024], want[200], line[256];
    const char *p = record_path(pbuf, sizeof pbuf, 0);
    FILE *f = p ? fopen(p, "r") : NULL;
    if (!f) return 0;
    line_of(st, checksum, want, sizeof want);
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = !strcmp(line, want);
    fclose(f);
    return found;
}

void moe_verified_note(const struct stat *st, uint64_t checksum) {
    char pbuf[1024], line[200];
    const char *p = record_path(pbuf, sizeof pbuf, 1);
    if (!p) return;
    struct stat rs;
    int fresh = stat(p, &rs) == 0 && rs.st_size > RECORD_MAX;
    FILE *f = fopen(p, fresh ? "w" : "a");
    if (!f) return;
    line_of(st, checksum, line, sizeof line);
    fputs(line, f); /* one short write in append mode: concurrent writers do not interleave */
    fclose(f);
}
