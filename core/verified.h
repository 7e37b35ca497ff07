/* verified.h: "verify the checksum once" for large files. A file whose whole
 * content was hashed and matched is recorded by identity (device, inode,
 * size, modification and change times to the nanosecond) with its checksum;
 * a later open of the same, unchanged file skips the hash. Any write,
 * rename onto it or chmod changes the change time and the file is hashed
 * again. Bit rot underneath an unchanged inode is not caught after the
 * first check: that is the price, and why only files of at least
 * MOE_VERIFY_ONCE_BYTES use it (smaller ones hash in well under 0.1 s).
 *
 * The record is a text file, one line per file: $MOESIM_VERIFY_CACHE if set
 * ("off" or empty: no record, always hash), else
 * $XDG_CACHE_HOME/moesim/verified, else ~/.cache/moesim/verified. It is an
 * optimisation only: if it cannot be read or written, files are hashed. */
#ifndef MOE_VERIFIED_H
#define MOE_VERIFIED_H

#include <stdint.h>
#include <sys/stat.h>

#define MOE_VERIFY_ONCE_BYTES (256ull << 20)

/* Bytes from which the record is used (MOESIM_VERIFY_ONCE_BYTES overrides,
 * for tests). */
uint64_t moe_verify_once_bytes(void);
/* 1 if st's file was recorded as verified with this checksum. */
int moe_verified_known(const struct stat *st, uint64_t checksum);
/* Record st's file as verified (best effort). */
void moe_verified_note(const struct stat *st, uint64_t checksum);

#endif
