/* version.h: the release (semantic version, CHANGELOG.md) and the code
 * version recorded with every run (git describe). */
#ifndef MOE_VERSION_H
#define MOE_VERSION_H
#define MOE_RELEASE "0.1.0"
const char *moe_version(void);
#endif
