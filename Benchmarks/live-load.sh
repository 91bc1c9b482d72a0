#!/usr/bin/env bash
# live-load.sh — does a live capture keep up with a loaded pod? (issue 21)
#
# Usage: sudo Benchmarks/live-load.sh [--no-build] [--duration S] [--paced "8 16 32"] [--peak-connections N]
#                                     [--rounds N] [--only "watch packets tcpdump"] [--analyze]
#   --no-build            use the hoptrace already built in .build-bench (release)
#   --duration S          seconds of load per run (default 6)
#   --paced "C…"          paced loads: wrk -t2 with C keep-alive connections, each waiting 2 ms
#                         between its requests (a Lua delay()); default "8 16 32" (~3k, ~5k, ~10k req/s)
#   --peak-connections N  the peak load: wrk -t2 -cN, no delay (default 16)
#   --rounds N            each load N times, the capturers interleaved (default 1)
#   --only "…"            the capturers to measure (default "watch packets tcpdump")
#   --analyze             also `hoptrace analyze -i any` (its report to /dev/null)
#   --no-file             skip the file-path comparison (below)
#   --keep-file PATH      keep the file path's peak capture at PATH (to profile `watch -r` on it)
# Environment: HOPTRACE_BIN=/path/to/hoptrace measures that binary (no build);
#   PERF_OUT=file records `perf record -g` of watch during its (first) peak run;
#   WATCH_ARGS="…" adds flags to `hoptrace watch` (e.g. "-B 65536").
#
# Scene: namespaces hilive-<pid>-client and hilive-<pid>-pod joined by a veth pair
# (198.18.7.1/24, 198.18.7.2/24); in the pod the 2018 Istio rules (iptables REDIRECT of port
# 80 to 15001, installed by `hoptrace intercept install --preset istio-2018`), `hoptrace proxy`
# as the sidecar (uid 1337, no access log) and nginx as the app (one worker, access_log off,
# port 80). wrk in the client namespace sends `GET /` to 198.18.7.2:80: each request crosses
# the veth (client → proxy) and lo (proxy → nginx), as in the issue.
#
# For each load, one capturer at a time, in the pod, on `any`, started before wrk and stopped
# (SIGTERM) after it:
#   watch    hoptrace watch -i any --netns POD --rules istio-2018 > /dev/null   (text lines)
#   packets  hoptrace packets -i any --netns POD -q -w /dev/null
#   tcpdump  tcpdump -i any -w /dev/null  (its defaults: 2 MiB buffer, 262144 snaplen)
#   analyze  hoptrace analyze -i any --netns POD --rules istio-2018 > /dev/null  (--analyze)
#   watch1   watch with HOPTRACE_WATCH_THREADS=1: its correlation on the reading thread (--only)
# Printed per run: wrk's requests/s, the packets the capturer's filter received (ps_recv: on
# `any` each packet on lo counts twice) and those it captured, the kernel's drops, hoptrace's
# queue drops and its high-water mark, the drop share ((kernel + queue) over captured + both)
# and the capturer's CPU time (user + system, all its threads, to its exit, so a queue drained
# after SIGTERM is counted) per packet captured.
# Then, unless --no-file, the file path on the same traffic: one more peak run captured with
# `hoptrace packets -w`, and `hoptrace watch -r` on that file: its CPU per packet beside the
# live watch's (issue 21, item 2: live within 1.5x of the file path).
# Target (issue 21): watch drops 0 packets at ~10k req/s paced and <= 1% at wrk's peak.
# Output: the table on stdout and in Benchmarks/data/live-load-results.txt; each capturer's
# standard error and wrk's output in Benchmarks/data/live-load-*.txt.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DATA="$HERE/data"
BUILD=1
DURATION=6
PACED="8 16 32"
PEAK_CONNS=16
ROUNDS=1
ONLY="watch packets tcpdump"
FILE_COMPARE=1
KEEP_FILE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --duration) DURATION="${2:?--duration needs seconds}"; shift 2 ;;
        --paced) PACED="${2?--paced needs connection counts}"; shift 2 ;;
        --peak-connections) PEAK_CONNS="${2:?--peak-connections needs a number}"; shift 2 ;;
        --rounds) ROUNDS="${2:?--rounds needs a number}"; shift 2 ;;
        --only) ONLY="${2:?--only needs capturers}"; shift 2 ;;
        --analyze) ONLY="$ONLY analyze"; shift ;;
        --no-file) FILE_COMPARE=0; shift ;;
        --keep-file) KEEP_FILE="${2:?--keep-file needs a path}"; shift 2 ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "live-load.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" = 0 ] || { echo "live-load.sh: needs root (network namespaces, iptables, capture)" >&2; exit 2; }
