#!/usr/bin/env python3
"""A gRPC server and client (grpcio): the lab's gRPC app and client (`--sidecar haproxy-grpc`)
and the peers of Captures/make-grpc-capture.sh.

    grpc-peer.py server PORT [ADDRESS [LOG]]
        serves hoptrace.lab.Echo on ADDRESS:PORT (default 127.0.0.1) until SIGTERM; with LOG,
        one line per call as it starts, in the lab's app log format:
        hoplab X-REQUEST-ID PEER TIME 200 POST "PATH" - -   (unknown methods too: UNIMPLEMENTED)
    grpc-peer.py client [HOST:]PORT [ROUNDS [CHANNELS [CANCEL]]]
        makes the calls below ROUNDS times (default 1) on each of CHANNELS channels (default 1,
        each its own connection, in a thread of its own), one line per call on stdout:
        NAME CODE DETAIL; with CANCEL 0, without the cancelled Slow call

No generated code: the handlers take and return bytes (grpcio's identity serializers), so the
messages on the wire are grpcio's own length-prefixed frames around those bytes.

hoptrace.lab.Echo:
    Say      unary          "hello " + name; NOT_FOUND for the name "nobody"
    Count    server stream  the numbers 0..N-1; ABORTED after 3 when N > 5
    Total    client stream  the sum of the numbers sent
    Chat     bidi stream    each message upper-cased; after "bad" none, and INVALID_ARGUMENT (a
                            non-ASCII message) once the client half-closed
    Slow     unary          answers after 0.5 s (the client cancels it after 0.1 s: RST_STREAM CANCEL
                            and no response; a deadline instead would race the server's trailers
                            against the client's RST_STREAM)
    Missing  (not served)   UNIMPLEMENTED
"""
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "hoptrace.lab.Echo"


def say(request, context):
    if request == b"nobody":
        context.abort(grpc.StatusCode.NOT_FOUND, "no greeting for nobody")
    return b"hello " + request


def count(request, context):
    n = int(request)
    for i in range(n):
        if i == 3 and n > 5:
            context.abort(grpc.StatusCode.ABORTED, "stopped after 3 of %d" % n)
        yield b"%d" % i


def total(requests, context):
    return str(sum(int(m) for m in requests)).encode()


def chat(requests, context):
    # At "bad", no more echoes, and the status once the client has sent all: aborting at once
    # would race the client's END_STREAM (grpcio then resets the stream, and through HAProxy the
    # client may report CANCELLED instead of the status it was sent).
    refused = False
    for m in requests:
        refused = refused or m == b"bad"
        if not refused:
            yield m.upper()
    if refused:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "refusé: bad")


def slow(request, context):
    time.sleep(0.5)
    return request


class AppLog:
    """The lab's app log: one line per call, written as the call starts."""

    def __init__(self, path):
        self.file = open(path, "a", buffering=1) if path else None
        self.lock = threading.Lock()

    def write(self, path, context):
        if self.file is None:
            return
        rid = dict(context.invocation_metadata()).get("x-request-id", "-")
        peer = context.peer()
        peer = peer[len("ipv4:"):] if peer.startswith("ipv4:") else peer
        with self.lock:
            self.file.write('hoplab %s %s %.3f 200 POST "%s" - -\n' % (rid, peer, time.time(), path))

    def wrap(self, path, handler):
        def logged(request, context):
            self.write(path, context)
            return handler(request, context)
        return logged


class Unknown(grpc.GenericRpcHandler):
    """With a log: unknown methods logged, then UNIMPLEMENTED (grpcio alone would not log them)."""

    def __init__(self, log):
        self.log = log

    def service(self, details):
        def unimplemented(request, context):
            self.log.write(details.method, context)
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "no method " + details.method)
        return grpc.unary_unary_rpc_method_handler(unimplemented)


