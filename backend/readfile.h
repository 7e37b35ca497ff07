/* readfile.h: slurp a whole file (prompt files, held-out text). */
#ifndef MOE_BACKEND_READFILE_H
#define MOE_BACKEND_READFILE_H

#include <stddef.h>

#include "../core/error.h"

/* malloc'ed contents (NUL-terminated for convenience), length in *len. */
unsigned char *moe_backend_read_file(const char *path, size_t *len, moe_error *err);

#endif
