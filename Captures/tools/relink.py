#!/usr/bin/env python3
"""Rewrite the link-layer header of a real capture (pure Python, struct only).

Reads a classic pcap (any byte order, micro- or nanosecond) whose link type is
EN10MB (1, 802.1Q/802.1ad tags allowed), LINUX_SLL (113) or LINUX_SLL2 (276),
strips that header, keeps only IPv4 and IPv6 packets, prepends the header of
the requested link type and writes a pcap with that link type:

  null-le  DLT_NULL (0)          4-byte address family, little-endian host order
  null-be  DLT_NULL (0)          4-byte address family, big-endian host order
  loop     DLT_LOOP (108)        4-byte address family, network byte order
  raw      LINKTYPE_RAW (101)    no header, IPv4 or IPv6
  ipv4     LINKTYPE_IPV4 (228)   no header, IPv4 only
  ipv6     LINKTYPE_IPV6 (229)   no header, IPv6 only

Address families: AF_INET = 2; AF_INET6 = 30 by default (the value on
macOS/Darwin and FreeBSD; NetBSD/OpenBSD use 24, FreeBSD 28 in old dumps,
Linux 10), settable with --af-inet6. The output keeps the input's
timestamps, timestamp resolution and file byte order; caplen/len shrink or
grow by the header difference.

usage: relink.py --to TYPE IN.pcap OUT.pcap
"""
import argparse
import struct
import sys

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
LINKTYPES = {"null-le": 0, "null-be": 0, "loop": 108, "raw": 101, "ipv4": 228, "ipv6": 229}
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)


def strip_link(linktype, pkt):
    """Return (ethertype, offset of the network header) or None."""
    if linktype == 1:  # EN10MB
        if len(pkt) < 14:
            return None
        off = 12
        (etype,) = struct.unpack_from("!H", pkt, off)
        off += 2
        while etype in VLAN_TPIDS and len(pkt) >= off + 4:
            (etype,) = struct.unpack_from("!H", pkt, off + 2)
            off += 4
        return etype, off
    if linktype == 113:  # LINUX_SLL: pkttype, hatype, halen, addr[8], protocol
        if len(pkt) < 16:
            return None
        return struct.unpack_from("!H", pkt, 14)[0], 16
    if linktype == 276:  # LINUX_SLL2: protocol, reserved, ifindex, hatype, pkttype, halen, addr[8]
        if len(pkt) < 20:
            return None
        return struct.unpack_from("!H", pkt, 0)[0], 20
    raise SystemExit(f"relink.py: input link type {linktype} not supported (EN10MB, LINUX_SLL, LINUX_SLL2 only)")


def new_header(to, etype, af6):
    af = 2 if etype == ETH_P_IP else af6
    if to == "null-le":
        return struct.pack("<I", af)
    if to == "null-be":
        return struct.pack(">I", af)
    if to == "loop":
        return struct.pack("!I", af)
    return b""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--to", required=True, choices=sorted(LINKTYPES))
    ap.add_argument("--af-inet6", type=int, default=30)
    ap.add_argument("src")
    ap.add_argument("dst")
    a = ap.parse_args()

    with open(a.src, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise SystemExit(f"relink.py: {a.src}: too short for a pcap header")
    for endian in ("<", ">"):
        (magic,) = struct.unpack_from(endian + "I", data, 0)
        if magic in (MAGIC_US, MAGIC_NS):
            break
    else:
        raise SystemExit(f"relink.py: {a.src}: not a classic pcap file (pcapng is not supported)")
    vmaj, vmin, thiszone, sigfigs, snaplen, linktype = struct.unpack_from(endian + "HHiIII", data, 4)
    linktype &= 0xFFFF  # upper bits may carry FCS info

    wanted = {"ipv4": (ETH_P_IP,), "ipv6": (ETH_P_IPV6,)}.get(a.to, (ETH_P_IP, ETH_P_IPV6))
    out = [struct.pack(endian + "IHHiIII", magic, vmaj, vmin, thiszone, sigfigs, snaplen, LINKTYPES[a.to])]
    off, kept, dropped = 24, 0, 0
    while off < len(data):
        if off + 16 > len(data):
            raise SystemExit(f"relink.py: {a.src}: truncated record header at byte {off}")
        ts_s, ts_f, caplen, origlen = struct.unpack_from(endian + "IIII", data, off)
        off += 16
        pkt = data[off:off + caplen]
        if len(pkt) != caplen:
            raise SystemExit(f"relink.py: {a.src}: truncated packet at byte {off}")
        off += caplen
        r = strip_link(linktype, pkt)
        if r is None or r[0] not in wanted or r[1] > len(pkt):
            dropped += 1
            continue
        etype, l3 = r
        hdr = new_header(a.to, etype, a.af_inet6)
        body = pkt[l3:]
        newcap = len(hdr) + len(body)
        neworig = origlen - l3 + len(hdr)
        out.append(struct.pack(endian + "IIII", ts_s, ts_f, newcap, neworig))
        out.append(hdr)
        out.append(body)
        kept += 1
    with open(a.dst, "wb") as f:
        f.write(b"".join(out))
    print(f"relink.py: {a.dst}: {kept} packets as {a.to} (link type {LINKTYPES[a.to]}), {dropped} packets of other types (ARP, other IP version) left out",
          file=sys.stderr)


if __name__ == "__main__":
    main()