for tool in ip wrk nginx tcpdump; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "live-load.sh: $tool is missing" >&2; exit 2; }
done
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
TCPDUMP="$(command -v tcpdump || echo /usr/sbin/tcpdump)"
mkdir -p "$DATA"
rm -f "$DATA"/live-load-*.txt

NAME=live-load.sh
. "$HERE/scene.sh"
scene_binary live-load-build.log
scene_start hilive 198.18.7 hv
"$BIN" intercept install --netns "$POD" --preset istio-2018 >/dev/null || { echo "$NAME: cannot install the rules" >&2; exit 2; }

scene_app 80
ip netns exec "$POD" "$BIN" proxy --no-access-log > "$TMP/proxy.out" 2> "$TMP/proxy.err" &
PIDS+=($!)
URL=http://198.18.7.2:80/
ready=0
for _ in $(seq 1 100); do
    if grep -q "listening on" "$TMP/proxy.err" 2>/dev/null \
        && ip netns exec "$C" wrk -t1 -c1 -d1s "$URL" 2>/dev/null | grep -q "requests in"; then ready=1; break; fi
    sleep 0.1
done
[ "$ready" = 1 ] || { echo "$NAME: nginx or the proxy did not start"; cat "$TMP/proxy.err" "$TMP/nginx-error.log" 2>/dev/null; exit 2; }
echo 'function delay() return 2 end' > "$TMP/pace.lua"

