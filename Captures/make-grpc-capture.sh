#!/usr/bin/env bash
# make-grpc-capture.sh — a gRPC capture from real peers: grpcio's server and client
# (Sources/HopLab/Scripts/grpc-peer.py, the lab's gRPC peer too: unary, server-, client- and
# bidi-streaming calls, calls ending NOT_FOUND, ABORTED mid-stream, INVALID_ARGUMENT with a
# non-ASCII grpc-message, UNIMPLEMENTED, a call the client cancels, three calls in flight at
# once), h2c on the loopback of a network namespace of its own (hoplab-grpccap-PID, deleted on
# exit), captured by tcpdump.
#
# usage: sudo Captures/make-grpc-capture.sh [OUT.pcap]   (default Captures/grpc-grpcio.pcap)
# Needs root (the namespace); grpcio for python3 (Debian python3-grpcio, or pip's grpcio),
# tcpdump, iproute2. Every process it starts is stopped by its PID. Port 50051 in the namespace.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$HERE/grpc-grpcio.pcap}"
PEER="$HERE/../Sources/HopLab/Scripts/grpc-peer.py"
PORT=50051
NS="hoplab-grpccap-$$"
die() { printf 'make-grpc-capture.sh: %s\n' "$*" >&2; exit 1; }
for c in tcpdump:tcpdump ip:iproute2; do
  command -v "${c%%:*}" >/dev/null 2>&1 || die "'${c%%:*}' not found: apt-get install -y ${c##*:}"
done
[[ $(id -u) -eq 0 ]] || die "needs root (a network namespace)"
# The first python3 that has grpcio: the one on PATH, else Debian's (python3-grpcio).
PY=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import grpc' 2>/dev/null; then PY="$(command -v "$p")"; break; fi
done
[[ -n "$PY" ]] || die "no python3 with grpcio: apt-get install -y python3-grpcio (or pip install grpcio)"

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
# Namespaces left by an earlier run of this script that crashed (its PID is gone).
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^hoplab-grpccap-[0-9]+$/ {print $1}'); do
  kill -0 "${ns##*-}" 2>/dev/null || ip netns del "$ns" 2>/dev/null || true
done

ip netns add "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up

# Started by `ip netns exec` itself (which execs them): $! is their own PID.
ip netns exec "$NS" tcpdump -i lo -U -s 0 -w "$OUT.tmp" "tcp port $PORT" 2>"$TMP/tcpdump.log" &
PIDS+=($!)
ip netns exec "$NS" "$PY" "$PEER" server "$PORT" >"$TMP/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  # Listening? (asked of the socket table: a probe connection would be in the capture)
  in_ns ss -ltnH "sport = :$PORT" | grep -q . && break
  sleep 0.1
done
sleep 0.5
in_ns "$PY" "$PEER" client "$PORT" >"$TMP/client.log" 2>&1 || die "the client failed: $(cat "$TMP/client.log")"
cat "$TMP/client.log" >&2
sleep 1
kill -INT "${PIDS[0]}"   # tcpdump writes its last packets and exits
wait "${PIDS[0]}" 2>/dev/null || true
PIDS=("${PIDS[@]:1}")
mv "$OUT.tmp" "$OUT"
printf 'wrote %s (%s bytes)\n' "$OUT" "$(stat -c %s "$OUT")" >&2
