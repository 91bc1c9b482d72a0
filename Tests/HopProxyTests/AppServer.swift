/// The test app: a small Python HTTP/1.1 server (plus raw TCP helpers), written to a temp file
/// and started inside a namespace. Every request it sees is logged as one JSON line.
///
///   app.py PORT LOGFILE NAME [--echo PORT] [--greet PORT] [--reset-once PORT]
///
/// GET /bytes/N[?chunked=1]  N pattern bytes, `x-body-sha256` header (Content-Length or chunked)
/// GET /slow?ms=M           waits M ms, then "slow"
/// POST /upload             reads the body (Content-Length or chunked) and answers
///                          {"bytes": n, "sha256": "..."}
/// GET /upgrade (Upgrade)   101 Switching Protocols, then echoes raw bytes
/// anything else            200, body "NAME PATH\n"
/// --echo PORT              raw TCP echo (until the client half-closes)
/// --greet PORT             server-first: sends "220 greet\r\n" at once, then echoes
/// --reset-once PORT        HTTP: resets the first connection after reading its request,
///                          answers later ones
enum AppServer {
    static let script = #"""
import sys, json, hashlib, socket, threading, time, random, struct
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1]); LOG = sys.argv[2]; NAME = sys.argv[3]
extra = sys.argv[4:]
lock = threading.Lock()
BLOCK = random.Random(7).randbytes(65536)

def pattern_chunks(n):
    left = n
    while left > 0:
        k = min(left, len(BLOCK))
        yield BLOCK[:k]
        left -= k

def pattern_sha(n):
    h = hashlib.sha256()
    for c in pattern_chunks(n): h.update(c)
    return h.hexdigest()

def log(entry):
    with lock:
        with open(LOG, "a") as f:
            f.write(json.dumps(entry) + "\n")

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hitest-app"
    def log_message(self, *a): pass

    def record(self):
        log({"name": NAME, "method": self.command, "path": self.path,
             "peer": "%s:%d" % self.client_address[:2],
             "headers": {k.lower(): v for k, v in self.headers.items()}})

    def read_body(self):
        h = hashlib.sha256(); n = 0
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""): pass
                    break
                left = size
                while left:
                    c = self.rfile.read(min(left, 65536)); h.update(c); n += len(c); left -= len(c)
                self.rfile.readline()
        else:
            left = int(self.headers.get("content-length", "0"))
            while left:
                c = self.rfile.read(min(left, 65536))
                if not c: break
                h.update(c); n += len(c); left -= len(c)
        return n, h.hexdigest()

    def simple(self, body, status=200, head=False, extra_headers=()):
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.send_header("x-seen-request-id", self.headers.get("x-request-id", "-"))
        for k, v in extra_headers: self.send_header(k, v)
        self.end_headers()
        if not head: self.wfile.write(body)

    def do_HEAD(self):
        self.record()
        self.simple(("%s %s\n" % (NAME, self.path)).encode(), head=True)

    def do_GET(self):
        self.record()
        path, _, query = self.path.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        if path.startswith("/bytes/"):
            n = int(path[len("/bytes/"):])
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("x-body-sha256", pattern_sha(n))
            chunked = params.get("chunked") == "1"
            if chunked: self.send_header("transfer-encoding", "chunked")
            else: self.send_header("content-length", str(n))
            self.end_headers()
            for c in pattern_chunks(n):
                if chunked:
                    self.wfile.write(b"%x\r\n" % len(c) + c + b"\r\n")
                else:
                    self.wfile.write(c)
            if chunked: self.wfile.write(b"0\r\n\r\n")
            return
        if path == "/slow":
            time.sleep(int(params.get("ms", "1000")) / 1000.0)
            self.simple(b"slow\n"); return
        if path == "/upgrade" and self.headers.get("upgrade"):
            self.send_response(101)
            self.send_header("upgrade", self.headers.get("upgrade"))
            self.send_header("connection", "Upgrade")
            self.end_headers(); self.wfile.flush()
            while True:
                c = self.connection.recv(65536)
                if not c: break
                self.connection.sendall(c)
            self.close_connection = True
            return
        self.simple(("%s %s\n" % (NAME, self.path)).encode())

    def do_POST(self):
        self.record()
        n, sha = self.read_body()
        self.simple(json.dumps({"bytes": n, "sha256": sha}).encode())

def listener(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    return s

def serve_raw(s, greet):
    def one(c):
        with c:
            if greet: c.sendall(b"220 greet\r\n")
            while True:
                d = c.recv(65536)
                if not d: break
                c.sendall(d)
            c.shutdown(socket.SHUT_WR)
    while True:
        c, _ = s.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()

def serve_reset_once(s):
    first = True
    while True:
        c, _ = s.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            d = c.recv(65536)
            if not d: break
            data += d
        log({"name": NAME + "-reset", "request": data.decode("latin-1")})
        if first:
            first = False
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close(); continue
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n")
        c.close()

i = 0
while i < len(extra):
    if extra[i] == "--echo": threading.Thread(target=serve_raw, args=(listener(int(extra[i+1])), False), daemon=True).start()
    if extra[i] == "--greet": threading.Thread(target=serve_raw, args=(listener(int(extra[i+1])), True), daemon=True).start()
    if extra[i] == "--reset-once": threading.Thread(target=serve_reset_once, args=(listener(int(extra[i+1])),), daemon=True).start()
    i += 2

ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.allow_reuse_address = True
server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
print("ready", flush=True)
server.serve_forever()
"""#
}