HZ=$(getconf CLK_TCK)
rps() { awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$1"; }

# capture NAME LOAD-NAME WRK-ARGS…: one capturer during one wrk run; appends a row to $TMP/rows.
capture() {
    local who="$1" load="$2"; shift 2
    local err="$DATA/live-load-$load-$who-$r.txt" wrkout="$DATA/live-load-$load-$who-$r-wrk.txt"
    local cmd
    case "$who" in
        watch) cmd=("$BIN" watch -i any --netns "$POD" --rules istio-2018 ${WATCH_ARGS:-}) ;;
        watch1) cmd=(env HOPTRACE_WATCH_THREADS=1 "$BIN" watch -i any --netns "$POD" --rules istio-2018 ${WATCH_ARGS:-}) ;;
        packets) cmd=("$BIN" packets -i any --netns "$POD" -q -w /dev/null) ;;
        analyze) cmd=("$BIN" analyze -i any --netns "$POD" --rules istio-2018) ;;
        tcpdump) cmd=(ip netns exec "$POD" "$TCPDUMP" -i any -w /dev/null) ;;
    esac
    # The capturer under a shell that forwards SIGTERM to it, waits for its exit and prints the
    # CPU time of its children (bash's `times`): the capturer's, every thread, to its end.
    export ERR="$err"
    bash -c 'trap "kill -TERM \$p 2>/dev/null" TERM; "$@" > /dev/null 2> "$ERR" & p=$!; wait $p; wait $p; times' \
        _ "${cmd[@]}" > "$TMP/times" 2>&1 &
    local wrapper=$!
    for _ in $(seq 1 100); do grep -q "listening on" "$err" 2>/dev/null && break; sleep 0.05; done
    sleep 0.3
    local perf_pid=""
    if [ "$who" = watch ] && [ "$load" = peak ] && [ -n "${PERF_OUT:-}" ] && [ ! -e "$PERF_OUT" ]; then
        local wp; wp=$(pgrep -P "$wrapper" | head -1)
        perf record -g -o "$PERF_OUT" -p "$wp" -- sleep "$DURATION" > /dev/null 2>&1 &
        perf_pid=$!
    fi
    ip netns exec "$C" wrk -t2 "$@" -d"${DURATION}s" "$URL" > "$wrkout" 2>&1
    sleep 0.3
    local t_stop; t_stop=$(date +%s.%N)
    kill -TERM "$wrapper" 2>/dev/null
    local waited=0
    while kill -0 "$wrapper" 2>/dev/null && [ $waited -lt 6000 ]; do sleep 0.01; waited=$((waited + 1)); done
    local drain; drain=$(awk -v a="$t_stop" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    wait "$wrapper" 2>/dev/null
    [ -n "$perf_pid" ] && wait "$perf_pid" 2>/dev/null
    # `times`: the shell's user and system time, then its children's (e.g. 0m1.234s 0m0.567s).
    local cpu
    cpu=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] } printf "%.3f", t }' "$TMP/times")
    local received dropped qdrop qhigh captured
    received=$(grep -oE '^[0-9]+ packets received by filter' "$err" | awk '{print $1}' | tail -1)
    # What libpcap handed over and the capturer kept: "N packets captured" (tcpdump, watch),
    # "N packets read" (packets, analyze). On `any` the kernel counts each packet on lo twice
    # (out and in) in "received" and libpcap drops the outgoing copy: received overstates.
    captured=$(grep -oE '^[0-9]+ packets (captured|read)' "$err" | awk '{print $1}' | tail -1)
    dropped=$(grep -oE '[0-9]+ packets dropped by kernel' "$err" | awk '{print $1}' | tail -1)
    qdrop=$(grep -oE "[0-9]+ packets dropped by hoptrace's queue" "$err" | awk '{print $1}' | tail -1)
    qhigh=$(grep -oE "high-water mark [0-9]+ packets, [0-9.]+ of [0-9.]+ MiB" "$err" | awk '{print $3, "(" $5, "MiB)"}' | tail -1)
    [ "$who" = tcpdump ] && { qdrop="-"; qhigh="-"; }
    [ -z "$qdrop" ] && qdrop="-"  # a hoptrace without a capture queue
    printf '%-10s %-8s %9s %10s %10s %10s %8s %-20s %8s %9s %7s\n' "$load" "$who" "$(rps "$wrkout")" "${received:-?}" "${captured:-?}" "${dropped:-?}" "${qdrop:-?}" "${qhigh:-?}" \
        "$(awk -v c="${captured:-0}" -v d="${dropped:-0}" -v q="${qdrop:-0}" 'BEGIN { if (q == "-") q = 0; n = c + d + q; if (n > 0) printf "%.2f%%", 100 * (d + q) / n; else print "?" }')" \
        "$(awk -v c="${cpu:-0}" -v n="${captured:-0}" 'BEGIN { if (n > 0) printf "%.2f", c * 1e6 / n; else print "?" }')" "$drain" >> "$TMP/rows"
    if [ "$who" = watch ] && [ "$load" = peak ]; then echo "$cpu ${captured:-0}" > "$TMP/watch-peak"; fi
}

# Warm up the path (connections, caches).
ip netns exec "$C" wrk -t2 -c16 -d1s "$URL" > /dev/null 2>&1
: > "$TMP/rows"
for r in $(seq 1 "$ROUNDS"); do
    for c in $PACED; do
        for who in $ONLY; do capture "$who" "paced-c$c" -c"$c" -s "$TMP/pace.lua"; done
    done
    for who in $ONLY; do capture "$who" peak -c"$PEAK_CONNS"; done
done

