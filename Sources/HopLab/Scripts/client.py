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