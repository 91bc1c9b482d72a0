#!/usr/bin/env bash
# make-h2-push-capture.sh — HTTP/2 server push from a real peer: nghttpd (`--no-tls`, Debian
# nghttp2-server) pushing /a.txt and /c.css with / (`-p /=/a.txt,/c.css`), fetched by nghttp
# (Debian nghttp2-client; push accepted, as by default) on two connections — one that takes both
# pushes, one that asks for / and /a.txt at once — captured by tcpdump on the loopback of a network
# namespace of its own (hoplab-pushcap-PID, deleted on exit).
#
# usage: sudo Captures/make-h2-push-capture.sh [OUT.pcap]   (default Captures/h2-push-nghttpd.pcap)
# Needs root (the namespace); nghttp2-server, nghttp2-client, tcpdump, iproute2. Every process it
# starts is stopped by its PID. Port 18081 inside the namespace.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$HERE/h2-push-nghttpd.pcap}"
PORT=18081
NS="hoplab-pushcap-$$"
die() { printf 'make-h2-push-capture.sh: %s\n' "$*" >&2; exit 1; }
for c in nghttpd:nghttp2-server nghttp:nghttp2-client tcpdump:tcpdump ip:iproute2; do
  command -v "${c%%:*}" >/dev/null 2>&1 || die "'${c%%:*}' not found: apt-get install -y ${c##*:}"
done
[[ $(id -u) -eq 0 ]] || die "needs root (a network namespace)"

PIDS=()
TMP="$(mktemp -d)"
chmod 755 "$TMP"
cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
# Namespaces left by an earlier run of this script that crashed (its PID is gone).
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^hoplab-pushcap-[0-9]+$/ {print $1}'); do
  kill -0 "${ns##*-}" 2>/dev/null || ip netns del "$ns" 2>/dev/null || true
done

ip netns add "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up

mkdir -p "$TMP/root"
printf '<html><head><link rel="stylesheet" href="/c.css"></head><body>push</body></html>\n' > "$TMP/root/index.html"
printf 'pushed a\n' > "$TMP/root/a.txt"
head -c 3000 /dev/zero | tr '\0' 'c' > "$TMP/root/c.css"

# Started by `ip netns exec` itself (which execs them): $! is their own PID.
ip netns exec "$NS" tcpdump -i lo -U -s 0 -w "$OUT.tmp" "tcp port $PORT" 2>"$TMP/tcpdump.log" &
PIDS+=($!)
ip netns exec "$NS" nghttpd --no-tls -d "$TMP/root" -p /=/a.txt,/c.css "$PORT" >"$TMP/nghttpd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do
  # Listening? (asked of the socket table: a probe connection would be in the capture)
  in_ns ss -ltnH "sport = :$PORT" | grep -q . && break
  sleep 0.1
done
# tcpdump says "listening on" once it captures.
for _ in $(seq 50); do grep -q "listening on" "$TMP/tcpdump.log" && break; sleep 0.1; done
URL="http://127.0.0.1:$PORT"
in_ns nghttp -n "$URL/" >/dev/null
# / and /a.txt together: nghttp may take the pushed /a.txt in place of its own request for it.
in_ns nghttp -n "$URL/" "$URL/a.txt" >/dev/null 2>&1 || true
sleep 1
kill -INT "${PIDS[0]}"   # tcpdump writes its last packets and exits
wait "${PIDS[0]}" 2>/dev/null || true
PIDS=("${PIDS[@]:1}")
mv "$OUT.tmp" "$OUT"
printf 'wrote %s (%s bytes)\n' "$OUT" "$(stat -c %s "$OUT")" >&2
