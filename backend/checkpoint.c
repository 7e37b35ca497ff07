/* checkpoint.c: one model.safetensors, or shards resolved through
 * model.safetensors.index.json (see checkpoint.h). */
#include "checkpoint.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "readfile.h"

/* An index lists names, not weights: a few MB for the largest checkpoints;
 * anything far beyond is not an index. */
#define CKPT_MAX_INDEX (64u << 20)

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const moe_ckpt_entry *)a)->name, ((const moe_ckpt_entry *)b)->name);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Position of shard name s in the sorted, distinct names, or -1. */
static long shard_pos(char **names, size_t n, const char *s) {
    char **hit = bsearch(&s, names, n, sizeof *names, cmp_str);
    return hit ? (long)(hit - names) : -1;
}

/* A shard must be a file beside the index: a plain name, no directories. */
static int valid_shard_name(const char *s) {
    return *s && strlen(s) < 256 && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static int open_single(moe_checkpoint *c, const char *path, moe_error *err) {
    snprintf(c->path, sizeof c->path, "%s", path);
    c->files = calloc(1, sizeof *c->files);
    if (!c->files) return moe_fail(err, "out of memory");
    if (st_open(&c->files[0], path, err)) return -1;
    c->n_files = 1;
    c->entries = calloc(c->files[0].n_tensors ? c->files[0].n_tensors : 1, sizeof *c->entries);
    if (!c->entries) return moe_fail(err, "out of memory");
    for (size_t i = 0; i < c->files[0].n_tensors; i++)
        c->entries[c->n_entries++] = (moe_ckpt_entry){c->files[0].tensors[i].name, &c->files[0].tensors[i], 0};
    return 0; /* st_file keeps its tensors sorted by name already */
}

/* The weight_map's pairs, checked and sorted by tensor name; the distinct
 * shard names sorted in *shards. */
typedef struct map_pair { const char *tensor, *shard; } map_pair;
static int cmp_pair(const void *a, const void *b) { return strcmp(((const map_pair *)a)->tensor, ((const map_pair *)b)->tensor); }

static int read_weight_map(const cJSON *wm, const char *path, map_pair **pairs_out, size_t *n_out, char ***shards_out,
                           size_t *n_shards_out, moe_error *err) {
    size_t n = 0;
    for (const cJSON *e = wm->child; e; e = e->next) n++;
    if (!n) return moe_fail(err, "%s: 'weight_map' is empty", path);
    map_pair *pairs = malloc(n * sizeof *pairs);
    char **shards = malloc(n * sizeof *shards);
    if (!pairs || !shards) {
        free(pairs), free(shards);
        return moe_fail(err, "out of memory");
    }
    size_t i = 0;
    for (const cJSON *e = wm->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e) || !valid_shard_name(e->valuestring)) {
            moe_fail(err, "%s: weight_map['%s']: expected the name of a shard file in the same directory", path,
                     e->string);
            free(pairs), free(shards);
            return -1;
        }
        pairs[i] = (map_pair){e->string, e->valuestring};
        shards[i] = e->valuestring;
    }
    qsort(pairs, n, sizeof *pairs, cmp_pair);
    for (i = 1; i < n; i++)
        if (!strcmp(pairs[i].tensor, pairs[i - 1].tensor)) {
            moe_fail(err, "%s: weight_map lists tensor '%s' twice", path, pairs[i].tensor);
            free(pairs), free(shards);
            return -1;
        }
    qsort(shards, n, sizeof *shards, cmp_str);
    size_t d = 0;
    for (i = 0; i < n; i++)
        if (!d || strcmp(shards[i], shards[d - 1])) shards[d++] = shards[i];
    *pairs_out = pairs, *n_out = n, *shards_out = shards, *n_shards_out = d;
    return 0;
}

