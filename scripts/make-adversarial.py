#!/usr/bin/env python3
"""make-adversarial.py — hostile captures for hoptrace, made on demand (not committed).

Usage: scripts/make-adversarial.py OUTDIR [--small] [NAME ...]

Writes OUTDIR/NAME.pcap for each scenario (all when none is named). --small makes the
CI-sized variants (a few thousand packets each); the default sizes are the benchmark ones.
Addresses are in 198.18.0.0/15; the files are classic pcap, Ethernet, microsecond times.

Scenarios:
  request-line-variants  40 connections whose first line is not a strict request line
                         (cut version, no target, no space, non-ASCII method...), each
                         answered by a valid response (200/400/403/405/411)
  syn-flood              SYNs from many source ports (default 1,000,000; --small 5,000)
  pipelined              100,000 pipelined GETs on one connection, then their responses
  big-header             a request with a 1 MB header line, answered
  overlap                overlapping segments whose bytes conflict (first and last copies differ)
  seq-wrap               a keep-alive connection whose sequence numbers wrap past 2^32
  time-backwards         timestamps that go backwards in the middle of exchanges
  snaplen64              snaplen 64: every packet cut after 64 bytes
  truncated              a file cut in the middle of a packet
  late-gap               a response whose middle segment is retransmitted 100 ms after the rest
"""
import os
import struct
import sys

CLIENT = bytes([198, 18, 7, 1])
SERVER = bytes([198, 18, 7, 2])
MAC_C = b"\x02\x00\x00\x00\x07\x01"
MAC_S = b"\x02\x00\x00\x00\x07\x02"


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def tcp_packet(src, dst, sport, dport, seq, ack, flags, payload=b""):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(hdr) + len(payload))
    csum = checksum(pseudo + hdr + payload)
    hdr = hdr[:16] + struct.pack("!H", csum) + hdr[18:]
    total = 20 + len(hdr) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total & 0xFFFF, 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    eth = (MAC_S if src == SERVER else MAC_C) + (MAC_C if src == SERVER else MAC_S) + b"\x08\x00"
    return eth + ip + hdr + payload


SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01


class Pcap:
    def __init__(self, path, snaplen=262144):
        self.f = open(path, "wb")
        self.snaplen = snaplen
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1))

    def write(self, t_us, frame):
        cut = frame[: self.snaplen]
        self.f.write(struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(cut), len(frame)))
        self.f.write(cut)

    def close(self):
        self.f.close()


class Conn:
    """One TCP connection between CLIENT:sport and SERVER:80, written packet by packet."""

    def __init__(self, pcap, sport, t, isn_c=1000, isn_s=5000, mss=1400):
        self.p, self.sport, self.t, self.mss = pcap, sport, t, mss
        self.cseq, self.sseq = isn_c, isn_s
        self.p.write(self.tick(), tcp_packet(CLIENT, SERVER, sport, 80, self.cseq, 0, SYN))
        self.p.write(self.tick(), tcp_packet(SERVER, CLIENT, 80, sport, self.sseq, self.cseq + 1, SYN | ACK))
        self.cseq += 1
        self.sseq += 1
        self.p.write(self.tick(), tcp_packet(CLIENT, SERVER, sport, 80, self.cseq, self.sseq, ACK))

    def tick(self, us=100):
        self.t += us
        return self.t

    def segments(self, data):
        return [data[i:i + self.mss] for i in range(0, len(data), self.mss)] or [b""]

    def send(self, from_client, data, acks=True):
        for seg in self.segments(data):
            if from_client:
                self.p.write(self.tick(), tcp_packet(CLIENT, SERVER, self.sport, 80, self.cseq, self.sseq, ACK | PSH, seg))
                self.cseq += len(seg)
            else:
                self.p.write(self.tick(), tcp_packet(SERVER, CLIENT, 80, self.sport, self.sseq, self.cseq, ACK | PSH, seg))
                self.sseq += len(seg)
        if acks:
            self.ack(not from_client)

    def ack(self, from_client):
        if from_client:
            self.p.write(self.tick(), tcp_packet(CLIENT, SERVER, self.sport, 80, self.cseq, self.sseq, ACK))
        else:
            self.p.write(self.tick(), tcp_packet(SERVER, CLIENT, 80, self.sport, self.sseq, self.cseq, ACK))

    def close(self):
        self.p.write(self.tick(), tcp_packet(CLIENT, SERVER, self.sport, 80, self.cseq, self.sseq, FIN | ACK))
        self.p.write(self.tick(), tcp_packet(SERVER, CLIENT, 80, self.sport, self.sseq, self.cseq + 1, FIN | ACK))
        self.cseq += 1
        self.sseq += 1
        self.ack(True)


