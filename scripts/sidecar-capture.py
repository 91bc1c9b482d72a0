#!/usr/bin/env python3
"""sidecar-capture.py — write a large capture of a pod with a sidecar, made by program.

The HTML and text reports are tested on captures of 10,000 and 100,000 requests. Making them
from real traffic needs root, network namespaces and minutes (Benchmarks/make-capture.sh,
`hoptrace lab load`); this script writes the same shape of capture in seconds, anywhere, so CI
can remake it on every run (a capture that size is far over the 2 MB a committed file may be).

The scene (`tcpdump -i any` in the pod, LINUX_SLL, istio-2018's rules: port 80 REDIRECTed to
the proxy on 15001, the proxy's own connections left alone):

    client 198.18.10.1:eph → pod 198.18.10.2:80        on eth0 (the downstream copy)
    proxy  127.0.0.1:eph   → app 127.0.0.1:80          on lo   (the upstream copy, with an
                                                               x-request-id the proxy adds)

`--connections` keep-alive client connections, each with its own upstream connection, send one
request at a time over `--seconds` of capture time (a busier middle third). Routes with their
own latency (log-normal, a few slow outliers), and the problems a report must put first, each
at a small rate drawn from `--seed`: the app's 5xx, a retry by the proxy after a 503 (two
upstream attempts, one x-request-id), a reply the proxy makes itself (429: no upstream copy,
an incomplete chain), a client that resets its connection while waiting (no response on
either hop), a direct request to :9090 sent twice (an unexplained duplicate), and responses
whose request came before the capture began (orphans).

Usage: scripts/sidecar-capture.py --requests N --out FILE [--connections C] [--seconds S] [--seed N]
Prints one line: the file, packets, bytes and requests by kind.
"""
import argparse
import random
import struct
import sys
import uuid

CLIENT = bytes([198, 18, 10, 1])
POD = bytes([198, 18, 10, 2])
LOOP = bytes([127, 0, 0, 1])

