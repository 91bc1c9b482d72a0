#!/usr/bin/env python3
"""A gRPC server and client (grpcio) for Captures/make-grpc-capture.sh.

    grpc-peer.py server PORT     serves hoptrace.lab.Echo on 127.0.0.1:PORT until SIGTERM
    grpc-peer.py client PORT     makes the calls below, one line per call on stdout

No generated code: the handlers take and return bytes (grpcio's identity serializers), so the
messages on the wire are grpcio's own length-prefixed frames around those bytes.

hoptrace.lab.Echo:
    Say      unary          "hello " + name; NOT_FOUND for the name "nobody"
    Count    server stream  the numbers 0..N-1; ABORTED after 3 when N > 5
    Total    client stream  the sum of the numbers sent
    Chat     bidi stream    each message upper-cased; INVALID_ARGUMENT (a non-ASCII message) at "bad"
    Slow     unary          answers after 0.5 s (the client cancels it after 0.1 s: RST_STREAM CANCEL
                            and no response; a deadline instead would race the server's trailers
                            against the client's RST_STREAM)
"""
import sys
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
    for m in requests:
        if m == b"bad":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "refusé: bad")
        yield m.upper()


def slow(request, context):
    time.sleep(0.5)
    return request


def serve(port):
    handlers = {
        "Say": grpc.unary_unary_rpc_method_handler(say),
        "Count": grpc.unary_stream_rpc_method_handler(count),
        "Total": grpc.stream_unary_rpc_method_handler(total),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


def outcome(name, call):
    """Runs call(); one line: NAME STATUS [response messages] [details]."""
    try:
        result = call()
        if isinstance(result, bytes):
            got = [result]
        else:
            got = list(result)
        print(name, "OK", len(got), flush=True)
    except grpc.RpcError as e:
        print(name, e.code().name, repr(e.details()), flush=True)
    except grpc.FutureCancelledError:
        print(name, "CANCELLED", "(by the client)", flush=True)


def client(port):
    channel = grpc.insecure_channel("ipv4:127.0.0.1:%d" % port)
    grpc.channel_ready_future(channel).result(timeout=10)
    path = "/" + SERVICE + "/"
    say_ = channel.unary_unary(path + "Say")
    count_ = channel.unary_stream(path + "Count")
    total_ = channel.stream_unary(path + "Total")
    chat_ = channel.stream_stream(path + "Chat")
    slow_ = channel.unary_unary(path + "Slow")
    missing = channel.unary_unary(path + "Missing")
    outcome("Say(world)", lambda: say_(b"world", timeout=5))
    outcome("Say(nobody)", lambda: say_(b"nobody", timeout=5))
    outcome("Count(4)", lambda: count_(b"4", timeout=5))
    outcome("Count(8)", lambda: count_(b"8", timeout=5))
    outcome("Total(1..5)", lambda: total_(iter([b"1", b"2", b"3", b"4", b"5"]), timeout=5))
    outcome("Chat(a,b,c)", lambda: chat_(iter([b"a", b"b", b"c"]), timeout=5))
    outcome("Chat(x,bad)", lambda: chat_(iter([b"x", b"bad"]), timeout=5))
    outcome("Missing", lambda: missing(b"", timeout=5))
    late = slow_.future(b"late", timeout=5)
    time.sleep(0.1)
    late.cancel()
    outcome("Slow", late.result)
    # Three calls in flight at once: streams multiplexed on the one connection.
    pending = [say_.future(b"n%d" % i, timeout=5) for i in range(3)]
    for i, f in enumerate(pending):
        outcome("Say(n%d)" % i, f.result)
    channel.close()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("server", "client"):
        sys.exit("usage: grpc-peer.py server|client PORT")
    (serve if sys.argv[1] == "server" else client)(int(sys.argv[2]))
