/* version.c: compiled on every build so the version is never stale. */
#include "version.h"

#ifndef MOESIM_VERSION
#define MOESIM_VERSION "unknown"
#endif

const char *moe_version(void) { return MOESIM_VERSION; }