def serve(port, address="127.0.0.1", log_path=None):
    log = AppLog(log_path)
    path = "/" + SERVICE + "/"
    handlers = {
        "Say": grpc.unary_unary_rpc_method_handler(log.wrap(path + "Say", say)),
        "Count": grpc.unary_stream_rpc_method_handler(log.wrap(path + "Count", count)),
        "Total": grpc.stream_unary_rpc_method_handler(log.wrap(path + "Total", total)),
        "Chat": grpc.stream_stream_rpc_method_handler(log.wrap(path + "Chat", chat)),
        "Slow": grpc.unary_unary_rpc_method_handler(log.wrap(path + "Slow", slow)),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    generic = [grpc.method_handlers_generic_handler(SERVICE, handlers)]
    if log_path:
        generic.append(Unknown(log))
    server.add_generic_rpc_handlers(tuple(generic))
    server.add_insecure_port("%s:%d" % (address, port))
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


PRINT = threading.Lock()


def outcome(name, call):
    """Runs call(); one line: NAME CODE DETAIL (OK: the number of response messages)."""
    try:
        result = call()
        if isinstance(result, bytes):
            got = [result]
        else:
            got = list(result)
        line = "%s OK %d" % (name, len(got))
    except grpc.RpcError as e:
        line = "%s %s %r" % (name, e.code().name, e.details())
    except grpc.FutureCancelledError:
        line = "%s CANCELLED (by the client)" % name
    with PRINT:
        print(line, flush=True)


def calls(target, rounds, cancel):
    # A subchannel pool of its own: its own connection (grpcio shares one between channels).
    channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
    grpc.channel_ready_future(channel).result(timeout=10)
    path = "/" + SERVICE + "/"
    say_ = channel.unary_unary(path + "Say")
    count_ = channel.unary_stream(path + "Count")
    total_ = channel.stream_unary(path + "Total")
    chat_ = channel.stream_stream(path + "Chat")
    slow_ = channel.unary_unary(path + "Slow")
    missing = channel.unary_unary(path + "Missing")
    for _ in range(rounds):
        outcome("Say(world)", lambda: say_(b"world", timeout=5))
        outcome("Say(nobody)", lambda: say_(b"nobody", timeout=5))
        outcome("Count(4)", lambda: count_(b"4", timeout=5))
        outcome("Count(8)", lambda: count_(b"8", timeout=5))
        outcome("Total(1..5)", lambda: total_(iter([b"1", b"2", b"3", b"4", b"5"]), timeout=5))
        outcome("Chat(a,b,c)", lambda: chat_(iter([b"a", b"b", b"c"]), timeout=5))
        outcome("Chat(x,bad)", lambda: chat_(iter([b"x", b"bad"]), timeout=5))
        outcome("Missing", lambda: missing(b"", timeout=5))
        if cancel:
            late = slow_.future(b"late", timeout=5)
            time.sleep(0.1)
            late.cancel()
            outcome("Slow", late.result)
        # Three calls in flight at once: streams multiplexed on the one connection.
        pending = [say_.future(b"n%d" % i, timeout=5) for i in range(3)]
        for i, f in enumerate(pending):
            outcome("Say(n%d)" % i, f.result)
    channel.close()


def client(target, rounds=1, channels=1, cancel=1):
    target = "ipv4:" + (target if ":" in target else "127.0.0.1:" + target)
    threads = [threading.Thread(target=calls, args=(target, rounds, cancel != 0)) for _ in range(channels)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "server" and len(sys.argv) <= 5:
        serve(int(sys.argv[2]), *sys.argv[3:])
    elif len(sys.argv) >= 3 and sys.argv[1] == "client" and len(sys.argv) <= 6:
        client(sys.argv[2], *(int(a) for a in sys.argv[3:]))
    else:
        sys.exit("usage: grpc-peer.py server PORT [ADDRESS [LOG]] | client [HOST:]PORT [ROUNDS [CHANNELS [CANCEL]]]")
