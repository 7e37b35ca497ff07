/* pack_io.c: file plumbing shared by the expert and dense packs (pack_io.h). */
#include "pack_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pack.h"

int moe_host_is_le(void) {
    const uint16_t x = 1;
    unsigned char c;
    memcpy(&c, &x, 1);
    return c == 1;
}

static int direct_unsupported(const char *path, moe_error *err) {
    return moe_fail(err, "%s: this file system does not support O_DIRECT (--io direct); use --io buffered", path);
}

int moe_pack_fd_open(const char *path, int mode, int *fd, moe_error *err) {
    *fd = open(path, O_RDONLY | O_CLOEXEC | (mode == MOE_IO_DIRECT ? O_DIRECT : 0));
    if (*fd >= 0) return 0;
    int e = errno;
    if (e == EINVAL && mode == MOE_IO_DIRECT) return direct_unsupported(path, err);
    return moe_fail(err, "%s: cannot open: %s", path, strerror(e));
}

/* pread until n bytes, EOF or an error; *got says how many arrived. */
static int pread_all(int fd, void *buf, size_t n, uint64_t off, size_t *got) {
    unsigned char *p = buf;
    *got = 0;
    while (*got < n) {
        ssize_t k = pread(fd, p + *got, n - *got, (off_t)(off + *got));
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) break;
        *got += (size_t)k;
    }
    return 0;
}

int moe_pack_pread(const char *path, int fd, int mode, void *buf, size_t n, uint64_t off, const char *what,
                   moe_error *err) {
    size_t got;
    if (pread_all(fd, buf, n, off, &got)) {
        if (errno == EINVAL && mode == MOE_IO_DIRECT) return direct_unsupported(path, err);
        return moe_fail(err, "%s: %s: read failed: %s", path, what, strerror(errno));
    }
    if (got < n)
        return moe_fail(err, "%s: %s: short read (%zu of %zu bytes at offset %llu; file truncated?)", path, what, got, n,
                        (unsigned long long)off);
    return 0;
}

int moe_pack_pwrite_all(int fd, const unsigned char *p, size_t n, uint64_t off) {
    while (n) {
        ssize_t k = pwrite(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return k == 0 ? (errno = EIO, -1) : -1;
        p += k, n -= (size_t)k, off += (uint64_t)k;
    }
    return 0;
}

int moe_pack_file_begin(char *path_buf, size_t cap, const char *path, int mode, const char *what, int *fd,
                        moe_error *err) {
    if (strlen(path) >= cap) return moe_fail(err, "%s: path too long", path);
    snprintf(path_buf, cap, "%s", path);
    if (mode != MOE_IO_DIRECT && mode != MOE_IO_BUFFERED && mode != MOE_IO_MMAP)
        return moe_fail(err, "%s: unknown I/O mode %d", path, mode);
    if (!moe_host_is_le()) return moe_fail(err, "%s: %s are little-endian; this host is not", path, what);
    return moe_pack_fd_open(path, mode, fd, err);
}
