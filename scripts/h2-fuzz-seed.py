#!/usr/bin/env python3
"""Writes an input of the http2 fuzz target (Sources/HopFuzz/HTTP2StreamFuzz.swift): byte 0 the
mode, then records (control byte: bit 0 direction, bits 1-2 not 3, length (c >> 3) * 4 + 1) of
HTTP/2 frames after the preface the target adds: SETTINGS both ways, a GET on stream 1 (HPACK
by hand: indexed :method GET, :scheme http, :path /, a literal :authority that is indexed and
then referred to by stream 3), its answer with DATA, a RST_STREAM on stream 3.
usage: h2-fuzz-seed.py OUT"""
import sys

def frame(t, flags, sid, payload):
    n = len(payload)
    return bytes([n >> 16, (n >> 8) & 255, n & 255, t, flags, (sid >> 24) & 127, (sid >> 16) & 255, (sid >> 8) & 255, sid & 255]) + payload

client = frame(4, 0, 0, b"") + frame(1, 5, 1, bytes([0x82, 0x86, 0x84, 0x41, 1]) + b"a") \
    + frame(1, 5, 3, bytes([0x82, 0x86, 0x84, 0xbe]))
server = frame(4, 0, 0, b"") + frame(4, 1, 0, b"") + frame(1, 4, 1, bytes([0x88])) + frame(0, 1, 1, b"hello") \
    + frame(3, 0, 3, bytes([0, 0, 0, 8]))
out = bytearray([0])
for d, b in ((0, client), (1, server)):
    while b:
        n = min(len(b), 125)
        units = (n - 1) // 4
        take = units * 4 + 1
        out.append(units << 3 | d)
        out += b[:take]
        b = b[take:]
open(sys.argv[1], "wb").write(bytes(out))
