#!/usr/bin/env python3
"""make-adversarial.py — hostile captures for hoptrace, made on demand (not committed).

Usage: scripts/make-adversarial.py OUTDIR [--small] [--body-size BYTES] [NAME ...]
       scripts/make-adversarial.py --list      (the scenarios' names)

Writes OUTDIR/NAME.pcap (NAME.pcapng for pcapng-interfaces) for each scenario (all when none
is named). --small makes the CI-sized variants (a few thousand packets each, none over 2 MB);
the default sizes are the benchmark ones (big-body is 1 GB: write it where there is room).
--body-size sets big-body's size alone. Every file is written as it is made, packet by packet:
nothing the size of the capture is held in memory. Addresses are in 198.18.0.0/15; the files
are classic pcap, Ethernet, microsecond times, except where a scenario says otherwise.

Scenarios:
  request-line-variants  40 connections whose first line is not a strict request line
                         (cut version, no target, no space, non-ASCII method...), each
                         answered by a valid response (200/400/403/405/411)
  syn-flood              SYNs from many source ports (default 1,000,000; --small 5,000)
  pipelined              100,000 pipelined GETs on one connection, then their responses
  big-header             a request with a 1 MB header line, answered
  big-body               a response with a 1 GB body (--small 1 MB; --body-size BYTES)
  overlap                overlapping segments whose bytes conflict: the classic evasion shapes
                         (a full retransmission with other bytes, a segment overlapping the
                         start or the end of an earlier one, one covering an earlier one, an
                         out-of-order copy overlapped later), where first-wins and last-wins
                         reassembly read different requests (/real/ first, /FAKE/ last)
  seq-wrap               a keep-alive connection whose sequence numbers wrap past 2^32
  time-backwards         timestamps that go backwards in the middle of exchanges
  hole-flood             200 connections each holding ~1 MB behind a hole at once (more than the
                         64 MiB all connections may buffer), then filled and answered
  pcapng-interfaces      a pcapng with four interfaces: two Ethernet, one LINUX_SLL and one
                         RAW (link types that differ; each interface declared before its packets)
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


def ones_sum(data):
    """The 16-bit one's complement sum of data (not yet complemented)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def checksum(data, partial=0):
    s = ones_sum(data) + partial
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip_tcp(src, dst, sport, dport, seq, ack, flags, payload=b"", payload_sum=None):
    """IPv4 + TCP with correct checksums. payload_sum: the payload's ones_sum when the caller
    sends the same (even-length) payload many times and has it already."""
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(hdr) + len(payload))
    if payload_sum is None:
        csum = checksum(pseudo + hdr + payload)
    else:
        csum = checksum(pseudo + hdr, payload_sum)
    hdr = hdr[:16] + struct.pack("!H", csum) + hdr[18:]
    total = 20 + len(hdr) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total & 0xFFFF, 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + hdr + payload


def ethernet(src, frame_ip):
    return (MAC_S if src == SERVER else MAC_C) + (MAC_C if src == SERVER else MAC_S) + b"\x08\x00" + frame_ip


def tcp_packet(src, dst, sport, dport, seq, ack, flags, payload=b"", payload_sum=None):
    return ethernet(src, ip_tcp(src, dst, sport, dport, seq, ack, flags, payload, payload_sum))


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


# The classic overlap shapes (Ptacek & Newsham; Novak's target-based reassembly). Each is a
# list of (which copy, start, end): bytes [start, end) of the real or the fake request (end None:
# to its end), sent at stream offset `start`, in capture order. The two requests differ only in bytes 5..8
# ("real" / "FAKE"), so first-wins reassembly reads /real/ and last-wins reads /FAKE/; in
# three-way, where each byte's first copy comes from either, first-wins reads /reKE/.
OVERLAP_SHAPES = [
    ("same-range", [("real", 0, None), ("fake", 0, None)]),
    ("covered", [("real", 0, None), ("fake", 5, 9)]),
    ("overlaps-end", [("real", 0, 9), ("fake", 5, None)]),
    ("overlaps-start", [("real", 4, None), ("fake", 0, 9)]),
    ("covers", [("real", 5, 9), ("fake", 0, None)]),
    ("buffered-twice", [("real", 5, None), ("fake", 5, None), ("real", 0, 5)]),
    ("three-way", [("real", 0, 7), ("fake", 3, 12), ("real", 7, None), ("fake", 0, None)]),
]