def response(status, body=b"ok", extra=b""):
    return b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(body), extra, body)


def get(path, extra=b""):
    return b"GET " + path + b" HTTP/1.1\r\nHost: adversarial.test\r\n" + extra + b"\r\n"


VARIANTS = [
    (b"GET / HTTP/1.\r\n\r\n", 400),
    (b"OPTIONS HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET/ HTTP/1.1\r\nHost: a\r\n\r\n", 405),
    (b"G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n", 411),
    (b"GET /\tx HTTP/1.1\r\n\r\n", 403),
    (b"get / HTTP/1.1\r\nHost: a\r\n\r\n", 200),
    (b"GET  / HTTP/1.1\r\n\r\n", 400),
    (b"\xff\xfeGET / HTTP/1.1\r\n\r\n", 400),
]


def request_line_variants(path, small):
    p = Pcap(path)
    for i in range(40):
        line, status = VARIANTS[i % len(VARIANTS)]
        c = Conn(p, 20000 + i, 1_000_000 + i * 10_000)
        c.send(True, line)
        c.send(False, response(status, b"answer %d" % i, b"Connection: close\r\n"))
        c.close()
    p.close()


def syn_flood(path, small):
    p = Pcap(path)
    n = 5000 if small else 1_000_000
    for i in range(n):
        sport = 1024 + i % 64000
        isn = (i * 2654435761) & 0xFFFFFFFF
        frame = tcp_packet(bytes([198, 18, 8 + (i // 64000) % 200, 1]), SERVER, sport, 80, isn, 0, SYN)
        p.write(1_000_000 + i, frame)
    p.close()


def pipelined(path, small):
    p = Pcap(path)
    n = 2000 if small else 100_000
    c = Conn(p, 30000, 1_000_000)
    reqs = b"".join(get(b"/p/%d" % i) for i in range(n))
    c.send(True, reqs, acks=False)
    c.ack(False)
    resps = b"".join(response(200, b"r%d" % i) for i in range(n))
    c.send(False, resps, acks=False)
    c.ack(True)
    c.close()
    p.close()


def big_header(path, small):
    p = Pcap(path)
    size = 100_000 if small else 1_000_000
    c = Conn(p, 30001, 1_000_000)
    c.send(True, get(b"/big", b"X-Big: " + b"a" * size + b"\r\n"))
    c.send(False, response(431, b"too big"))
    c.send(True, get(b"/after"))
    c.send(False, response(200, b"fine"))
    c.close()
    p.close()


def overlap(path, small):
    """Each request arrives as overlapping segments: a first copy with one content, then a
    copy shifted by 5 bytes whose overlapping bytes differ (the classic evasion shapes)."""
    p = Pcap(path)
    for i in range(20 if small else 2000):
        c = Conn(p, 31000 + i % 30000, 1_000_000 + i * 10_000)
        real = get(b"/real/%d" % i)
        fake = get(b"/FAKE/%d" % i)
        base = c.cseq
        half = len(real) // 2
        p.write(c.tick(), tcp_packet(CLIENT, SERVER, c.sport, 80, base, c.sseq, ACK | PSH, real[:half]))
        p.write(c.tick(), tcp_packet(CLIENT, SERVER, c.sport, 80, base + half - 5, c.sseq, ACK | PSH, fake[half - 5:half + 5]))
        p.write(c.tick(), tcp_packet(CLIENT, SERVER, c.sport, 80, base + half, c.sseq, ACK | PSH, real[half:]))
        p.write(c.tick(), tcp_packet(CLIENT, SERVER, c.sport, 80, base, c.sseq, ACK | PSH, fake))
        c.cseq += len(real)
        c.ack(False)
        c.send(False, response(200, b"x"))
        c.close()
    p.close()


def seq_wrap(path, small):
    p = Pcap(path)
    c = Conn(p, 32000, 1_000_000, isn_c=0xFFFFFF00, isn_s=0xFFFFF000)
    for i in range(50 if small else 5000):
        c.send(True, get(b"/wrap/%d" % i))
        c.send(False, response(200, b"w" * 300))
    c.close()
    p.close()


def time_backwards(path, small):
    p = Pcap(path)
    c = Conn(p, 33000, 5_000_000)
    for i in range(50 if small else 5000):
        c.send(True, get(b"/back/%d" % i))
        c.t -= 700 if i % 3 == 0 else 0
        c.send(False, response(200, b"b"))
        c.t -= 50_000 if i % 7 == 0 else 0
    c.close()
    p.close()


def snaplen64(path, small):
    p = Pcap(path, snaplen=64)
    for i in range(10 if small else 1000):
        c = Conn(p, 34000 + i, 1_000_000 + i * 10_000)
        c.send(True, get(b"/snap/%d" % i))
        c.send(False, response(200, b"s" * 500))
        c.close()
    p.close()


def truncated(path, small):
    tmp = path + ".whole"
    p = Pcap(tmp)
    for i in range(10 if small else 1000):
        c = Conn(p, 35000 + i, 1_000_000 + i * 10_000)
        c.send(True, get(b"/cut/%d" % i))
        c.send(False, response(200, b"c" * 800))
        c.close()
    p.close()
    data = open(tmp, "rb").read()
    os.remove(tmp)
    with open(path, "wb") as f:
        f.write(data[: len(data) - 700])


def late_gap(path, small):
    """GET, then a 3-segment response whose middle segment is lost and retransmitted 100 ms
    after the last one: the response ends when the retransmission arrives."""
    p = Pcap(path)
    c = Conn(p, 36000, 1_000_000)
    c.send(True, get(b"/late"))
    body = b"L" * 3000
    r = response(200, body)
    segs = c.segments(r)
    base = c.sseq
    offs = [sum(len(s) for s in segs[:k]) for k in range(len(segs))]
    order = [0, 2, 1]
    for k in order:
        if k == 1:
            c.tick(100_000)
        p.write(c.tick(), tcp_packet(SERVER, CLIENT, 80, c.sport, base + offs[k], c.cseq, ACK | PSH, segs[k]))
    c.sseq += len(r)
    c.ack(True)
    c.close()
    p.close()


SCENARIOS = {
    "request-line-variants": request_line_variants,
    "syn-flood": syn_flood,
    "pipelined": pipelined,
    "big-header": big_header,
    "overlap": overlap,
    "seq-wrap": seq_wrap,
    "time-backwards": time_backwards,
    "snaplen64": snaplen64,
    "truncated": truncated,
    "late-gap": late_gap,
}


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    small = "--small" in argv
    if not args or "--help" in argv:
        print(__doc__)
        return 2
    out, names = args[0], args[1:] or list(SCENARIOS)
    os.makedirs(out, exist_ok=True)
    for name in names:
        if name not in SCENARIOS:
            print("unknown scenario: %s (known: %s)" % (name, ", ".join(SCENARIOS)), file=sys.stderr)
            return 2
        path = os.path.join(out, name + ".pcap")
        SCENARIOS[name](path, small)
        print("%s %d bytes" % (path, os.path.getsize(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
