#!/usr/bin/env python3
"""html-screenshot.py — a PNG of one part of an `analyze --format html` page, via headless Chromium.

`chromium --screenshot` takes the top of a page only; the README's pictures of the problems
panel or of a chain's sequence diagram (drawn on demand) need the page scrolled and clicked.
This drives Chromium over its DevTools protocol (Python's standard library only: a minimal
WebSocket client), opens the page (with `#chain-N` when --chain is given, which opens that
chain's diagram), and captures the element named by --selector.

Usage: scripts/html-screenshot.py REPORT.html OUT.png [--selector CSS] [--chain ID] [--width PX]
"""
import argparse
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request


class DevTools:
    """One WebSocket to a page target: send a command, read until its reply."""

    def __init__(self, url):
        host_port, path = url[len("ws://"):].split("/", 1)
        host, port = host_port.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, host_port, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError("no websocket: %r" % head[:80])
        self.next_id = 0

    def _send(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        header = bytes([0x81])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise RuntimeError("devtools closed the connection")
            out += chunk
        return out

    def _recv(self):
        message = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._exact(8))[0]
            message += self._exact(n)
            if b0 & 0x80:
                return message.decode()

    def call(self, method, **params):
        self.next_id += 1
        self._send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("report")
    ap.add_argument("out")
    ap.add_argument("--selector", default="#chain-detail")
    ap.add_argument("--chain", type=int)
    ap.add_argument("--width", type=int, default=1280)
    a = ap.parse_args()
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if not browser:
        sys.exit("html-screenshot: no chromium")
    profile = tempfile.mkdtemp(prefix="hoptrace-shot-")
    port_file = os.path.join(profile, "DevToolsActivePort")
    proc = subprocess.Popen([browser, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
                             "--remote-debugging-port=0", "--user-data-dir=" + profile,
                             "--window-size=%d,1000" % a.width, "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        port = open(port_file).read().split()[0]
        targets = json.load(urllib.request.urlopen("http://127.0.0.1:%s/json" % port))
        page = next(t for t in targets if t.get("type") == "page")
        dt = DevTools(page["webSocketDebuggerUrl"])
        dt.call("Page.enable")
        url = "file://" + os.path.abspath(a.report) + ("#chain-%d" % a.chain if a.chain else "")
        dt.call("Page.navigate", url=url)
        for _ in range(400):
            ready = dt.call("Runtime.evaluate", expression="document.readyState === 'complete' && document.body.hasAttribute('data-render-ms')",
                            returnByValue=True)["result"].get("value")
            if ready:
                break
            time.sleep(0.05)
        rect = dt.call("Runtime.evaluate", returnByValue=True, expression=(
            "(function(){var e=document.querySelector(%s); if(!e) return null; var r=e.getBoundingClientRect();"
            "return {x:r.left+window.scrollX, y:r.top+window.scrollY, w:r.width, h:r.height};})()" % json.dumps(a.selector)))["result"].get("value")
        if not rect or rect["h"] <= 0:
            sys.exit("html-screenshot: %s is not drawn in %s" % (a.selector, a.report))
        shot = dt.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                       clip={"x": rect["x"], "y": rect["y"], "width": rect["w"], "height": rect["h"], "scale": 1})
        with open(a.out, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        print("%s: %s of %s, %dx%d" % (a.out, a.selector, a.report, rect["w"], rect["h"]))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
