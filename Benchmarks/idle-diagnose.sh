#!/usr/bin/env bash
# idle-diagnose.sh — the idle keep-alive attack of attack.sh alone, with what explains its
# figures: wrk before, during (5 s under `strace -c -f` of the proxy, then 10 s without) and
# after; the pod's listen queues (`ss -ltn`) and socket counts, `nstat` listen overflows and
# SYN retransmissions, the proxy's threads' CPU, its stderr, its access log's statuses.
#
# Usage: sudo Benchmarks/idle-diagnose.sh [COUNT [proxy flags...]]   (COUNT: 10,000)
#   e.g. `idle-diagnose.sh 9000 --max-connections 9000` for the connection cap.
# Uses the release build in .build-bench (HOPTRACE_BIN=... for another); the proxy gets
# --max-connections 20000 (flags given after COUNT come later and win) and 65,536 fds or the
# hard limit. Output on stdout; strace's table, the access log and the proxy's stderr in
# Benchmarks/data/idle-diagnose-*.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"; ROOT="$(cd "$HERE/.." && pwd)"; DATA="$HERE/data"; BUILD=0; NAME=idle-diagnose.sh
[ "$(id -u)" = 0 ] || { echo "$NAME: needs root" >&2; exit 2; }
mkdir -p "$DATA"
COUNT="${1:-10000}"; shift || true
CLIENTS="$HERE/attack-clients.py"
. "$HERE/scene.sh"
scene_binary idle-diagnose-build.log
scene_start htidl 198.18.78 hi
for ns in "$C" "$POD"; do ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="10000 65000" net.core.somaxconn=4096; done
"$BIN" intercept install --netns "$POD" --preset istio-2018 >/dev/null
cat > "$TMP/nginx.conf" <<EOC
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 32768; }
http {
    access_log off; keepalive_requests 1000000; keepalive_timeout 75s;
    client_body_temp_path $TMP/body; proxy_temp_path $TMP/proxy; fastcgi_temp_path $TMP/fastcgi; uwsgi_temp_path $TMP/uwsgi; scgi_temp_path $TMP/scgi;
    server { listen 80 backlog=4096; listen 8080 backlog=4096;
        location / { default_type text/plain; return 200 "hello from nginx\n"; } }
}
EOC
ip netns exec "$POD" nginx -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" > "$TMP/nginx.out" 2>&1 &
PIDS+=($!)
ACCESS="$TMP/access.jsonl"
( ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec ip netns exec "$POD" "$BIN" proxy --access-log "$ACCESS" --max-connections 20000 "$@" ) > "$TMP/proxy.out" 2> "$TMP/proxy.err" &
PIDS+=($!); PROXY_PID=$!
for _ in $(seq 1 100); do grep -q "listening on" "$TMP/proxy.err" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
echo "proxy: $(awk '/Max open files/ {print $4}' /proc/$PROXY_PID/limits) fds allowed"
W() { ip netns exec "$C" wrk -t1 -c16 -d"$1"s --timeout 5s http://198.18.78.2:80/ 2>&1 | grep -E "Requests/sec|Socket errors|Non-2xx|requests in"; }
echo "== before"; W 5
ip netns exec "$C" python3 "$CLIENTS" idle --host 198.18.78.2 --port 80 --count "$COUNT" --max-seconds 40 --open-concurrency 500 > "$TMP/idle.json" 2> "$TMP/idle.err" &
APID=$!; PIDS+=($APID)
t0=$(date +%s.%N)
for _ in $(seq 1 1200); do grep -q ready "$TMP/idle.err" && break; sleep 0.1; done
echo "ready after $(echo "$(date +%s.%N) - $t0" | bc) s; proxy fds $(ls /proc/$PROXY_PID/fd | wc -l)"
echo "== listen queues (pod)"; ip netns exec "$POD" ss -ltn
echo "== ss -s pod"; ip netns exec "$POD" ss -s | head -3
echo "== during (wrk) + strace"
timeout 6 strace -c -f -p $PROXY_PID -o "$DATA/idle-diagnose-strace.txt" &
SPID=$!
W 5
wait $SPID
head -25 "$DATA/idle-diagnose-strace.txt"
echo "== during again (10 s)"; W 10
echo "== proxy cpu: $(awk '{print $14, $15}' /proc/$PROXY_PID/stat) threads: $(ls /proc/$PROXY_PID/task | wc -l)"
top -b -n1 -H -p $PROXY_PID | tail -4
echo "== netstat pod"; ip netns exec "$POD" nstat -az 2>/dev/null | grep -E "ListenOverflows|ListenDrops|TCPReqQFull|SynRetrans|TCPTimeouts|TCPAbortOnData|TCPBacklogDrop" 
echo "== netstat client"; ip netns exec "$C" nstat -az 2>/dev/null | grep -E "SynRetrans|TCPTimeouts|ListenOverflows"
echo "== proxy.err tail"; tail -5 "$TMP/proxy.err"; grep -c . "$TMP/proxy.err"
echo "== access log statuses"; grep -o '"status":[0-9]*' "$ACCESS" | sort | uniq -c; grep -o '"error":"[a-z_]*"' "$ACCESS" | sort | uniq -c
echo "== nginx errors"; tail -3 "$TMP/nginx-error.log"
wait $APID
cat "$TMP/idle.json"; echo
echo "== after"; W 5
cp "$ACCESS" "$DATA/idle-diagnose-access.jsonl"; cp "$TMP/proxy.err" "$DATA/idle-diagnose-proxy.err"
