/* error.h: how every moesim function reports failure.
 *
 * Functions that can fail return 0 on success and -1 on failure, after filling
 * a caller-provided moe_error with a one-line message that names the file and
 * the place at fault ("traces/x.csv:12: column 'expert': 40 >= experts (32)").
 * No function prints or exits on its own: the command decides what to do. */
#ifndef MOE_ERROR_H
#define MOE_ERROR_H

#include <stddef.h>

typedef struct moe_error {
    char msg[1024];
} moe_error;

/* Format a message into err (may be NULL) and return -1, so callers can write
 * `return moe_fail(err, "...")`. */
int moe_fail(moe_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix an existing message, e.g. with the file name: "file: <old msg>". */
int moe_fail_prefix(moe_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A stored check value (checksum, hash) against the one computed from the
 * bytes. `make fuzz` builds with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION,
 * where no check value ever mismatches: otherwise a mutated file would stop
 * at the checksum and the fuzzer would never reach the parsing behind it. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define MOE_CHECK_MISMATCH(stored, computed) ((void)(stored), (void)(computed), 0)
#else
#define MOE_CHECK_MISMATCH(stored, computed) ((stored) != (computed))
#endif

#endif
