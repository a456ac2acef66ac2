#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_frames into seeds/frames/.

Each seed is: one Limits preset byte, a 16-bit little-endian cut point, then the peer's byte
stream (see fuzz_frames.cc). Run from anywhere; the output is committed, so rerun only to change
the seeds.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "seeds", "frames")

DEFAULTS, TINY, SMALL, MEDIUM = 0, 1, 2, 3


def req(ptype, *args, magic=b"\0REQ"):
    body = b"\0".join(args)
    return magic + struct.pack(">II", ptype, len(body)) + body


def res(ptype, *args):
    return req(ptype, *args, magic=b"\0RES")


def seed(preset, cut, stream):
    return bytes([preset]) + struct.pack("<H", cut) + stream


SEEDS = {
    "submit_job": seed(DEFAULTS, 0, req(7, b"reverse", b"", b"test")),
    "worker_cycle": seed(DEFAULTS, 7, req(22, b"w1") + req(1, b"reverse") + req(9) + req(4)
                         + req(30) + req(39) + req(12, b"H:lap:1", b"1", b"4")
                         + req(28, b"H:lap:1", b"part") + req(29, b"H:lap:1", b"warn")
                         + req(13, b"H:lap:1", b"tset") + req(14, b"H:lap:2")
                         + req(25, b"H:lap:3", b"boom") + req(2, b"reverse") + req(3)),
    "responses": seed(DEFAULTS, 30, res(8, b"H:lap:1") + res(6) + res(10)
                      + res(11, b"H:lap:1", b"reverse", b"test")
                      + res(31, b"H:vm:2", b"fn", b"", b"hi")
                      + res(40, b"H:vm:1", b"fn", b"u1", b"red", b"payload1")
                      + res(20, b"H:vm:5", b"1", b"1", b"1", b"4")
                      + res(42, b"stu", b"1", b"1", b"3", b"7", b"1")
                      + res(19, b"UNKNOWN_OPTION", b"Server does not recognize given option")
                      + res(17, b"echo") + res(27, b"exceptions")),
    "submit_variants": seed(DEFAULTS, 100, req(18, b"fn", b"uuid-1", b"bg")
                            + req(21, b"fn", b"", b"high") + req(32, b"fn", b"u", b"hbg")
                            + req(33, b"fn", b"-", b"low") + req(34, b"fn", b"#", b"lbg")
                            + req(36, b"fn", b"u", b"1700000000", b"epoch")
                            + req(35, b"fn", b"u", b"1", b"2", b"3", b"4", b"5", b"sched")
                            + req(37, b"fn", b"u", b"reducer", b"", b"data")
                            + req(38, b"fn", b"u", b"reducer", b"agg", b"data")
                            + req(15, b"H:lap:1") + req(41, b"uuid-1")),
    "echo_pipelined": seed(DEFAULTS, 55, b"".join(req(16, b"ping %d" % i) for i in range(20))),
    "admin_lines": seed(DEFAULTS, 3, b"status\r\nworkers\nprioritystatus\r\nshow jobs\r\n"
                        b"show unique jobs\r\nmaxqueue fn 1 2 3\ncancel job H:x:1\r\n"
                        b"create function fn\r\ndrop function fn\nversion\ngetpid\r\n"),
    "admin_edge": seed(DEFAULTS, 0, b" status\na  b   \nstatus\tx\na b c d e f\n\r\n\n"
                       b"x\r\r\n" + b"a\0b\n"),
    "mixed": seed(DEFAULTS, 20, req(16, b"hi") + b"version\r\n" + req(7, b"f", b"u", b"d")
                  + b"status\n" + req(9)),
    "missing_args": seed(DEFAULTS, 12, req(7, b"reverse") + req(12, b"H:lap:1")
                         + req(37, b"fn", b"u", b"reducer", b"data") + req(16, b"after")),
    "bad_magic": seed(DEFAULTS, 0, req(16, b"x", magic=b"\0REX")),
    "bad_type": seed(DEFAULTS, 0, req(9) + b"\0REQ" + struct.pack(">II", 43, 0)),
    "type_zero": seed(DEFAULTS, 0, b"\0REQ" + struct.pack(">II", 0, 0)),
    "oversized": seed(SMALL, 15, req(16, b"0123456789abcdefghij") + req(9) + b"ok\n"),
    "long_lines": seed(DEFAULTS, 4000, b"a" * 8191 + b"\n" + b"b" * 8192 + b"\n"),
    "split_header": seed(DEFAULTS, 5, req(23, b"reverse", b"1500") + req(26, b"exceptions")),
    "grab_junk": seed(DEFAULTS, 0, req(9, b"junk") + req(30, b"\0\0\0")),
    "tiny_limits": seed(TINY, 1, b"\n" + b"x\n" + req(9) + req(16, b"x")),
    "medium_limits": seed(MEDIUM, 9, b"show  unique   jobs   \r\n" + req(16, b"y" * 64)
                          + req(16, b"z" * 65)),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(SEEDS), OUT))


if __name__ == "__main__":
    main()
