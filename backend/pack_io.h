/* pack_io.h: file plumbing the expert pack (pack.h) and the dense pack
 * (dense_pack.h) share: little-endian fields, opening a pack per I/O mode,
 * positioned reads and writes that name the file and the region. */
#ifndef MOE_BACKEND_PACK_IO_H
#define MOE_BACKEND_PACK_IO_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

int moe_host_is_le(void);

static inline void moe_put32(unsigned char *b, uint32_t v) {
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}
static inline void moe_put64(unsigned char *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}
static inline uint32_t moe_get32(const unsigned char *b) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}
static inline uint64_t moe_get64(const unsigned char *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

/* Open path read-only for io mode `mode` (enum moe_io_mode): O_DIRECT for
 * direct, which on a file system without it fails with a message naming
 * --io buffered (never a silent fallback). */
int moe_pack_fd_open(const char *path, int mode, int *fd, moe_error *err);
/* The checks every pack opener makes before reading: the path fits
 * path_buf (copied there), mode is known, the host is little-endian (what
 * names the pack kind in the message), then the descriptor per mode. */
int moe_pack_file_begin(char *path_buf, size_t cap, const char *path, int mode, const char *what, int *fd,
                        moe_error *err);
/* Read [off, off+n) of the file into buf (aligned for O_DIRECT); `what`
 * names the region in messages ("header", "layer 3"); a short read is
 * reported as a truncated file. */
int moe_pack_pread(const char *path, int fd, int mode, void *buf, size_t n, uint64_t off, const char *what,
                   moe_error *err);
/* pwrite all n bytes at off (errno set on failure). */
int moe_pack_pwrite_all(int fd, const unsigned char *p, size_t n, uint64_t off);

#endif
