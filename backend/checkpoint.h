/* checkpoint.h: the weight files of a model directory, one or sharded.
 *
 * A directory holds either DIR/model.safetensors or Hugging Face's sharded
 * layout: DIR/model.safetensors.index.json, whose "weight_map" maps each
 * tensor name to the shard file (in DIR) that holds it. Every shard is opened
 * and validated as a single file is (safetensors.h); the index must map each
 * tensor of each shard to that shard and nothing else, so a tensor is found
 * in exactly one place. Both files present is refused (which one is meant
 * would be a guess). */
#ifndef MOE_BACKEND_CHECKPOINT_H
#define MOE_BACKEND_CHECKPOINT_H

#include <stddef.h>

#include "../core/error.h"
#include "safetensors.h"

typedef struct moe_ckpt_entry {
    const char *name;      /* points into the tensor's st_file */
    const st_tensor *t;
    size_t file;           /* index into files */
} moe_ckpt_entry;

typedef struct moe_checkpoint {
    char path[1024];       /* model.safetensors, or the index file */
    int sharded;
    st_file *files;        /* one, or one per distinct shard */
    size_t n_files;
    moe_ckpt_entry *entries; /* every tensor, sorted by name */
    size_t n_entries;
} moe_checkpoint;

/* Open the weights of dir; on failure err names the file (the index and the
 * shard or tensor at fault for a sharded checkpoint) and -1 is returned. */
int moe_checkpoint_open(moe_checkpoint *c, const char *dir, moe_error *err);
void moe_checkpoint_close(moe_checkpoint *c);
const st_tensor *moe_checkpoint_find(const moe_checkpoint *c, const char *name);
/* The path of the file that holds t (for messages); c->path if t is NULL. */
const char *moe_checkpoint_file_of(const moe_checkpoint *c, const st_tensor *t);

#endif
