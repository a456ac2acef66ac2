#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_tls into seeds/tls/.

Each seed is: one client-certificate policy byte, a 16-bit little-endian cut point, then a
client's first flight (see fuzz_tls.cc). The ClientHellos come from Python's ssl module over
memory BIOs, so they are what a real client sends; they hold no secret worth keeping (fresh
random values every run). The output is committed; rerun only to change the seeds.
"""
import os
import ssl
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "seeds", "tls")


def client_hello(minimum=None, maximum=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if minimum is not None:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_side=False)
    try:
        conn.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def seed(policy, cut, stream):
    return bytes([policy]) + struct.pack("<H", cut) + stream


def main():
    os.makedirs(OUT, exist_ok=True)
    hello13 = client_hello()
    hello12 = client_hello(maximum=ssl.TLSVersion.TLSv1_2)
    hello11 = client_hello(minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1)
    corrupt = bytearray(hello13)
    corrupt[9] ^= 0xFF  # inside the handshake header's length
    seeds = {
        "hello13": seed(0, len(hello13), hello13),
        "hello13_split": seed(2, 7, hello13),
        "hello12": seed(1, 100, hello12),
        "hello11": seed(0, len(hello11), hello11),
        "hello13_truncated": seed(0, 40, hello13[: len(hello13) // 2]),
        "hello13_corrupt": seed(1, 5, bytes(corrupt)),
        "record_header_only": seed(0, 5, b"\x16\x03\x01\x40\x00"),
        "alert": seed(0, 7, b"\x15\x03\x03\x00\x02\x02\x28"),
        "plain_gearman": seed(0, 4, b"\x00REQ\x00\x00\x00\x10\x00\x00\x00\x00"),
        "hello13_then_appdata": seed(0, len(hello13), hello13 + b"\x17\x03\x03\x00\x10" + b"A" * 16),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
