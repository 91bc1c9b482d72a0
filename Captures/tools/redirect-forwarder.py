#!/usr/bin/env python3
"""Tiny transparent TCP forwarder for iptables REDIRECT (a stand-in for the
sidecar proxy, used only to make the saved test captures).

It listens on --listen (default 0.0.0.0:15001). For every accepted connection
it reads the pre-NAT destination with getsockopt(SOL_IP, SO_ORIGINAL_DST),
connects there and relays bytes both ways. If the original destination is one
of the --inbound-ip addresses (traffic sent *to* the pod and redirected in
PREROUTING), it connects to --inbound-to instead (the app on loopback), the
way a sidecar hands inbound requests to the app.

After binding it drops to --uid/--gid (default 1337) so that the pod's
`-m owner ! --uid-owner 1337` OUTPUT rule does not redirect its own upstream
connections. It exits after --max-conns connections or --timeout seconds.
"""
import argparse
import encodings.idna  # noqa: F401  (loaded now: after setuid the stdlib may be unreadable)
import os
import socket
import struct
import sys
import threading
import time

SO_ORIGINAL_DST = 80


def original_dst(conn):
    raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, packed = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(packed), port


def pump(src, dst, done):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)   # pass the FIN on
        except OSError:
            pass
        done.release()


def handle(client, args, log):
    try:
        ip, port = original_dst(client)
        if ip in args.inbound_ip:
            host, p = args.inbound_to.rsplit(":", 1)
            target = (host, int(p))
        else:
            target = (ip, port)
        peer = client.getpeername()
        log(f"{peer[0]}:{peer[1]} orig-dst {ip}:{port} -> {target[0]}:{target[1]}")
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        upstream.settimeout(5)
        upstream.connect(target)
        upstream.settimeout(None)
        client.settimeout(None)
        done = threading.Semaphore(0)
        t1 = threading.Thread(target=pump, args=(client, upstream, done), daemon=True)
        t2 = threading.Thread(target=pump, args=(upstream, client, done), daemon=True)
        t1.start(); t2.start()
        done.acquire(); done.acquire()
        upstream.close()
    except OSError as e:
        log(f"error: {e}")
    finally:
        client.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="0.0.0.0:15001")
    ap.add_argument("--uid", type=int, default=1337)
    ap.add_argument("--gid", type=int, default=1337)
    ap.add_argument("--inbound-ip", action="append", default=[])
    ap.add_argument("--inbound-to", default="127.0.0.1:80")
    ap.add_argument("--max-conns", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--ready-file")
    args = ap.parse_args()

    def log(msg):
        print(f"redirect-forwarder: {msg}", file=sys.stderr, flush=True)

    host, port = args.listen.rsplit(":", 1)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(64)
    # Drop privileges after binding: its own upstream connections are then
    # owned by uid 1337 and skipped by the REDIRECT rule.
    os.setgroups([])
    os.setgid(args.gid)
    os.setuid(args.uid)
    if args.ready_file:
        # written by uid 1337: use a directory it can write to, or stderr
        try:
            with open(args.ready_file, "w") as f:
                f.write("ready\n")
        except OSError:
            pass
    log(f"listening on {args.listen} as uid {os.getuid()}")

    deadline = time.monotonic() + args.timeout
    threads = []
    n = 0
    while n < args.max_conns:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        srv.settimeout(remaining)
        try:
            client, _ = srv.accept()
        except socket.timeout:
            break
        n += 1
        t = threading.Thread(target=handle, args=(client, args, log), daemon=True)
        t.start()
        threads.append(t)
    srv.close()
    for t in threads:
        t.join(timeout=5)
    log(f"done after {n} connection(s)")


if __name__ == "__main__":
    main()