def overlap(path, small):
    """Each request arrives as overlapping segments whose overlapping bytes conflict, in one
    of the classic shapes; then the server answers it. hoptrace keeps the first copy of every
    byte (and counts inconsistent-retransmissions): no target it reports may be /FAKE/."""
    p = Pcap(path)
    for i in range(len(OVERLAP_SHAPES) * (3 if small else 300)):
        _, sends = OVERLAP_SHAPES[i % len(OVERLAP_SHAPES)]
        c = Conn(p, 31000 + i % 30000, 1_000_000 + i * 10_000)
        copies = {"real": get(b"/real/%d" % i), "fake": get(b"/FAKE/%d" % i)}
        base = c.cseq
        for which, start, end in sends:
            data = copies[which]
            end = len(data) if end is None else end
            p.write(c.tick(), tcp_packet(CLIENT, SERVER, c.sport, 80, base + start, c.sseq, ACK | PSH, data[start:end]))
        c.cseq += len(copies["real"])
        c.ack(False)
        c.send(False, response(200, b"x"))
        c.close()
    p.close()


def big_body(path, small, size=None):
    """GET answered by a response with a body of `size` bytes (1 GB; --small 1 MB), written
    segment by segment (the body is never held whole), then a second exchange on the same
    connection: the analysis must go on past the body."""
    if size is None:
        size = 1 << 20 if small else 1 << 30
    p = Pcap(path)
    c = Conn(p, 37000, 1_000_000, mss=1448)
    c.send(True, get(b"/big-body"))
    c.send(False, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size, acks=False)
    full = b"B" * c.mss
    full_sum = ones_sum(full)
    left, n = size, 0
    while left > 0:
        seg = full if left >= c.mss else full[:left]
        frame = tcp_packet(SERVER, CLIENT, 80, c.sport, c.sseq, c.cseq, ACK, seg,
                           full_sum if seg is full else None)
        p.write(c.tick(10), frame)
        c.sseq += len(seg)
        left -= len(seg)
        n += 1
        if n % 64 == 0:
            c.ack(True)
    c.ack(True)
    c.send(True, get(b"/after-big-body"))
    c.send(False, response(200, b"after"))
    c.close()
    p.close()


def hole_flood(path, small):
    """Many connections, each missing its first client segment, then sending up to 1 MB past
    the hole, round-robin so every hole is open at once (200 x ~1 MB: more than the 64 MiB
    hoptrace buffers over all connections); then the holes are filled and each request is
    answered. --small: 2 connections x 1.1 MB, past the 1 MiB cap of one direction."""
    p = Pcap(path)
    n, segments = (2, 760) if small else (200, 700)
    mss = 1448
    body = b"P" * (segments * mss)
    conns = [Conn(p, 39000 + i, 1_000_000 + i * 1000, mss=mss) for i in range(n)]
    heads = [b"POST /hole/%d HTTP/1.1\r\nHost: adversarial.test\r\nContent-Length: %d\r\n\r\n" % (i, len(body))
             for i in range(n)]
    chunk = body[:mss]
    chunk_sum = ones_sum(chunk)
    t = 2_000_000
    for k in range(segments):
        for i, c in enumerate(conns):
            t += 5
            off = len(heads[i]) + k * mss
            p.write(t, tcp_packet(CLIENT, SERVER, c.sport, 80, c.cseq + off, c.sseq, ACK, chunk, chunk_sum))
    for i, c in enumerate(conns):
        c.t = t = t + 5
        p.write(c.tick(), tcp_packet(CLIENT, SERVER, c.sport, 80, c.cseq, c.sseq, ACK | PSH, heads[i]))
        c.cseq += len(heads[i]) + len(body)
        c.ack(False)
        c.send(False, response(200, b"filled"))
        c.close()
        t = c.t
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
    c = Conn(p, 33000, 1_000_000_000)
    for i in range(50 if small else 5000):
        c.send(True, get(b"/back/%d" % i))
        c.t -= 700 if i % 3 == 0 else 0
        c.send(False, response(200, b"b"))
        c.t -= 50_000 if i % 7 == 0 else 0
    c.close()
    p.close()


