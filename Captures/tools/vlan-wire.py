#!/usr/bin/env python3
"""Userspace 802.1Q / 802.1ad tagging wire (used only to make vlan.pcap and
qinq.pcap).

Why: this machine's kernel is built without CONFIG_VLAN_8021Q (no `ip link
... type vlan`) and without bridge VLAN filtering or tc act_vlan, so the
kernel itself cannot put tags on frames. This relay plays the part of the two
VLAN subinterfaces: it moves real Ethernet frames between two "access" veth
ends and a "trunk" veth pair, pushing the tag(s) onto every frame that goes
onto the trunk and popping them off every frame that leaves it.

    client ns                wire ns (this program)                  server ns
    htc0 ==veth== htc1 <-> [push tags] htw0 ==veth== htw1 [pop tags] <-> hts1 ==veth== hts0

Capture on htw0 (or htw1) to see the tagged frames. Frames received on the
trunk have the outermost tag removed by the kernel (it keeps it as packet
metadata, which libpcap puts back into the capture); any remaining tags are
popped here.

usage: vlan-wire.py --client-if htc1 --server-if hts1 --trunk-client htw0
                    --trunk-server htw1 --tag 0x8100:100 [--tag ...] [--timeout S]
Tags are listed outermost first (QinQ: --tag 0x88a8:200 --tag 0x8100:100).
"""
import argparse
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)


def open_if(name):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((name, ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return s


def push(frame, tags):
    hdr = b"".join(struct.pack("!HH", tpid, vid & 0x0FFF) for tpid, vid in tags)
    return frame[:12] + hdr + frame[12:]


def pop(frame):
    off = 12
    while len(frame) >= off + 4 and struct.unpack_from("!H", frame, off)[0] in VLAN_TPIDS:
        off += 4
    return frame[:12] + frame[off:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client-if", required=True)
    ap.add_argument("--server-if", required=True)
    ap.add_argument("--trunk-client", required=True)
    ap.add_argument("--trunk-server", required=True)
    ap.add_argument("--tag", action="append", required=True, help="TPID:VID, outermost first")
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()
    tags = [(int(t.split(":")[0], 0), int(t.split(":")[1])) for t in a.tag]

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    cli, srv = open_if(a.client_if), open_if(a.server_if)
    tc, ts = open_if(a.trunk_client), open_if(a.trunk_server)
    # where a frame received on each socket goes, and how it is changed
    route = {cli: (tc, lambda f: push(f, tags)),
             srv: (ts, lambda f: push(f, tags)),
             ts: (srv, pop),
             tc: (cli, pop)}
    print("vlan-wire: ready", file=sys.stderr, flush=True)
    deadline = time.monotonic() + a.timeout
    moved = 0
    while time.monotonic() < deadline:
        ready, _, _ = select.select(list(route), [], [], 0.5)
        for s in ready:
            frame, addr = s.recvfrom(65600)
            if addr[2] == PACKET_OUTGOING:   # our own transmissions
                continue
            out, fn = route[s]
            try:
                out.send(fn(frame))
                moved += 1
            except OSError as e:
                print(f"vlan-wire: dropped a {len(frame)}-byte frame: {e}", file=sys.stderr, flush=True)
    print(f"vlan-wire: timeout after {moved} frames", file=sys.stderr)


if __name__ == "__main__":
    main()