static int open_sharded(moe_checkpoint *c, const char *dir, const char *index, moe_error *err) {
    snprintf(c->path, sizeof c->path, "%s", index);
    c->sharded = 1;
    size_t len = 0;
    unsigned char *text = moe_backend_read_file(index, &len, err);
    if (!text) return -1;
    if (len > CKPT_MAX_INDEX) {
        free(text);
        return moe_fail(err, "%s: %zu bytes, too large for a shard index", index, len);
    }
    cJSON *root = cJSON_ParseWithLength((const char *)text, len);
    free(text);
    if (!root) return moe_fail(err, "%s: malformed JSON", index);
    int rc = -1;
    map_pair *pairs = NULL;
    char **shards = NULL;
    size_t n_pairs = 0, n_shards = 0;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        moe_fail(err, "%s: no 'weight_map' object", index);
        goto out;
    }
    if (read_weight_map(wm, index, &pairs, &n_pairs, &shards, &n_shards, err)) goto out;
    if (!(c->files = calloc(n_shards, sizeof *c->files)) || !(c->entries = calloc(n_pairs, sizeof *c->entries))) {
        moe_fail(err, "out of memory");
        goto out;
    }
    for (size_t s = 0; s < n_shards; s++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, shards[s]);
        if (st_open(&c->files[s], path, err)) {
            moe_fail_prefix(err, "%s: shard '%s'", index, shards[s]);
            goto out;
        }
        c->n_files = s + 1;
    }
    /* Every mapped tensor in its shard ... */
    for (size_t i = 0; i < n_pairs; i++) {
        size_t f = (size_t)shard_pos(shards, n_shards, pairs[i].shard);
        const st_tensor *t = st_find(&c->files[f], pairs[i].tensor);
        if (!t) {
            moe_fail(err, "%s: weight_map maps tensor '%s' to shard '%s', which does not hold it", index,
                     pairs[i].tensor, pairs[i].shard);
            goto out;
        }
        c->entries[c->n_entries++] = (moe_ckpt_entry){t->name, t, f};
    }
    /* ... and every shard's tensor mapped to that shard: a tensor in two
     * shards, or one the index does not know, would make the weights depend
     * on which file is read. */
    for (size_t f = 0; f < n_shards; f++)
        for (size_t k = 0; k < c->files[f].n_tensors; k++) {
            const char *name = c->files[f].tensors[k].name;
            map_pair key = {name, NULL};
            const map_pair *p = bsearch(&key, pairs, n_pairs, sizeof *pairs, cmp_pair);
            if (!p) {
                moe_fail(err, "%s: tensor '%s' of shard '%s' is not in weight_map", index, name, shards[f]);
                goto out;
            }
            if (strcmp(p->shard, shards[f])) {
                moe_fail(err, "%s: tensor '%s' is in shard '%s' and in shard '%s' (weight_map names '%s')", index,
                         name, p->shard, shards[f], p->shard);
                goto out;
            }
        }
    qsort(c->entries, c->n_entries, sizeof *c->entries, cmp_entry);
    rc = 0;
out:
    free(pairs);
    free(shards);
    cJSON_Delete(root); /* names now point into the shards' own tables */
    return rc;
}

int moe_checkpoint_open(moe_checkpoint *c, const char *dir, moe_error *err) {
    memset(c, 0, sizeof *c);
    char single[1024], index[1024];
    snprintf(single, sizeof single, "%s/model.safetensors", dir);
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    int has_index = access(index, F_OK) == 0;
    int rc;
    if (has_index && access(single, F_OK) == 0)
        rc = moe_fail(err, "%s: both model.safetensors and model.safetensors.index.json are present; "
                           "remove the one that is not meant", dir);
    else rc = has_index ? open_sharded(c, dir, index, err) : open_single(c, single, err);
    if (rc) moe_checkpoint_close(c);
    return rc;
}

void moe_checkpoint_close(moe_checkpoint *c) {
    for (size_t i = 0; i < c->n_files; i++) st_close(&c->files[i]);
    free(c->files);
    free(c->entries);
    c->files = NULL, c->entries = NULL;
    c->n_files = c->n_entries = 0;
}

const st_tensor *moe_checkpoint_find(const moe_checkpoint *c, const char *name) {
    moe_ckpt_entry key = {.name = name};
    const moe_ckpt_entry *e = bsearch(&key, c->entries, c->n_entries, sizeof *c->entries, cmp_entry);
    return e ? e->t : NULL;
}

const char *moe_checkpoint_file_of(const moe_checkpoint *c, const st_tensor *t) {
    for (size_t i = 0; t && i < c->n_files; i++)
        if (t >= c->files[i].tensors && t < c->files[i].tensors + c->files[i].n_tensors) return c->files[i].path;
    return c->path;
}