class Pcapng:
    """A pcapng file written block by block: a section header, then interfaces declared when
    `interface` is called (each before its first packet), enhanced packet blocks."""

    ETHERNET, RAW, LINUX_SLL = 1, 101, 113

    def __init__(self, path):
        self.f = open(path, "wb")
        self.linktypes = []
        self.block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))

    def block(self, kind, body):
        body += b"\0" * (-len(body) % 4)
        length = 12 + len(body)
        self.f.write(struct.pack("<II", kind, length) + body + struct.pack("<I", length))

    def interface(self, linktype, name):
        """Declares an interface; returns a writer of Ethernet frames onto it (each frame is
        re-framed for the interface's link type)."""
        option = name.encode()
        options = struct.pack("<HH", 2, len(option)) + option + b"\0" * (-len(option) % 4) + struct.pack("<HH", 0, 0)
        self.block(1, struct.pack("<HHI", linktype, 0, 262144) + options)
        self.linktypes.append(linktype)
        pcapng, index = self, len(self.linktypes) - 1

        class Interface:
            def write(self, t_us, frame):
                pcapng.packet(index, t_us, frame)
        return Interface()

    def packet(self, index, t_us, frame):
        linktype = self.linktypes[index]
        if linktype == self.RAW:
            frame = frame[14:]
        elif linktype == self.LINUX_SLL:
            outgoing = frame[6:12] == MAC_C
            frame = struct.pack("!HHH8sH", 4 if outgoing else 0, 1, 6, frame[6:12] + b"\0\0", 0x0800) + frame[14:]
        self.block(6, struct.pack("<IIIII", index, t_us >> 32, t_us & 0xFFFFFFFF, len(frame), len(frame)) + frame)

    def close(self):
        self.f.close()


def pcapng_interfaces(path, small):
    """Four interfaces of three link types, each declared just before its packets, and one
    more exchange on the first interface at the end: nothing after a change of link type may
    be lost silently."""
    f = Pcapng(path)
    t = 1_000_000
    plan = [(Pcapng.ETHERNET, "eth0"), (Pcapng.ETHERNET, "eth1"), (Pcapng.LINUX_SLL, "any"), (Pcapng.RAW, "tun0")]
    interfaces = []
    for k, (linktype, name) in enumerate(plan):
        interfaces.append(f.interface(linktype, name))
        for i in range(3 if small else 300):
            c = Conn(interfaces[-1], 38000 + k * 1000 + i, t)
            c.send(True, get(b"/if/%s/%d" % (name.encode(), i)))
            c.send(False, response(200, b"from %s" % name.encode()))
            c.close()
            t = c.t + 1000
    c = Conn(interfaces[0], 38999, t)
    c.send(True, get(b"/if/eth0/last"))
    c.send(False, response(200, b"last"))
    c.close()
    f.close()


def snaplen64(path, small):
    p = Pcap(path, snaplen=64)
    for i in range(10 if small else 1000):
        c = Conn(p, 34000 + i, 1_000_000 + i * 10_000)
        c.send(True, get(b"/snap/%d" % i))
        c.send(False, response(200, b"s" * 500))
        c.close()
    p.close()


def truncated(path, small):
    """Exchanges, then the file cut 700 bytes before its end: inside the last response's
    packet (its record header says more bytes than the file holds)."""
    p = Pcap(path)
    for i in range(10 if small else 1000):
        c = Conn(p, 35000 + i, 1_000_000 + i * 10_000)
        c.send(True, get(b"/cut/%d" % i))
        c.send(False, response(200, b"c" * 800))
        c.close()
    p.close()
    os.truncate(path, os.path.getsize(path) - 700)


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
    "big-body": big_body,
    "overlap": overlap,
    "hole-flood": hole_flood,
    "pcapng-interfaces": pcapng_interfaces,
    "seq-wrap": seq_wrap,
    "time-backwards": time_backwards,
    "snaplen64": snaplen64,
    "truncated": truncated,
    "late-gap": late_gap,
}


def main(argv):
    argv = list(argv)
    body_size = None
    if "--body-size" in argv:
        k = argv.index("--body-size")
        try:
            body_size = int(argv[k + 1])
        except (IndexError, ValueError):
            print("--body-size needs a number of bytes", file=sys.stderr)
            return 2
        del argv[k:k + 2]
    if "--list" in argv:
        print("\n".join(SCENARIOS))
        return 0
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
        path = os.path.join(out, name + (".pcapng" if name == "pcapng-interfaces" else ".pcap"))
        if name == "big-body":
            big_body(path, small, body_size)
        else:
            SCENARIOS[name](path, small)
        print("%s %d bytes" % (path, os.path.getsize(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
