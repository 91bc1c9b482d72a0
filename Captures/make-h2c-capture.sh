#!/usr/bin/env bash
# make-h2c-capture.sh — an h2c (HTTP/2 without TLS) capture from real peers: nghttpd
# (`--no-tls`, Debian nghttp2-server) loaded by nghttp (several streams on one connection),
# curl --http2-prior-knowledge and h2load (2 clients, 4 streams in flight each), captured by
# tcpdump on the loopback of a network namespace of its own (h2r7-cap-PID, deleted on exit).
#
# usage: sudo Captures/make-h2c-capture.sh [OUT.pcap]   (default Captures/h2c-nghttpd.pcap)
#        H2LOAD_REQUESTS=N H2LOAD_CLIENTS=C: h2load's share (default 24 requests, 2 connections,
#        4 streams in flight each); Benchmarks/run.sh --h2c makes a large one this way.
#        H2LOAD_PATH=/page.html: h2load asks for the HTTP/1 benchmark's ~600-byte page
#        (Benchmarks/make-capture.sh) instead of /a.txt (18 bytes).
# Needs root (the namespace); Debian packages nghttp2-server, nghttp2-client, curl, tcpdump,
# iproute2. Every process it starts is stopped by its PID. Port 18080 inside the namespace.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$HERE/h2c-nghttpd.pcap}"
PORT=18080
NS="h2r7-cap-$$"
die() { printf 'make-h2c-capture.sh: %s\n' "$*" >&2; exit 1; }
for c in nghttpd:nghttp2-server nghttp:nghttp2-client h2load:nghttp2-client curl:curl tcpdump:tcpdump ip:iproute2; do
  command -v "${c%%:*}" >/dev/null 2>&1 || die "'${c%%:*}' not found: apt-get install -y ${c##*:}"
done
[[ $(id -u) -eq 0 ]] || die "needs root (a network namespace)"

PIDS=()
TMP="$(mktemp -d)"
cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
# Namespaces left by an earlier run that crashed.
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^h2r7-cap-/ {print $1}'); do ip netns del "$ns" 2>/dev/null || true; done

ip netns add "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up

mkdir -p "$TMP/root"
printf '<html><body>h2c</body></html>\n' > "$TMP/root/index.html"
printf 'a small text file\n' > "$TMP/root/a.txt"
head -c 3000 /dev/zero | tr '\0' 'b' > "$TMP/root/big.txt"
# The HTTP/1 benchmark's page (Benchmarks/make-capture.sh), fetched only when asked for.
{
  printf '<!doctype html>\n<html><head><title>hoptrace benchmark</title></head>\n<body>\n'
  for i in $(seq 1 9); do
    printf '<p>line %02d: the quick brown fox jumps over the lazy dog.</p>\n' "$i"
  done
  printf '</body></html>\n'
} > "$TMP/root/page.html"
printf 'posted body\n' > "$TMP/post.txt"

# Started by `ip netns exec` itself (which execs them): $! is their own PID.
ip netns exec "$NS" tcpdump -i lo -U -s 0 -w "$OUT.tmp" "tcp port $PORT" 2>"$TMP/tcpdump.log" &
PIDS+=($!)
ip netns exec "$NS" nghttpd --no-tls -d "$TMP/root" "$PORT" >"$TMP/nghttpd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do
  # Listening? (asked of the socket table: a probe connection would be in the capture)
  in_ns ss -ltnH "sport = :$PORT" | grep -q . && break
  sleep 0.1
done
sleep 0.5
URL="http://127.0.0.1:$PORT"
# One connection, three streams (nghttp sends them together), one of them a 404.
in_ns nghttp -n "$URL/" "$URL/a.txt" "$URL/missing" >/dev/null
# One connection, one POST with a body (nghttpd answers a POST to a file like a GET).
in_ns nghttp -n -d "$TMP/post.txt" "$URL/a.txt" >/dev/null
# curl with prior knowledge: one stream per connection.
in_ns curl -s --http2-prior-knowledge -o /dev/null "$URL/big.txt"
in_ns curl -s --http2-prior-knowledge -o /dev/null -H 'x-request-id: h2c-curl-1' "$URL/a.txt"
# h2load: 2 connections, 4 streams in flight on each, 24 requests (by default).
N="${H2LOAD_REQUESTS:-24}"
in_ns h2load -n "$N" -c "${H2LOAD_CLIENTS:-2}" -m 4 "$URL${H2LOAD_PATH:-/a.txt}" >"$TMP/h2load.log"
grep -q " $N succeeded" "$TMP/h2load.log" || die "h2load: $(grep -E 'requests:' "$TMP/h2load.log")"
sleep 1
kill -INT "${PIDS[0]}"   # tcpdump writes its last packets and exits
wait "${PIDS[0]}" 2>/dev/null || true
PIDS=("${PIDS[@]:1}")
mv "$OUT.tmp" "$OUT"
printf 'wrote %s (%s bytes)\n' "$OUT" "$(stat -c %s "$OUT")" >&2
