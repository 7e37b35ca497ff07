/* dense_pack.h: the dense pack, every decoder layer's dense weights laid out
 * for streaming from disk (`moesim model pack DIR --dense`, read by the
 * offloaded backend under --stream-dense, backend/offload.h).
 *
 * What "dense" holds, per layer: the two norms, attention (q, k, v, o, their
 * biases, q/k norms) and the shared expert with its gate: every weight of
 * the layer that is neither a routed expert (the expert pack's) nor the
 * router. Routers stay in RAM: they are small (experts x hidden) and the
 * gate prefetcher runs layer l+d's router on layer l's input, before layer
 * l+d's block could be in. Embeddings, final norm and LM head stay in RAM too.
 *
 * Like an expert pack it is derived from the model directory and records the
 * model's identity (moe_model_identity), so a dense pack of another model is
 * refused. Each layer is one block starting on a 4096-byte boundary: one
 * O_DIRECT pread per layer. Every decoder layer must be a MoE layer (a model
 * with dense-MLP layers is refused: the simulator prices one block per MoE
 * layer).
 *
 * Format, version 1. Integers little-endian; offsets in bytes from the start
 * of the file (docs/pack-format.md, "Dense packs", byte by byte).
 *
 *   [0, 4096)  header
 *      0  char[8]  magic "MOEDENSE"
 *      8  u32      version = 1
 *     12  u32      n_layers    decoder layers (each one block)
 *     16  u32      n_tensors   entries of the tensor table (1..16)
 *     20  u32      zero
 *     24  u64      block_bytes payload of one layer: the end of its last tensor
 *     32  u64      stride      block_bytes rounded up to a multiple of 4096
 *     40  u64      data_offset 4096 + (n_layers * 8 rounded up to 4096)
 *     48  u64      file_size   data_offset + n_layers * stride
 *     56  u8[32]   model_id    moe_model_identity() of the source model
 *     88  u64      index_check moe_pack_check64() of the index's n_layers * 8 bytes
 *     96  ...      zero
 *    128  tensor table: n_tensors entries of 32 bytes, the same for every layer:
 *      0  u32 kind    enum moe_dense_kind
 *      4  u32 dtype   0 = f32, 1 = f16, 2 = bf16 (safetensors codes); vectors f32
 *      8  u32 rows
 *     12  u32 cols    1 for a vector
 *     16  u64 offset  within the block, a multiple of 64, ascending
 *     24  u64 bytes   rows * cols * dtype size
 *   4088  u64      header_check moe_pack_check64() of bytes [0, 4088)
 *
 *   [4096, data_offset)  index: per layer a u64 check, moe_pack_check64() of
 *      its block_bytes, then zero padding.
 *   [data_offset, file_size)  layer blocks, layer 0 first, `stride` bytes
 *      each: the tensors at their offsets (row-major, as the backend holds
 *      them after loading: matrices in the file's 16-bit dtype or f32,
 *      vectors f32), zero between and after. */
#ifndef MOE_BACKEND_DENSE_PACK_H
#define MOE_BACKEND_DENSE_PACK_H

#include <stdint.h>

#include "../core/error.h"
#include "model.h"

#define MOE_DENSE_PACK_VERSION 1
#define MOE_DENSE_MAX_TENSORS 16

enum moe_dense_kind {
    MOE_DENSE_ATTN_NORM = 0, MOE_DENSE_FFN_NORM, MOE_DENSE_WQ, MOE_DENSE_WK, MOE_DENSE_WV, MOE_DENSE_WO,
    MOE_DENSE_BQ, MOE_DENSE_BK, MOE_DENSE_BV, MOE_DENSE_BO, MOE_DENSE_Q_NORM, MOE_DENSE_K_NORM,
    MOE_DENSE_SHARED_GATE_UP, MOE_DENSE_SHARED_DOWN, MOE_DENSE_SHARED_GATE, MOE_DENSE_KINDS
};

typedef struct moe_dense_tensor {
    uint32_t kind, dtype, rows, cols;
    uint64_t offset, bytes;
} moe_dense_tensor;

typedef struct moe_dense_pack {
    char path[1024];
    int fd, io_mode;        /* enum moe_io_mode (backend/pack.h) */
    void *map;              /* MOE_IO_MMAP only */
    uint32_t n_layers, n_tensors;
    uint64_t block_bytes, stride, data_offset, file_size;
    uint8_t model_id[32];
    moe_dense_tensor table[MOE_DENSE_MAX_TENSORS];
    uint64_t *check;        /* n_layers */
} moe_dense_pack;

/* Write the dense pack of model m (loaded with its dense weights; its
 * experts need not be) to path, atomically. Refuses a model with dense-MLP
 * layers or whose layers hold different tensors. */
int moe_dense_pack_write(const moe_model *m, const char *path, moe_error *err);
/* Open and validate header, table, index and file size (mode: enum
 * moe_io_mode; direct never falls back). */
int moe_dense_pack_open(moe_dense_pack *p, const char *path, int mode, moe_error *err);
void moe_dense_pack_close(moe_dense_pack *p);
/* Refuse a pack of another model: layers, every tensor's shape against
 * what m's config implies, and the model id. */
int moe_dense_pack_check_model(const moe_dense_pack *p, const moe_model *m, moe_error *err);
/* Read layer l's block into raw (4096-aligned, at least p->stride bytes)
 * and verify its check value. Thread-safe. */
int moe_dense_pack_read(const moe_dense_pack *p, uint32_t layer, void *raw, moe_error *err);
/* Layer weights whose dense tensors are views into raw (a block read by
 * moe_dense_pack_read) and whose router and experts are resident's. */
void moe_dense_pack_bind(const moe_dense_pack *p, const void *raw, const moe_layer_w *resident, moe_layer_w *out);
/* "norms", ... name of a kind, for messages. */
const char *moe_dense_kind_name(uint32_t kind);

#endif