# route template, method, weight, median app time (ms), sigma, body bytes
ROUTES = [
    ("/api/users/{id}", "GET", 40, 2.0, 0.5, 220),
    ("/api/orders/{id}", "GET", 20, 4.0, 0.6, 300),
    ("/api/orders", "POST", 10, 9.0, 0.7, 120),
    ("/api/search?q={q}", "GET", 8, 25.0, 0.8, 600),
    ("/health", "GET", 15, 0.15, 0.3, 2),
    ("/static/app.js", "GET", 7, 0.8, 0.4, 500),
]


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Writer:
    def __init__(self, path):
        self.f = open(path, "wb")
        # pcap, microsecond... no: nanosecond magic, snaplen 262144, LINUX_SLL (113)
        self.f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 113))
        self.packets = 0
        self.bytes = 24

    def packet(self, ts_ns, outgoing, loopback, src, sport, dst, dport, seq, ack, flags, payload=b""):
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
        total = 20 + len(tcp) + len(payload)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, self.packets & 0xFFFF, 0x4000, 64, 6, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
        tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp + payload)) + tcp[18:]
        sll = struct.pack("!HHH8sH", 4 if outgoing else 0, 772 if loopback else 1, 6 if not loopback else 0,
                          b"\x02\x42\xc6\x12\x0a\x02\0\0" if not loopback else b"\0" * 8, 0x0800)
        frame = sll + ip + tcp + payload
        self.f.write(struct.pack("<IIII", ts_ns // 1_000_000_000, ts_ns % 1_000_000_000, len(frame), len(frame)))
        self.f.write(frame)
        self.packets += 1
        self.bytes += 16 + len(frame)

    def close(self):
        self.f.close()


SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10


class Conn:
    """One TCP connection's sequence numbers; its packets are queued as (time, args) events."""

    def __init__(self, events, src, sport, dst, dport, loopback, outgoing_server):
        self.events, self.src, self.sport, self.dst, self.dport = events, src, sport, dst, dport
        self.loopback = loopback
        # On eth0 the pod's packets to the client are outgoing; on lo every packet is both.
        self.outgoing_server = outgoing_server
        self.cseq = random.randrange(1 << 32)
        self.sseq = random.randrange(1 << 32)

    def _c(self, t, flags, payload=b""):
        self.events.append((t, self.loopback, self.loopback, self.src, self.sport,
                            self.dst, self.dport, self.cseq, self.sseq, flags, payload))
        self.cseq += len(payload) + (1 if flags & (SYN | FIN) else 0)

    def _s(self, t, flags, payload=b""):
        self.events.append((t, self.outgoing_server, self.loopback, self.dst, self.dport, self.src, self.sport,
                            self.sseq, self.cseq, flags, payload))
        self.sseq += len(payload) + (1 if flags & (SYN | FIN) else 0)

    def open(self, t):
        self.events.append((t, self.loopback, self.loopback, self.src, self.sport, self.dst, self.dport,
                            self.cseq, 0, SYN, b""))
        self.cseq += 1
        self._s(t + 20_000, SYN | ACK)
        self._c(t + 40_000, ACK)

    def request(self, t, data):
        self._c(t, PSH | ACK, data)

    def response(self, t, data):
        self._s(t, PSH | ACK, data)

    def close(self, t):
        self._c(t, FIN | ACK)
        self._s(t + 30_000, FIN | ACK)
        self._c(t + 60_000, ACK)

    def reset(self, t):
        self._c(t, RST | ACK)


def head(lines):
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=0, help="capture length (default: requests / 1000)")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    random.seed(a.seed)
    seconds = a.seconds or max(5.0, a.requests / 1000)
    start = 1_765_000_000 * 1_000_000_000
    end = start + int(seconds * 1e9)
    events = []
    kinds = {"proxied": 0, "5xx": 0, "retry": 0, "local-reply": 0, "reset": 0, "direct": 0, "duplicate": 0, "orphan": 0}

    # Orphans: responses to requests sent before the capture began (no handshake either).
    for i in range(2):
        o = Conn(events, CLIENT, 40000 + i, POD, 80, False, True)
        o.response(start + 50_000 * (i + 1), head(["HTTP/1.1 200 OK", "content-length: 0", "server: envoy"]))
        kinds["orphan"] += 1

    total = a.requests
    per_conn = [total // a.connections + (1 if i < total % a.connections else 0) for i in range(a.connections)]
    weights = [r[2] for r in ROUTES]
    port = 41000
    uport = 50000
    for ci in range(a.connections):
        n = per_conn[ci]
        t = start + random.randrange(1_000_000, 20_000_000)
        gap = (end - t) / max(1, n) if n else 0

        def new_pair(t):
            nonlocal port, uport
            port += 1
            uport += 1
            down = Conn(events, CLIENT, port, POD, 80, False, True)
            up = Conn(events, LOOP, uport, LOOP, 80, True, True)
            down.open(t)
            up.open(t + 200_000)
            return down, up

        down, up = new_pair(t)
        t += 400_000
        for k in range(n):
            route = random.choices(ROUTES, weights)[0]
            path, method, _, median, sigma, body = route
            target = path.replace("{id}", str(random.randrange(1, 100_000))).replace("{q}", "w%d" % random.randrange(500))
            # The middle third of the capture is twice as busy, and slower.
            busy = start + (end - start) / 3 < t < start + 2 * (end - start) / 3
            app = random.lognormvariate(0, sigma) * median * (1.6 if busy else 1.0)
            if random.random() < 0.002:
                app *= random.uniform(40, 120)  # a slow outlier
            app_ns = int(app * 1e6)
            before = int(random.lognormvariate(0, 0.3) * 180_000)
            after = int(random.lognormvariate(0, 0.3) * 90_000)
            req_body = b'{"item":%d}' % k if method == "POST" else b""
            down_head = ["%s %s HTTP/1.1" % (method, target), "host: 198.18.10.2", "user-agent: rep7-load/1.0", "accept: */*"]
            if req_body:
                down_head.append("content-length: %d" % len(req_body))
            rid = str(uuid.UUID(int=random.getrandbits(128)))
            up_head = down_head + ["x-request-id: " + rid, "x-forwarded-proto: http"]
            roll = random.random()
            if roll < 0.001:
                # The proxy answers itself (rate limit): no upstream copy.
                down.request(t, head(down_head) + req_body)
                down.response(t + before, head(["HTTP/1.1 429 Too Many Requests", "content-length: 0", "server: envoy"]))
                kinds["local-reply"] += 1
                t += before
            elif roll < 0.0018:
                # The client gives up and resets; the proxy resets its upstream connection.
                down.request(t, head(down_head) + req_body)
                up.request(t + before, head(up_head) + req_body)
                down.reset(t + before + app_ns // 2 + 1_000_000)
                up.reset(t + before + app_ns // 2 + 1_100_000)
                kinds["reset"] += 1
                t += before + app_ns // 2 + 2_000_000
                down, up = new_pair(t)
                t += 400_000
            else:
                status, text = (200, "OK") if method != "POST" else (201, "Created")
                down.request(t, head(down_head) + req_body)
                u0 = t + before
                if roll < 0.0035:
                    # A 503 from the app, retried by the proxy on the same upstream connection.
                    up.request(u0, head(up_head) + req_body)
                    first = int(app_ns * 0.2) + 30_000
                    up.response(u0 + first, head(["HTTP/1.1 503 Service Unavailable", "content-length: 0"]))
                    u0 += first + 25_000_000  # the retry back-off
                    kinds["retry"] += 1
                elif roll < 0.0085 and method == "POST":
                    status, text = 500, "Internal Server Error"
                    kinds["5xx"] += 1
                elif roll < 0.0060:
                    status, text = 503, "Service Unavailable"
                    kinds["5xx"] += 1
                size = body if status < 300 else 40
                resp_body = (b"x" * size)
                up.request(u0, head(up_head) + req_body)
                ue = u0 + app_ns
                up.response(ue, head(["HTTP/1.1 %d %s" % (status, text), "content-length: %d" % size]) + resp_body)
                de = ue + after
                down.response(de, head(["HTTP/1.1 %d %s" % (status, text), "content-length: %d" % size, "server: envoy",
                                        "x-envoy-upstream-service-time: %d" % max(1, app_ns // 1_000_000)]) + resp_body)
                kinds["proxied"] += 1
                t = de
            t += int(random.expovariate(1.0) * gap * (0.5 if busy else 1.25)) + 50_000
        down.close(t + 1_000_000)
        up.close(t + 1_200_000)

    # Direct requests to :9090 (not intercepted), a few of them sent twice within a second.
    for i in range(max(4, total // 2000)):
        t = start + random.randrange(int((end - start) * 0.9))
        d = Conn(events, CLIENT, 30000 + i, POD, 9090, False, True)
        d.open(t)
        copies = 2 if i % 4 == 0 else 1
        for c in range(copies):
            tc = t + 100_000 + c * 40_000_000
            d.request(tc, head(["GET /metrics HTTP/1.1", "host: 198.18.10.2:9090", "user-agent: rep7-scraper/1.0"]))
            d.response(tc + 700_000, head(["HTTP/1.1 200 OK", "content-length: 10"]) + b"up 1\nok 1\n")
        kinds["direct"] += copies
        if copies == 2:
            kinds["duplicate"] += 1
        d.close(t + 100_000 + copies * 40_000_000)

    events.sort(key=lambda e: e[0])
    w = Writer(a.out)
    for e in events:
        w.packet(*e)
    w.close()
    print("%s: %d packets, %d bytes, %d requests: %s" % (a.out, w.packets, w.bytes, total,
          ", ".join("%s %d" % kv for kv in kinds.items())))


if __name__ == "__main__":
    sys.exit(main())
