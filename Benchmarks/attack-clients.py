#!/usr/bin/env python3
"""The attackers (and the upstream that resets) of Benchmarks/attack.sh and of the proxy
attack test: asyncio clients that hold many connections, timed with the monotonic clock.

  slowloris  COUNT connections, each sending an endless request head one byte per --interval
             seconds; records when each was closed (after its first byte) and what it got.
  idle       COUNT connections, each sending one GET and reading its response, then sending
             nothing; records when each was closed (after its response) and what it got.
  smuggle    each request-smuggling shape on its own connection; records the status and
             whether the connection was closed after it.
  reset      COUNT GETs (CONCURRENCY at a time) to an upstream that resets mid-body; records
             the status and how the response ended (complete, cut short by a reset or by an end
             of file).
  reset-server  that upstream: answers every request with a head promising 1 MB, sends
             64 KiB of it, then resets the connection (SO_LINGER 0).

Every client mode prints one JSON object on stdout; `ready` on stderr once every connection
of a held mode is open (the script measures legitimate load from then on). Bounded in time:
--max-seconds, counted from that moment.
"""
import argparse
import asyncio
import json
import socket
import statistics
import struct
import sys
import time

# (name, request), each for /smuggle/<name>: whether it reached the app shows in the app's log.
SHAPES = [(name, request.replace(b"/smuggle", b"/smuggle/" + name.encode(), 1)) for name, request in [
    ("cl_and_te", b"POST /smuggle HTTP/1.1\r\nHost: attack\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX"),
    ("two_content_lengths", b"POST /smuggle HTTP/1.1\r\nHost: attack\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"),
    ("obs_fold", b"GET /smuggle HTTP/1.1\r\nHost: attack\r\nX-Folded: a\r\n Transfer-Encoding: chunked\r\n\r\n"),
    ("bare_lf", b"GET /smuggle HTTP/1.1\nHost: attack\nContent-Length: 0\n\n"),
    ("chunk_size_overflow", b"POST /smuggle HTTP/1.1\r\nHost: attack\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"10000000000000001\r\nabc\r\n0\r\n\r\n"),
    ("te_chunked_identity", b"POST /smuggle HTTP/1.1\r\nHost: attack\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
    ("invalid_content_length", b"POST /smuggle HTTP/1.1\r\nHost: attack\r\nContent-Length: 1e3\r\n\r\n"),
]]

def stats(values):
    if not values:
        return None
    values = sorted(values)
    return {"min": round(values[0], 2), "median": round(statistics.median(values), 2), "max": round(values[-1], 2)}


def status_of(data):
    line = data.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
    parts = line.split(b" ")
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return parts[1].decode()
    return "none" if not data else "garbage"


def response_length(data):
    """Bytes of a complete response with Content-Length at the start of data, or None."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    length = 0
    for line in data[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    total = end + 4 + length
    return total if len(data) >= total else None


class Held:
    """Connections held open together, each recording what happened to it."""

    def __init__(self, count, max_seconds):
        self.count = count
        self.max_seconds = max_seconds
        self.records = []
        self.opened = 0
        self.failed = 0
        self.all_open = asyncio.Event()
        self.started = None
        self.deadline = None

    def open_done(self, ok):
        if ok:
            self.opened += 1
        else:
            self.failed += 1
        if self.opened + self.failed == self.count:
            self.started = time.monotonic()
            self.deadline = self.started + self.max_seconds
            print("ready", file=sys.stderr, flush=True)
            self.all_open.set()


async def open_connection(host, port, held, gate):
    async with gate:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        except (OSError, asyncio.TimeoutError):
            held.open_done(False)
            return None
    held.open_done(True)
    return reader, writer


async def read_until_closed(reader, data, timeout):
    """Reads into data until EOF or a reset (True) or until timeout passes (False)."""
    try:
        chunk = await asyncio.wait_for(reader.read(65536), timeout)
    except asyncio.TimeoutError:
        return False
    except OSError:
        return True
    if not chunk:
        return True
    data.extend(chunk)
    return None  # more may come


async def slowloris_one(args, held, gate):
    conn = await open_connection(args.host, args.port, held, gate)
    if conn is None:
        return
    reader, writer = conn
    await held.all_open.wait()
    head = b"GET /slowloris HTTP/1.1\r\nHost: attack\r\nX-Slow: "
    first = time.monotonic()
    data = bytearray()
    closed_at = None
    sent = 0
    while time.monotonic() < held.deadline and closed_at is None:
        byte = head[sent:sent + 1] if sent < len(head) else b"a"
        try:
            writer.write(byte)
            await writer.drain()
            sent += 1
        except OSError:
            closed_at = time.monotonic()
            break
        step_end = time.monotonic() + args.interval
        while closed_at is None and time.monotonic() < step_end:
            done = await read_until_closed(reader, data, max(0.0, step_end - time.monotonic()))
            if done:
                closed_at = time.monotonic()
            elif done is False:
                break
    writer.transport.abort()
    held.records.append({"closed": closed_at is not None, "after": (closed_at - first) if closed_at else None,
                         "status": status_of(bytes(data)), "sent": sent})


async def idle_one(args, held, gate):
    conn = await open_connection(args.host, args.port, held, gate)
    if conn is None:
        return
    reader, writer = conn
    data = bytearray()
    answered = None
    closed_at = None
    try:
        writer.write(b"GET /idle HTTP/1.1\r\nHost: attack\r\n\r\n")
        await writer.drain()
    except OSError:
        closed_at = time.monotonic()
    # The response, timed as it comes (up to 5 s: a proxy at its descriptor limit may not answer).
    waited = time.monotonic() + 5
    while closed_at is None and answered is None and time.monotonic() < waited:
        if await read_until_closed(reader, data, max(0.0, waited - time.monotonic())):
            closed_at = time.monotonic()
        if response_length(data) is not None:
            answered = time.monotonic()
    await held.all_open.wait()
    while closed_at is None and time.monotonic() < held.deadline:
        done = await read_until_closed(reader, data, max(0.0, held.deadline - time.monotonic()))
        if answered is None and response_length(data) is not None:
            answered = time.monotonic()
        if done:
            closed_at = time.monotonic()
    writer.transport.abort()
    held.records.append({"closed": closed_at is not None, "answered": answered is not None,
                         "after": (closed_at - answered) if closed_at and answered else None,
                         "status": status_of(bytes(data))})


async def held_mode(args, one):
    held = Held(args.count, args.max_seconds)
    gate = asyncio.Semaphore(args.open_concurrency)
    await asyncio.gather(*[one(args, held, gate) for _ in range(args.count)])
    started = held.started
    records = held.records
    closed = [r for r in records if r["closed"]]
    statuses = {}
    for r in records:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    out = {"mode": args.mode, "connections": args.count, "opened": held.opened, "failedToOpen": held.failed,
           "closedByServer": len(closed), "stillOpenAtEnd": len(records) - len(closed),
           "statuses": statuses, "closedAfterSeconds": stats([r["after"] for r in closed if r["after"] is not None]),
           "heldSeconds": round(time.monotonic() - started, 1)}
    if args.mode == "idle":
        out["answered"] = sum(1 for r in records if r["answered"])
    return out


async def smuggle(args):
    results = []
    for name, request in SHAPES:
        data = bytearray()
        closed = False
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(args.host, args.port), 5)
            # The access log names the client by address and port.
            client = "%s:%d" % writer.get_extra_info("sockname")[:2]
            writer.write(request)
            await writer.drain()
            deadline = time.monotonic() + args.max_seconds
            while time.monotonic() < deadline:
                done = await read_until_closed(reader, data, max(0.0, deadline - time.monotonic()))
                if done:
                    closed = True
                    break
                if done is False:
                    break
            writer.transport.abort()
        except (OSError, asyncio.TimeoutError) as error:
            results.append({"shape": name, "status": "error: %s" % error, "closed": True, "client": None})
            continue
        results.append({"shape": name, "status": status_of(bytes(data)), "closed": closed, "client": client})
    return {"mode": "smuggle", "shapes": results}


async def reset(args):
    gate = asyncio.Semaphore(args.concurrency)
    outcomes = {}
    print("ready", file=sys.stderr, flush=True)

    async def one():
        async with gate:
            data = bytearray()
            how = "timeout"
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(args.host, args.port), 5)
                writer.write(b"GET /reset HTTP/1.1\r\nHost: attack\r\n\r\n")
                await writer.drain()
                deadline = time.monotonic() + args.max_seconds
                while time.monotonic() < deadline:
                    # A reset and an end of file are told apart: only the reset says "cut"
                    # whatever the framing (an end of file ends a close-delimited response).
                    try:
                        chunk = await asyncio.wait_for(reader.read(65536), max(0.0, deadline - time.monotonic()))
                    except asyncio.TimeoutError:
                        break
                    except OSError:
                        how = "complete, then reset" if response_length(data) is not None else "cut short by a reset"
                        break
                    if not chunk:
                        how = "complete" if response_length(data) is not None else "cut short by an end of file"
                        break
                    data.extend(chunk)
                writer.transport.abort()
            except (OSError, asyncio.TimeoutError):
                how = "connect failed"
            key = "%s, %s" % (status_of(bytes(data)), how)
            outcomes[key] = outcomes.get(key, 0) + 1

    await asyncio.gather(*[one() for _ in range(args.count)])
    return {"mode": "reset", "requests": args.count, "outcomes": outcomes}


async def reset_server(args):
    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nContent-Type: text/plain\r\n\r\n")
                writer.write(b"x" * 65536)
                await writer.drain()
                await asyncio.sleep(0.01)
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.transport.abort()

    server = await asyncio.start_server(serve, args.host, args.port, backlog=1024)
    print("ready", file=sys.stderr, flush=True)
    async with server:
        await asyncio.sleep(args.max_seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["slowloris", "idle", "smuggle", "reset", "reset-server"])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--interval", type=float, default=1.0, help="slowloris: seconds between bytes")
    parser.add_argument("--max-seconds", type=float, default=40.0, help="how long to hold (or wait for an answer)")
    parser.add_argument("--open-concurrency", type=int, default=200, help="connects in progress at once")
    parser.add_argument("--concurrency", type=int, default=20, help="reset: requests at once")
    args = parser.parse_args()
    if args.mode == "reset-server":
        asyncio.run(reset_server(args))
        return
    if args.mode == "slowloris":
        out = asyncio.run(held_mode(args, slowloris_one))
    elif args.mode == "idle":
        out = asyncio.run(held_mode(args, idle_one))
    elif args.mode == "smuggle":
        out = asyncio.run(smuggle(args))
    else:
        out = asyncio.run(reset(args))
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
