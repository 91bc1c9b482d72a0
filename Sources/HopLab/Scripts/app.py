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