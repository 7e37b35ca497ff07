/* version.h: the code version recorded with every run (git describe). */
#ifndef MOE_VERSION_H
#define MOE_VERSION_H
const char *moe_version(void);
#endif
