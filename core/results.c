/* results.c: PLACEHOLDER until the SQLite store lands. */
#include "results.h"

#include <string.h>

moe_db *moe_db_open(const char *path, moe_error *err) {
    moe_fail(err, "%s: results store not implemented yet", path);
    return NULL;
}
int moe_db_close(moe_db *db, moe_error *err) { (void)db; (void)err; return 0; }
void moe_trace_hash(const moe_trace *t, char out[65]) { (void)t; memset(out, '0', 64); out[64] = 0; }
void moe_config_hash(const char *c, char out[65]) { (void)c; memset(out, '0', 64); out[64] = 0; }
int moe_db_add_trace(moe_db *db, const moe_trace *t, const char *path, char h[65], moe_error *err) {
    (void)db; (void)t; (void)path; (void)h; return moe_fail(err, "not implemented");
}
int moe_db_run_exists(moe_db *db, const char *th, const char *ct, moe_error *err) {
    (void)db; (void)th; (void)ct; return moe_fail(err, "not implemented");
}
int moe_db_store_run(moe_db *db, const moe_run_record *rec, moe_error *err) {
    (void)db; (void)rec; return moe_fail(err, "not implemented");
}
