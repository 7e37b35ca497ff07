/* pack.h: the expert pack, every routed expert of a model laid out for
 * streaming from disk (`moesim model pack`, read by the offloaded backend).
 *
 * Safetensors stay the source of truth: a pack is derived from a model
 * directory and records the model's identity, so a pack of another model (or
 * of a retrained one) is refused. Each expert is one contiguous, 4096-byte
 * aligned block, so a miss is one O_DIRECT pread of exactly that block.
 *
 * Format, version 1. All integers little-endian; offsets in bytes from the
 * start of the file.
 *
 *   [0, 4096)  header
 *      0  char[8]  magic "MOEPACK\0"
 *      8  u32      version = 1
 *     12  u32      dtype of the expert weights: 0 = f32, 2 = bf16 (st_dtype);
 *                  108, 104, 103, 102 = quantized to 8, 4, 3, 2 bits
 *     16  u32      n_layers   MoE layers (the model's sparse layers, in order)
 *     20  u32      n_experts  routed experts per MoE layer
 *     24  u32      hidden     hidden size H
 *     28  u32      inter      intermediate size I of one routed expert
 *     32  u64      expert_bytes  payload of one expert = 3 * I * H * dtype size,
 *                  or for a quantized dtype the two blocks below
 *     40  u64      stride     expert_bytes rounded up to a multiple of 4096
 *     48  u64      index_offset = 4096
 *     56  u64      data_offset  first expert block (multiple of 4096)
 *     64  u64      file_size    total bytes of the file
 *     72  u8[32]   model_id     moe_model_identity() of the source model
 *    104  u8[32]   index_sha256 SHA-256 of the index bytes
 *    136  ...      zero
 *   4088  u64      header_check moe_pack_check64() of bytes [0, 4088)
 *
 *   [index_offset, data_offset)  index: n_layers * n_experts entries, layer
 *      major, 32 bytes each, then zero padding to a multiple of 4096:
 *      0  u64 offset    of the expert's block (multiple of 4096)
 *      8  u64 bytes     = expert_bytes
 *     16  u64 check     moe_pack_check64() of the expert's payload
 *     24  u32 layer     MoE layer ordinal
 *     28  u32 expert
 *
 *   [data_offset, file_size)  expert blocks, (layer 0, expert 0), (0, 1), ...
 *      each `stride` bytes: gate rows [I][H], then up rows [I][H], then down
 *      [H][I], row-major in dtype, then zero padding. A quantized dtype
 *      holds two blocks of backend/quant.h's format instead: gate and up
 *      rows [2I][H], then down [H][I], each quantized along its input
 *      dimension (moe_qmat_bytes each), then zero padding.
 *
 * Every read of an expert verifies its check value, so a corrupted block is
 * reported (file, layer, expert) when it is first used, never computed with. */
#ifndef MOE_BACKEND_PACK_H
#define MOE_BACKEND_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "model.h"

#define MOE_PACK_ALIGN 4096
#define MOE_PACK_VERSION 1

enum moe_pack_dtype { MOE_PACK_F32 = 0, MOE_PACK_BF16 = 2, MOE_PACK_Q8 = 108, MOE_PACK_Q4 = 104, MOE_PACK_Q3 = 103,
                      MOE_PACK_Q2 = 102 };
/* Bits of a quantized pack dtype, 0 for f32 / bf16 or an unknown code. */
int moe_pack_dtype_bits(uint32_t dtype);
/* "f32", "bf16", "q8", ... ("?" for an unknown code). */
const char *moe_pack_dtype_name(uint32_t dtype);

/* How expert blocks are read: direct = pread on an O_DIRECT descriptor (the
 * device's cost, no page cache), buffered = pread through the page cache,
 * mmap = memcpy from a read-only mapping. */
enum moe_io_mode { MOE_IO_DIRECT = 0, MOE_IO_BUFFERED = 1, MOE_IO_MMAP = 2 };
const char *moe_io_mode_name(int mode);
int moe_io_mode_parse(const char *s, int *mode, moe_error *err);

typedef struct moe_pack_entry {
    uint64_t offset, bytes, check;
} moe_pack_entry;

typedef struct moe_pack {
    char path[1024];
    int fd;                 /* opened per io mode */
    int io_mode;            /* the mode opened (direct never falls back, see moe_pack_open) */
    void *map;              /* MOE_IO_MMAP only */
    uint32_t dtype, n_layers, n_experts, hidden, inter;
    uint64_t expert_bytes, stride, data_offset, file_size;
    uint8_t model_id[32];
    moe_pack_entry *index;  /* n_layers * n_experts */
} moe_pack;

/* 64-bit check value of a buffer (word-wise multiply-xor; fast enough to run
 * on every read, not cryptographic). n need not be a multiple of 8. */
uint64_t moe_pack_check64(const void *data, size_t n);

/* Write the pack of model `m` (loaded with its experts) to `path`, atomically
 * (temporary file + fsync + rename: nothing half-written is left on error).
 * dtype: MOE_PACK_F32 or MOE_PACK_BF16 (bf16 rounds to nearest even; exact
 * when the model's file is bf16). progress (may be NULL) is called after each
 * layer. */
int moe_pack_write(const moe_model *m, const char *path, int dtype,
                   void (*progress)(void *ctx, uint32_t layers_done, uint32_t layers), void *ctx,
                   moe_error *err);

/* The same with the experts given by fill instead of the model (which may
 * be loaded without them: `moesim model synth`): fill(fill_ctx, layer,
 * expert, w, err) sets w's inter and its bf16 (gate_up16/down16) or f32
 * matrices, valid until the next call; non-zero stops the write. The pack
 * records m's identity as moe_pack_write does. */
typedef int (*moe_pack_fill)(void *ctx, uint32_t layer, uint32_t expert, moe_mlp_w *w, moe_error *err);
int moe_pack_write_from(const moe_model *m, const char *path, int dtype, moe_pack_fill fill, void *fill_ctx,
                        void (*progress)(void *ctx, uint32_t layers_done, uint32_t layers), void *ctx,
                        moe_error *err);
/* Bytes of the pack of this geometry (0 if it would overflow). */
uint64_t moe_pack_file_bytes(int dtype, uint32_t layers, uint32_t experts, uint32_t hidden, uint32_t inter);

/* Open and validate header, index and file size. mode MOE_IO_DIRECT on a file
 * system without O_DIRECT support fails with a message saying so and naming
 * --io buffered (never a silent fallback). */
int moe_pack_open(moe_pack *p, const char *path, int mode, moe_error *err);
void moe_pack_close(moe_pack *p);
/* Refuse a pack whose geometry or model_id differs from the model's. */
int moe_pack_check_model(const moe_pack *p, const moe_model *m, moe_error *err);
/* Read expert (layer, expert)'s block into raw (MOE_PACK_ALIGN-aligned, at
 * least p->stride bytes) and verify its check value. Thread-safe. */
int moe_pack_read(const moe_pack *p, uint32_t layer, uint32_t expert, void *raw, moe_error *err);
/* Convert a block read by moe_pack_read into f32 gate_up [2I][H] (gate rows,
 * then up rows: moe_mlp_w's layout) and down [H][I]. */
void moe_pack_to_f32(const moe_pack *p, const void *raw, float *gate_up, float *down);
/* A quantized pack's block as two matrix views into raw (no copy). */
struct moe_qmat;
void moe_pack_qviews(const moe_pack *p, const void *raw, struct moe_qmat *gate_up, struct moe_qmat *down);
/* Allocate a buffer suitable for moe_pack_read (free with free()). */
void *moe_pack_alloc_block(const moe_pack *p);

#endif
