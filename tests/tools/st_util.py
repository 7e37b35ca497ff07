"""st_util.py: read and write .safetensors with the Python standard library only.

Tensors are kept as raw little-endian bytes plus dtype and shape, so files
can be sliced and re-assembled without numpy."""
import json
import struct

DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2}


def read(path):
    """Return (dict name -> (dtype, shape, raw bytes), metadata dict or None)."""
    with open(path, "rb") as f:
        data = f.read()
    (hlen,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + hlen])
    meta = header.pop("__metadata__", None)
    base = 8 + hlen
    out = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        out[name] = (e["dtype"], list(e["shape"]), data[base + a:base + b])
    return out, meta


def layout(tensors, order=None):
    """Header dict and data bytes for tensors (name -> (dtype, shape, raw))."""
    header, chunks, off = {}, [], 0
    for name in order or sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    return header, b"".join(chunks)


def encode_header(header, meta=None):
    h = dict(header)
    if meta is not None:
        h["__metadata__"] = meta
    text = json.dumps(h, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)  # align the data region to 8 bytes, as the reference writer does
    return text


def write(path, tensors, meta=None, order=None):
    header, data = layout(tensors, order)
    text = encode_header(header, meta)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(data)


def to_f32_bytes(dtype, raw):
    """Widen F16/BF16 raw bytes to F32 raw bytes (exact)."""
    if dtype == "F32":
        return bytes(raw)
    n = len(raw) // 2
    if dtype == "BF16":
        out = bytearray(4 * n)  # bf16 is the high half of an f32: bytes 2,3 of each little-endian word
        out[2::4] = raw[0::2]
        out[3::4] = raw[1::2]
        return bytes(out)
    vals = struct.unpack("<%de" % n, raw)
    return struct.pack("<%df" % n, *vals)


def encode(values, dtype):
    """Python floats -> raw bytes of dtype (BF16 rounds to nearest even)."""
    if dtype == "F32":
        return struct.pack("<%df" % len(values), *values)
    if dtype == "F16":
        return struct.pack("<%de" % len(values), *values)
    words = struct.unpack("<%dI" % len(values), struct.pack("<%df" % len(values), *values))
    out = bytearray()
    for w in words:
        r = (w + 0x7FFF + ((w >> 16) & 1)) >> 16
        out += struct.pack("<H", r & 0xFFFF)
    return bytes(out)
