// The lab's small programs, written to its temp directory and run inside namespaces.

public enum LabScripts {
    /// The built-in app (when nginx is not installed, and for the retry scenario):
    ///   app.py PORT [--reset-once]
    /// GET|HEAD /big → BIG bytes; anything else → "hello\n". With --reset-once the first
    /// connection is reset (SO_LINGER 0) after its request was read, before any response byte.
    public static let app = #"""
import sys, socket, struct, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1]); RESET_ONCE = "--reset-once" in sys.argv
BIG = bytes((i * 7) & 0xff for i in range(BIGSIZE))
state = {"reset": RESET_ONCE}
lock = threading.Lock()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hoplab-app"
    def log_message(self, *a): pass
    def answer(self, head):
        with lock:
            reset = state["reset"]; state["reset"] = False
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close(); self.close_connection = True
            self.wfile = open("/dev/null", "wb")
            return
        body = BIG if self.path.split("?")[0] == "/big" else b"hello\n"
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if not head: self.wfile.write(body)
    def do_HEAD(self): self.answer(True)
    def do_GET(self): self.answer(False)

ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.allow_reuse_address = True
server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
print("ready", flush=True)
server.serve_forever()
"""#

    /// nginx's configuration (DIR, BIGFILE substituted).
    public static let nginx = """
        worker_processes 1;
        daemon off;
        master_process on;
        user nobody nogroup;
        pid DIR/nginx.pid;
        error_log DIR/nginx-error.log warn;
        events { worker_connections 512; }
        http {
            log_format hoplab LOGFORMAT;
            access_log DIR/access.log hoplab;
            client_body_temp_path DIR/nginx-body;
            proxy_temp_path DIR/nginx-proxy;
            fastcgi_temp_path DIR/nginx-fastcgi;
            uwsgi_temp_path DIR/nginx-uwsgi;
            scgi_temp_path DIR/nginx-scgi;
            keepalive_requests 100000;
            server {
                listen 0.0.0.0:80;
                server_tokens off;
                location = /big { alias BIGFILE; default_type application/octet-stream; }
                location / { default_type text/plain; return 200 "hello\\n"; }
            }
        }

        """

    /// The lab's client: the ground truth of what was sent. One JSON line per request:
    /// {"conn", "index", "method", "target", "local", "status", "bytes"}.
    ///   client.py HOST PORT seq METHOD TARGET [METHOD TARGET ...]   one connection each, in order
    ///   client.py HOST PORT load N C [same]                          N requests over C keep-alive connections
    ///                                                                (targets unique per request unless `same`)
    ///   client.py HOST PORT pipeline METHOD TARGET [...]             all on one connection, sent at once
    public static let client = #"""
import sys, socket, json, threading, time
HOST = sys.argv[1]; PORT = int(sys.argv[2]); MODE = sys.argv[3]; ARGS = sys.argv[4:]
DEADLINE = time.time() + 60
out_lock = threading.Lock()
results = []

def connect():
    s = socket.create_connection((HOST, PORT), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def request_bytes(method, target):
    return ("%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hoplab\r\nAccept: */*\r\n\r\n" % (method, target, HOST)).encode()

class Reader:
    def __init__(self, s): self.s = s; self.buf = b""
    def fill(self):
        if time.time() > DEADLINE: raise Exception("deadline")
        d = self.s.recv(65536)
        if not d: raise Exception("connection closed")
        self.buf += d
    def response(self, method):
        while b"\r\n\r\n" not in self.buf: self.fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for l in lines[1:]:
            k, _, v = l.partition(":")
            if k.strip().lower() == "content-length": length = int(v.strip())
        if method == "HEAD" or status in (204, 304): length = 0
        while len(self.buf) < length: self.fill()
        self.buf = self.buf[length:]
        return status, length

def record(conn, index, method, target, local, status, n):
    with out_lock:
        results.append({"conn": conn, "index": index, "method": method, "target": target,
                        "local": "%s:%d" % local[:2], "status": status, "bytes": n})

def run_connection(conn, reqs, pipeline=False):
    s = connect(); local = s.getsockname(); r = Reader(s)
    try:
        if pipeline:
            s.sendall(b"".join(request_bytes(m, t) for m, t in reqs))
            for i, (m, t) in enumerate(reqs):
                st, n = r.response(m); record(conn, i, m, t, local, st, n)
        else:
            for i, (m, t) in enumerate(reqs):
                s.sendall(request_bytes(m, t))
                st, n = r.response(m); record(conn, i, m, t, local, st, n)
    finally:
        s.close()

pairs = list(zip(ARGS[0::2], ARGS[1::2]))
if MODE == "seq":
    for i, (m, t) in enumerate(pairs): run_connection(i, [(m, t)])
elif MODE == "pipeline":
    run_connection(0, pairs, pipeline=True)
elif MODE == "load":
    n, c = int(ARGS[0]), int(ARGS[1]); same = len(ARGS) > 2 and ARGS[2] == "same"
    plan = [[] for _ in range(c)]
    for i in range(n):
        q = "" if same else "?i=%d" % i
        if i % 50 == 7: req = ("GET", "/big" + q)
        elif i % 3 == 0: req = ("HEAD", "/" + q)
        elif i % 3 == 1: req = ("GET", "/" + q)
        else: req = ("GET", "/" + (q or "?q=%d" % (i % 10)))
        plan[i % c].append(req)
    errors = []
    def worker(k):
        try: run_connection(k, plan[k])
        except Exception as e: errors.append(str(e))
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(c) if plan[k]]
    for t in threads: t.start()
    for t in threads: t.join(max(1, DEADLINE - time.time()))
    if errors: print("errors: " + "; ".join(errors[:3]), file=sys.stderr)
for r in sorted(results, key=lambda r: (r["conn"], r["index"])): print(json.dumps(r))
"""#

    /// wrk's request script: identical `GET /`, or one target per request (thread and counter).
    /// GET only: wrk's parser does not know a HEAD response has no body.
    public static func wrk(identical: Bool) -> String {
        if identical { return "wrk.method = \"GET\"\nwrk.path = \"/\"\n" }
        return #"""
local counter = 1
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function request()
  counter = counter + 1
  local path = "/?t=" .. tostring(tid) .. "&i=" .. counter
  if counter % 50 == 7 then path = "/big?t=" .. tostring(tid) .. "&i=" .. counter end
  return wrk.format("GET", path)
end
"""#
    }

    /// curl.sh CURL BASEURL PAIRS same|unique: HEAD then GET, PAIRS times, each a new connection;
    /// one line per request: METHOD TARGET LOCAL STATUS.
    public static let curlLoop = #"""
curl="$1"; base="$2"; pairs="$3"; mode="$4"
i=0
while [ "$i" -lt "$pairs" ]; do
  i=$((i + 1))
  if [ "$mode" = same ]; then t1="/"; t2="/"; else t1="/?curl=h$i"; t2="/?curl=g$i"; fi
  r=$("$curl" -s -o /dev/null --max-time 5 -I -w '%{local_ip}:%{local_port} %{http_code}' "$base$t1") && echo "HEAD $t1 $r"
  r=$("$curl" -s -o /dev/null --max-time 5 -w '%{local_ip}:%{local_port} %{http_code}' "$base$t2") && echo "GET $t2 $r"
  sleep 0.1
done
"""#
}
