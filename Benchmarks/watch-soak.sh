#!/usr/bin/env bash
# Soak: `hoptrace watch` inside the lab's pod while the load scenario runs for a long time.
# Reports kernel drops and watch's memory over time (flat memory = idle connections and
# unanswered requests expire). Needs root (network namespaces). Bounded by --requests.
#
#   Benchmarks/watch-soak.sh [--requests N] [--connections C] [--snaplen S] [--buffer-kib K]
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=50000 CONNECTIONS=16 SNAPLEN=1024 BUFFER=65536
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) REQUESTS="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --snaplen) SNAPLEN="$2"; shift 2 ;;
    --buffer-kib) BUFFER="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "watch-soak: needs root (network namespaces)" >&2; exit 2; }
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
swift build -c release --static-swift-stdlib --scratch-path .build-bench >/dev/null
BIN="$(swift build -c release --static-swift-stdlib --scratch-path .build-bench --show-bin-path)/hoptrace"
DIR="$(mktemp -d /tmp/hopsoak.XXXXXX)"
LAB_PID="" WATCH_PID=""
cleanup() {
  [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null || true
  [ -n "$LAB_PID" ] && kill -TERM "$LAB_PID" 2>/dev/null && wait "$LAB_PID" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
"$BIN" lab load --requests "$REQUESTS" --connections "$CONNECTIONS" --namespace-prefix hoplabsoak- \
  --wait-for "$DIR/go" > "$DIR/lab.out" 2>&1 &
LAB_PID=$!
CAP="/tmp/hoplabsoak-$LAB_PID-load/capture.err"
for _ in $(seq 300); do grep -q "listening on" "$CAP" 2>/dev/null && break; sleep 0.1; done
"$BIN" watch -i any --netns "hoplabsoak-$LAB_PID-pod" --rules istio-2018 --format jsonl \
  -s "$SNAPLEN" -B "$BUFFER" > "$DIR/watch.out" 2> "$DIR/watch.err" &
WATCH_PID=$!
for _ in $(seq 150); do grep -q "listening on" "$DIR/watch.err" 2>/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$WATCH_PID/status" 2>/dev/null || echo 0; }
START_RSS=$(rss); MAX_RSS=$START_RSS; SAMPLES=""
touch "$DIR/go"
T0=$(date +%s)
while kill -0 "$LAB_PID" 2>/dev/null; do
  r=$(rss); [ "$r" -gt "$MAX_RSS" ] && MAX_RSS=$r
  SAMPLES="$SAMPLES $r"
  [ $(( $(date +%s) - T0 )) -gt 1800 ] && { echo "watch-soak: 30 min limit" >&2; break; }
  sleep 1
done
wait "$LAB_PID" || true; LAB_PID=""
sleep 0.5
END_RSS=$(rss)
kill -INT "$WATCH_PID" 2>/dev/null || echo "watch-soak: watch had already exited" >&2; wait "$WATCH_PID" || true; WATCH_PID=""
SECS=$(( $(date +%s) - T0 ))
echo "watch soak: $REQUESTS requests over $CONNECTIONS connections in ${SECS}s (snaplen $SNAPLEN, buffer ${BUFFER} KiB)"
echo "  lab: $(tail -1 "$DIR/lab.out")"
echo "  lines printed: $(wc -l < "$DIR/watch.out")"
grep -E "packets (received|dropped)|exchanges|expired" "$DIR/watch.err" | sed 's/^/  /'
echo "  RSS KiB: start $START_RSS, max $MAX_RSS, end $END_RSS (per second:$SAMPLES)"