# The file path on the same traffic: a peak run captured to a file (hoptrace packets -w), then
# `hoptrace watch -r` on it, its CPU per packet beside the live watch's (issue 21, item 2).
FILE_LINE=""
if [ "$FILE_COMPARE" = 1 ]; then
    export ERR="$DATA/live-load-file-capture.txt"
    bash -c 'trap "kill -TERM \$p 2>/dev/null" TERM; "$@" > /dev/null 2> "$ERR" & p=$!; wait $p; wait $p' \
        _ "$BIN" packets -i any --netns "$POD" -q -w "$TMP/peak.pcap" &
    fc=$!
    for _ in $(seq 1 100); do grep -q "listening on" "$ERR" 2>/dev/null && break; sleep 0.05; done
    sleep 0.3
    ip netns exec "$C" wrk -t2 -c"$PEAK_CONNS" -d"${DURATION}s" "$URL" > "$DATA/live-load-file-wrk.txt" 2>&1
    sleep 0.3; kill -TERM "$fc"; wait "$fc" 2>/dev/null
    fdrop=$(grep -oE '[0-9]+ packets dropped by kernel' "$ERR" | awk '{print $1}')
    fq=$(grep -oE "[0-9]+ packets dropped by hoptrace's queue" "$ERR" | awk '{print $1}')
    fcpu=$(bash -c '"$@" > /dev/null 2> "'"$DATA/live-load-file-watch.txt"'"; times' _ "$BIN" watch -r "$TMP/peak.pcap" --rules istio-2018 \
        | awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] } printf "%.3f", t }')
    fpk=$(grep -oE '^[0-9]+ packets captured' "$DATA/live-load-file-watch.txt" | awk '{print $1}')
    [ -n "$KEEP_FILE" ] && cp "$TMP/peak.pcap" "$KEEP_FILE"
    FILE_LINE=$(awk -v c="$fcpu" -v n="${fpk:-0}" -v rq="$(rps "$DATA/live-load-file-wrk.txt")" -v d="${fdrop:-?}" -v q="${fq:-?}" 'BEGIN {
        if (n > 0) printf "file path: watch -r on a peak run captured with packets -w (%s req/s, %d packets, %s kernel / %s queue drops while capturing): %.2f us CPU/packet", rq, n, d, q, c * 1e6 / n }')
    if [ -s "$TMP/watch-peak" ]; then
        read -r lc lm < "$TMP/watch-peak"
        FILE_LINE="$FILE_LINE; live watch at peak: $(awk -v c="$lc" -v m="$lm" -v f="$fcpu" -v n="${fpk:-0}" 'BEGIN {
            if (m > 0 && n > 0 && f > 0) printf "%.2f us/packet analysed, %.2fx the file path (target <= 1.5x)", c * 1e6 / m, (c / m) / (f / n) }')"
    fi
fi

{
    echo "live capture under load: $(nproc) cores, wrk -t2 keep-alive GET / through hoptrace proxy (Istio 2018 rules) to nginx, ${DURATION}s per run, $ROUNDS round(s)"
    echo "binary: $BIN ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)); paced: 2 ms between a connection's requests"
    echo
    printf '%-10s %-8s %9s %10s %10s %10s %8s %-20s %8s %9s %7s\n' load capturer "req/s" received captured "kernel" "queue" "queue high-water" "dropped" "CPU us/pkt" "exit s"
    cat "$TMP/rows"
    echo
    echo "received: libpcap's ps_recv (on any it counts each packet on lo twice, out and in); captured: the packets the capturer got (libpcap drops lo's outgoing copy)"
    echo "dropped = (kernel + queue) / (captured + kernel + queue); CPU = the capturer's user + system time (all threads, to its exit) / packets captured;"
    echo "exit s = from SIGTERM to its exit (hoptrace analyses what its queue holds first: a backlog shows here and in the high-water mark)"
    [ -n "$FILE_LINE" ] && echo "$FILE_LINE"
} | tee "$DATA/live-load-results.txt"
