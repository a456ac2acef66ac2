#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_segment into seeds/segment/ (record format: doc/storage.md,
storage/segment_codec.h). The output is committed; rerun only to change the seeds."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "seeds", "segment")


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def string(s):
    return varint(len(s)) + s


def v3_record(rid, handle, function, data, unique=b"", reducer=b"", priority=1, when=0):
    zigzag = (when << 1) ^ (when >> 63)
    body = (varint(rid) + bytes([priority]) + varint(zigzag & (2**64 - 1)) + string(handle)
            + string(function) + string(unique) + string(reducer) + string(data))
    return varint(len(body)) + body


def record(*args, **kwargs):
    rec = v3_record(*args, **kwargs)
    return rec + crc32c(rec).to_bytes(4, "little")


def flip(blob, at):
    return blob[:at] + bytes([blob[at] ^ 0x20]) + blob[at + 1:]


ONE = record(1, b"H:host:1", b"fn", b"payload")
TWO = record(2, b"H:host:2", b"other", b"x" * 200, unique=b"u", priority=0, when=-5)
THREE = record(300, b"H:host:300", b"fn", b"", reducer=b"red", priority=2, when=1900000000)
SEEDS = {
    "one_record": ONE,
    "three_records": ONE + TWO + THREE,
    "damaged_middle": ONE + flip(TWO, 50) + THREE,
    "damaged_length": ONE + flip(TWO, 0) + THREE,
    "damaged_last": ONE + TWO + flip(THREE, len(THREE) - 1),
    "v3_segment": v3_record(1, b"H:host:1", b"fn", b"payload") + v3_record(2, b"H:h:2", b"g", b"d"),
}

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, blob in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(blob)
