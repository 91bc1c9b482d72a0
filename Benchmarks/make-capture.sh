#!/usr/bin/env bash
# make-capture.sh — make hoptrace's benchmark captures from real traffic.
#
# A lab of two network namespaces joined by a veth pair:
#   htbench-srv  198.18.2.1/24  nginx (tiny config in a temp dir, keep-alive,
#                               access_log off) serving a ~600-byte static file
#                               and tcpdump -s 0 writing the capture
#   htbench-cli  198.18.2.2/24  wrk (keep-alive), driven by a Lua script that
#                               stops after a given number of responses
# The mix per 20 requests: 17 GET /small.html (200, ~600 B body),
# 2 HEAD /health (204, no body), 1 GET /missing (404, ~150 B body).
# Every request carries a unique X-Request-Id.
#
# Usage (as root):
#   Benchmarks/make-capture.sh                  # both default captures
#   Benchmarks/make-capture.sh --requests N --out FILE   # one capture
# Options:
#   --requests N    exchanges for the large capture (default 160000; the
#                   small one gets N/4). With --out: exchanges for that file.
#   --out FILE      make only this capture
#   --connections C wrk connections to start with (default 50)
#   --no-tshark     do not count requests with tshark (slow) afterwards
#   --identical     make the identical-load captures instead (below)
#
# --identical: a pod with a sidecar under identical load, the kind of capture
# that once crashed `analyze`, with thousands of identical requests in flight
# over a pooling proxy:
#   htbench-icli  198.18.3.2/24  wrk -t2 -c8 (keep-alive): identical GET /
#   htbench-ipod  198.18.3.1/24  the istio-2018 rules (`hoptrace intercept
#                 install --netns htbench-ipod --preset istio-2018`), HAProxy
#                 as the sidecar (mode http, bind :15001, http-reuse always,
#                 server 127.0.0.1:80, uid/gid 1337), nginx on :80 as the app
#                 (~600-byte page), tcpdump -i any writing the capture
# Writes Benchmarks/data/identical.pcap (--requests, default 10000) and
# identical-4x.pcap (4x as many), or only --out FILE. hoptrace installs the
# rules: HOPTRACE_BIN, else .build-bench/release, .build/release, .build/debug.
#
# Writes FILE and FILE.stats (packets, size, wrk's and tshark's counts,
# tcpdump's kernel-drop counters). Exit 0 ok, 1 the capture missed its
# targets (drops, too few packets/exchanges), 2 usage or setup error.
#
# Network rules (DESIGN.md): only namespaces named htbench-*, one veth pair,
# addresses in 198.18.2.0/24; the root namespace's iptables is never touched;
# only processes started here are stopped, by PID; wrk is bounded by count
# (Lua) and by time (-d), and the whole run by `timeout`.
set -euo pipefail

# The whole run is bounded in time as well (30 minutes).
if [ -z "${HTBENCH_CAPTURE_BOUNDED:-}" ]; then
    export HTBENCH_CAPTURE_BOUNDED=1
    exec timeout --signal=TERM --kill-after=30 1800 "$0" "$@"
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA="$HERE/data"

REQUESTS=160000
OUT=""
CONNS=50
THREADS=2
TSHARK=1
MIN_PACKETS=500000
MIN_EXCHANGES=50000
IDENTICAL=0
REQUESTS_GIVEN=0
CONNS_GIVEN=0

die() { echo "make-capture: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --requests) REQUESTS="${2:?--requests needs a number}"; REQUESTS_GIVEN=1; shift 2 ;;
        --out) OUT="${2:?--out needs a file}"; shift 2 ;;
        --connections) CONNS="${2:?--connections needs a number}"; CONNS_GIVEN=1; shift 2 ;;
        --no-tshark) TSHARK=0; shift ;;
        --identical) IDENTICAL=1; shift ;;
        -h|--help) sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
case "$REQUESTS" in ''|*[!0-9]*) die "--requests wants a positive integer" ;; esac
[ "$REQUESTS" -ge 100 ] || die "--requests must be at least 100"
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, tcpdump): run with sudo"
[ "$IDENTICAL" = 0 ] || [ "$REQUESTS_GIVEN" = 1 ] || REQUESTS=10000
for t in ip nginx wrk tcpdump capinfos timeout; do
    command -v "$t" >/dev/null || die "missing tool: $t"
done
[ "$TSHARK" = 0 ] || command -v tshark >/dev/null || { echo "make-capture: no tshark; not counting requests with it" >&2; TSHARK=0; }

NS_S=htbench-srv
NS_C=htbench-cli
VETH_S=htb-s0
VETH_C=htb-c0
ADDR_S=198.18.2.1
ADDR_C=198.18.2.2

WORK=""
NGINX_PID=""
TCPDUMP_PID=""
WRK_PID=""
PARTIAL=""

stop_pid() {   # stop_pid PID SIGNAL: stop one process we started, wait for it
    local pid="$1" sig="${2:-TERM}"
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill "-$sig" "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

delete_ns() {  # delete_ns NAME: stop what runs in one of OUR namespaces, then delete it
    local ns="$1" pids
    case "$ns" in htbench-*) ;; *) return 0 ;; esac
    ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns" || return 0
    pids="$(ip netns pids "$ns" 2>/dev/null || true)"
    if [ -n "$pids" ]; then
        echo "make-capture: stopping leftover processes in $ns: $pids" >&2
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        sleep 1
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
    fi
    ip netns delete "$ns" 2>/dev/null || true
}

HAPROXY_PID=""

cleanup() {
    stop_pid "$WRK_PID" INT
    stop_pid "$TCPDUMP_PID" INT
    stop_pid "$HAPROXY_PID" TERM
    stop_pid "$NGINX_PID" QUIT
    TCPDUMP_PID=""; NGINX_PID=""; WRK_PID=""; HAPROXY_PID=""
    [ -n "$PARTIAL" ] && rm -f "$PARTIAL"
    delete_ns "$NS_C"
    delete_ns "$NS_S"
    [ -n "$WORK" ] && rm -rf "$WORK"
    WORK=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stale_cleanup() {
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^htbench-' || true); do
        echo "make-capture: removing stale namespace $ns" >&2
        delete_ns "$ns"
    done
}

setup_lab() {
    WORK="$(mktemp -d /tmp/htbench-capture.XXXXXX)"
    chmod 755 "$WORK"          # nginx workers run as nobody
    mkdir -p "$WORK/www" "$WORK/tmp" "$WORK/logs"
    # ~600-byte static page
    {
        printf '<!doctype html>\n<html><head><title>hoptrace benchmark</title></head>\n<body>\n'
        for i in $(seq 1 9); do
            printf '<p>line %02d: the quick brown fox jumps over the lazy dog.</p>\n' "$i"
        done
        printf '</body></html>\n'
    } > "$WORK/www/small.html"
    chmod -R a+rX "$WORK/www"

    cat > "$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    default_type text/html;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 10000000;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    server {
        listen $ADDR_S:80 reuseport backlog=1024;
        server_name hoptrace-bench;
        root $WORK/www;
        location / { }
        # a HEAD-able health path: 204, so no body whatever the method (wrk's
        # parser does not know a HEAD response has no body, and would hang on
        # a HEAD of a file that has a Content-Length)
        location = /health { return 204; }
    }
}
EOF

    cat > "$WORK/count.lua" <<'EOF'
-- Stop each thread after `limit` responses; build one request per call.
local threads = {}
local next_id = 1
function setup(thread)
    thread:set("tid", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

local limit = 0
local n = 0
local i = 0
local host = "198.18.2.1"
function init(args)
    limit = tonumber(args[1])
end

function request()
    i = i + 1
    local m = i % 20
    local line
    if m == 7 or m == 14 then
        line = "HEAD /health HTTP/1.1\r\n"
    elseif m == 19 then
        line = "GET /missing HTTP/1.1\r\n"
    else
        line = "GET /small.html HTTP/1.1\r\n"
    end
    return line .. "Host: " .. host .. "\r\nUser-Agent: htbench-wrk/1\r\nAccept: */*\r\n"
        .. "X-Request-Id: t" .. tid .. "-" .. i .. "\r\n\r\n"
end

function response(status, headers, body)
    n = n + 1
    if n >= limit then wrk.thread:stop() end
end

function done(summary, latency, requests)
    io.write(string.format("htbench: responses %d errors connect %d read %d write %d status %d timeout %d\n",
        summary.requests, summary.errors.connect, summary.errors.read,
        summary.errors.write, summary.errors.status, summary.errors.timeout))
end
EOF

    ip netns add "$NS_S"
    ip netns add "$NS_C"
    ip link add "$VETH_S" netns "$NS_S" type veth peer name "$VETH_C" netns "$NS_C"
    ip -n "$NS_S" addr add "$ADDR_S/24" dev "$VETH_S"
    ip -n "$NS_C" addr add "$ADDR_C/24" dev "$VETH_C"
    ip -n "$NS_S" link set lo up
    ip -n "$NS_C" link set lo up
    ip -n "$NS_S" link set "$VETH_S" up
    ip -n "$NS_C" link set "$VETH_C" up

    ip netns exec "$NS_S" nginx -p "$WORK" -c "$WORK/nginx.conf" -g 'daemon off;' \
        >"$WORK/logs/nginx.out" 2>&1 &
    NGINX_PID=$!
    local ok=0
    for _ in $(seq 1 50); do
        if ip netns exec "$NS_C" timeout 2 bash -c "exec 3<>/dev/tcp/$ADDR_S/80" 2>/dev/null; then ok=1; break; fi
        kill -0 "$NGINX_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ "$ok" != 1 ]; then
        cat "$WORK/logs/nginx.out" "$WORK/logs/error.log" >&2 2>/dev/null || true
        die "nginx did not come up on $ADDR_S:80"
    fi
}

# capture_once FILE REQUESTS CONNS -> sets CAP_* variables; returns 0 if no drops
capture_once() {
    local file="$1" req="$2" conns="$3"
    local tmp="$file.partial"
    PARTIAL="$tmp"
    rm -f "$tmp"
    local threads=$THREADS
    [ "$conns" -ge "$threads" ] || threads=1
    local per_thread=$(( (req + threads - 1) / threads ))
    # time bound: generous (assumes >= 2000 req/s), at least 30 s
    local dur=$(( req / 2000 + 30 ))

    ip netns exec "$NS_S" tcpdump -i "$VETH_S" -n -s 0 -B 65536 -Z root -w "$tmp" \
        "host $ADDR_S and tcp port 80" >"$WORK/logs/tcpdump.out" 2>&1 &
    TCPDUMP_PID=$!
    for _ in $(seq 1 100); do
        grep -q 'listening on' "$WORK/logs/tcpdump.out" 2>/dev/null && break
        kill -0 "$TCPDUMP_PID" 2>/dev/null || break
        sleep 0.1
    done
    grep -q 'listening on' "$WORK/logs/tcpdump.out" || { cat "$WORK/logs/tcpdump.out" >&2; die "tcpdump did not start"; }
    sleep 0.5

    echo "make-capture: wrk -t$threads -c$conns -d${dur}s, stop after $per_thread responses per thread" >&2
    local t0 t1
    t0=$(date +%s.%N)
    # wrk always sleeps for its whole -d even when every thread has stopped
    # at its count, so watch the veth: once it is quiet for a second, the
    # counts are done (or the load stalled) and wrk gets SIGINT, which makes
    # it print its summary and exit. -d and `timeout` remain the time bound.
    ip netns exec "$NS_C" timeout --signal=INT --kill-after=10 $((dur + 30)) \
        wrk -t"$threads" -c"$conns" -d"${dur}s" --timeout 10s -s "$WORK/count.lua" \
        "http://$ADDR_S/" -- "$per_thread" >"$WORK/logs/wrk.out" 2>&1 &
    WRK_PID=$!
    local wrk_pid=$WRK_PID last=-1 now quiet=0
    while kill -0 "$wrk_pid" 2>/dev/null; do
        sleep 0.25
        now="$(ip netns exec "$NS_S" cat "/sys/class/net/$VETH_S/statistics/rx_packets" 2>/dev/null || echo 0)"
        if [ "$now" = "$last" ] && [ "$now" -gt 100 ]; then
            quiet=$((quiet + 1))
            if [ "$quiet" -ge 4 ]; then kill -INT "$wrk_pid" 2>/dev/null || true; break; fi
        else
            quiet=0
        fi
        last="$now"
    done
    wait "$wrk_pid" 2>/dev/null || true
    WRK_PID=""
    t1=$(date +%s.%N)
    sleep 1
    stop_pid "$TCPDUMP_PID" INT
    TCPDUMP_PID=""
    sed 's/^/  wrk: /' "$WORK/logs/wrk.out" >&2
    sed 's/^/  tcpdump: /' "$WORK/logs/tcpdump.out" >&2

    CAP_WRK_RESPONSES="$(awk '/^htbench: responses/ {print $3}' "$WORK/logs/wrk.out")"
    CAP_WRK_LINE="$(grep -E 'requests in' "$WORK/logs/wrk.out" | sed 's/^ *//' || true)"
    CAP_WRK_ERRORS="$(grep '^htbench:' "$WORK/logs/wrk.out" | sed 's/^htbench: //' || true)"
    CAP_SECONDS="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')"
    CAP_CAPTURED="$(awk '/packets captured/ {print $1}' "$WORK/logs/tcpdump.out")"
    CAP_RECEIVED="$(awk '/packets received by filter/ {print $1}' "$WORK/logs/tcpdump.out")"
    CAP_DROPPED="$(awk '/packets dropped by kernel/ {print $1}' "$WORK/logs/tcpdump.out")"
    CAP_CONNS="$conns"
    CAP_THREADS="$threads"
    [ -s "$tmp" ] || die "tcpdump wrote nothing"
    [ "${CAP_DROPPED:-1}" = 0 ]
}

make_one() {
    local file="$1" req="$2" enforce="$3"
    mkdir -p "$(dirname "$file")"
    local conns="$CONNS" attempt
    for attempt in 1 2 3; do
        echo "make-capture: $file: $req exchanges, attempt $attempt, $conns connections" >&2
        if capture_once "$file" "$req" "$conns"; then break; fi
        echo "make-capture: tcpdump dropped ${CAP_DROPPED:-?} packets; lowering the rate" >&2
        rm -f "$file.partial"
        conns=$(( conns / 3 )); [ "$conns" -ge 2 ] || conns=2
        if [ "$attempt" = 3 ]; then
            echo "make-capture: still dropping after 3 attempts; giving up" >&2
            return 1
        fi
    done
    mv -f "$file.partial" "$file"
    PARTIAL=""

    local packets bytes size tshark_req="not counted" tshark_resp="not counted" tshark_s=""
    packets="$(capinfos -c -M -T "$file" | awk -F'\t' 'NR==2 {print $2}')"
    size="$(stat -c %s "$file")"
    bytes="$(capinfos -d -M -T "$file" | awk -F'\t' 'NR==2 {print $2}')"
    if [ "$TSHARK" = 1 ]; then
        echo "make-capture: counting HTTP requests and responses with tshark (slow) ..." >&2
        local s0 s1
        s0=$(date +%s.%N)
        tshark -n -r "$file" -Y 'http.request || http.response' -T fields -e http.request.method -e http.response.code \
            2>/dev/null > "$WORK/tshark.out" || true
        s1=$(date +%s.%N)
        tshark_req="$(awk -F'\t' '$1 != "" {n++} END {print n+0}' "$WORK/tshark.out")"
        tshark_resp="$(awk -F'\t' '$2 != "" {n++} END {print n+0}' "$WORK/tshark.out")"
        tshark_s="$(awk -v a="$s0" -v b="$s1" 'BEGIN{printf "%.1f", b-a}')"
        tshark_methods="$(awk -F'\t' '$1 != "" {c[$1]++} END {for (m in c) printf "%s=%d ", m, c[m]}' "$WORK/tshark.out")"
        tshark_codes="$(awk -F'\t' '$2 != "" {c[$2]++} END {for (m in c) printf "%s=%d ", m, c[m]}' "$WORK/tshark.out")"
    fi

    {
        echo "file: $(basename "$file")"
        echo "made: $(date -u +%Y-%m-%dT%H:%M:%SZ) by make-capture.sh"
        echo "packets: $packets"
        echo "file_bytes: $size"
        echo "packet_bytes: $bytes"
        echo "wrk: -t$CAP_THREADS -c$CAP_CONNS keep-alive; $CAP_WRK_LINE; $CAP_WRK_ERRORS"
        echo "wrk_responses: $CAP_WRK_RESPONSES"
        echo "load_seconds: $CAP_SECONDS"
        echo "tcpdump: captured $CAP_CAPTURED, received by filter $CAP_RECEIVED, dropped by kernel $CAP_DROPPED"
        echo "tshark_requests: $tshark_req ${tshark_methods:-}"
        echo "tshark_responses: $tshark_resp ${tshark_codes:-}"
        [ -z "$tshark_s" ] || echo "tshark_count_seconds: $tshark_s"
    } > "$file.stats"
    sed 's/^/  /' "$file.stats" >&2

    if [ "$enforce" = 1 ]; then
        local exch="$tshark_req"
        [ "$exch" = "not counted" ] && exch="${CAP_WRK_RESPONSES:-0}"
        if [ "$packets" -lt "$MIN_PACKETS" ] || [ "$exch" -lt "$MIN_EXCHANGES" ]; then
            echo "make-capture: $file misses its targets ($packets packets < $MIN_PACKETS or $exch exchanges < $MIN_EXCHANGES); raise --requests" >&2
            return 1
        fi
    fi
    return 0
}

# ---------------------------------------------------------------- identical load
# The pod: the istio-2018 rules, HAProxy on 15001 as uid/gid 1337, nginx on :80.
setup_identical() {
    NS_S=htbench-ipod
    NS_C=htbench-icli
    VETH_S=htbi-p0
    VETH_C=htbi-c0
    ADDR_S=198.18.3.1
    ADDR_C=198.18.3.2
    local hoptrace="" root c
    root="$(cd "$HERE/.." && pwd)"
    for c in "${HOPTRACE_BIN:-}" "$root/.build-bench/release/hoptrace" "$root/.build/release/hoptrace" "$root/.build/debug/hoptrace"; do
        if [ -n "$c" ] && [ -x "$c" ]; then hoptrace="$c"; break; fi
    done
    [ -n "$hoptrace" ] || die "no hoptrace binary for the rules: set HOPTRACE_BIN or swift build"
    command -v haproxy >/dev/null || die "missing tool: haproxy"

    WORK="$(mktemp -d /tmp/htbench-identical.XXXXXX)"
    chmod 755 "$WORK"
    mkdir -p "$WORK/www" "$WORK/tmp" "$WORK/logs"
    {
        printf '<!doctype html>\n<html><head><title>hoptrace benchmark</title></head>\n<body>\n'
        for i in $(seq 1 9); do
            printf '<p>line %02d: the quick brown fox jumps over the lazy dog.</p>\n' "$i"
        done
        printf '</body></html>\n'
    } > "$WORK/www/index.html"
    chmod -R a+rX "$WORK/www"
    cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    default_type text/html;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 10000000;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    server {
        listen 80 reuseport backlog=1024;
        server_name hoptrace-bench;
        root $WORK/www;
        location / { }
    }
}
NGINX
    cat > "$WORK/haproxy.cfg" <<HAPROXY
global
    uid 1337
    gid 1337
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend sidecar
    bind :15001
    default_backend app
backend app
    http-reuse always
    server app 127.0.0.1:80
HAPROXY
    # Each thread stops after its share of responses; the requests are wrk's own identical GET /.
    cat > "$WORK/count.lua" <<'LUA'
local limit = 0
local n = 0
function init(args) limit = tonumber(args[1]) end
function response(status, headers, body)
    n = n + 1
    if n >= limit then wrk.thread:stop() end
end
function done(summary, latency, requests)
    io.write(string.format("htbench: responses %d errors connect %d read %d write %d status %d timeout %d\n",
        summary.requests, summary.errors.connect, summary.errors.read,
        summary.errors.write, summary.errors.status, summary.errors.timeout))
end
LUA

    ip netns add "$NS_S"
    ip netns add "$NS_C"
    ip link add "$VETH_S" netns "$NS_S" type veth peer name "$VETH_C" netns "$NS_C"
    ip -n "$NS_S" addr add "$ADDR_S/24" dev "$VETH_S"
    ip -n "$NS_C" addr add "$ADDR_C/24" dev "$VETH_C"
    ip -n "$NS_S" link set lo up
    ip -n "$NS_C" link set lo up
    ip -n "$NS_S" link set "$VETH_S" up
    ip -n "$NS_C" link set "$VETH_C" up
    "$hoptrace" intercept install --netns "$NS_S" --preset istio-2018 >"$WORK/logs/rules.out" 2>&1 \
        || { cat "$WORK/logs/rules.out" >&2; die "hoptrace intercept install failed"; }

    ip netns exec "$NS_S" nginx -p "$WORK" -c "$WORK/nginx.conf" -g 'daemon off;' >"$WORK/logs/nginx.out" 2>&1 &
    NGINX_PID=$!
    ip netns exec "$NS_S" haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/logs/haproxy.out" 2>&1 &
    HAPROXY_PID=$!
    local ok=0
    for _ in $(seq 1 50); do
        # through the rules: the client's :80 is REDIRECTed to HAProxy, which asks nginx
        if ip netns exec "$NS_C" timeout 2 bash -c "exec 3<>/dev/tcp/$ADDR_S/80; printf 'GET / HTTP/1.0\r\n\r\n' >&3; head -1 <&3" 2>/dev/null | grep -q ' 200 '; then ok=1; break; fi
        if ! kill -0 "$NGINX_PID" 2>/dev/null || ! kill -0 "$HAPROXY_PID" 2>/dev/null; then break; fi
        sleep 0.2
    done
    if [ "$ok" != 1 ]; then
        cat "$WORK/logs/nginx.out" "$WORK/logs/error.log" "$WORK/logs/haproxy.out" >&2 2>/dev/null || true
        die "the pod (HAProxy on 15001, nginx on 80) did not answer on $ADDR_S:80"
    fi
}

# identical_once FILE REQUESTS: one capture, tcpdump -i any in the pod.
identical_once() {
    local file="$1" req="$2" tmp="$1.partial" threads=2 conns="$CONNS"
    PARTIAL="$tmp"
    rm -f "$tmp"
    [ "$conns" -ge "$threads" ] || threads=1
    local per_thread=$(( (req + threads - 1) / threads ))
    local dur=$(( req / 1000 + 30 ))
    ip netns exec "$NS_S" tcpdump -i any -n -s 0 -B 65536 -Z root -w "$tmp" tcp >"$WORK/logs/tcpdump.out" 2>&1 &
    TCPDUMP_PID=$!
    for _ in $(seq 1 100); do
        grep -q 'listening on' "$WORK/logs/tcpdump.out" 2>/dev/null && break
        kill -0 "$TCPDUMP_PID" 2>/dev/null || break
        sleep 0.1
    done
    grep -q 'listening on' "$WORK/logs/tcpdump.out" || { cat "$WORK/logs/tcpdump.out" >&2; die "tcpdump did not start"; }
    sleep 0.5
    echo "make-capture: $file: wrk -t$threads -c$conns identical GET /, $per_thread responses per thread" >&2
    local t0 t1
    t0=$(date +%s.%N)
    ip netns exec "$NS_C" timeout --signal=INT --kill-after=10 $((dur + 30)) \
        wrk -t"$threads" -c"$conns" -d"${dur}s" --timeout 10s -s "$WORK/count.lua" \
        "http://$ADDR_S/" -- "$per_thread" >"$WORK/logs/wrk.out" 2>&1 &
    WRK_PID=$!
    local wrk_pid=$WRK_PID last=-1 now quiet=0
    while kill -0 "$wrk_pid" 2>/dev/null; do
        sleep 0.25
        now="$(ip netns exec "$NS_S" cat "/sys/class/net/$VETH_S/statistics/rx_packets" 2>/dev/null || echo 0)"
        if [ "$now" = "$last" ] && [ "$now" -gt 100 ]; then
            quiet=$((quiet + 1))
            if [ "$quiet" -ge 4 ]; then kill -INT "$wrk_pid" 2>/dev/null || true; break; fi
        else
            quiet=0
        fi
        last="$now"
    done
    wait "$wrk_pid" 2>/dev/null || true
    WRK_PID=""
    t1=$(date +%s.%N)
    sleep 1
    stop_pid "$TCPDUMP_PID" INT
    TCPDUMP_PID=""
    sed 's/^/  wrk: /' "$WORK/logs/wrk.out" >&2
    sed 's/^/  tcpdump: /' "$WORK/logs/tcpdump.out" >&2
    local responses line errors seconds captured received dropped
    responses="$(awk '/^htbench: responses/ {print $3}' "$WORK/logs/wrk.out")"
    line="$(grep -E 'requests in' "$WORK/logs/wrk.out" | sed 's/^ *//' || true)"
    errors="$(grep '^htbench:' "$WORK/logs/wrk.out" | sed 's/^htbench: //' || true)"
    seconds="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')"
    captured="$(awk '/packets captured/ {print $1}' "$WORK/logs/tcpdump.out")"
    received="$(awk '/packets received by filter/ {print $1}' "$WORK/logs/tcpdump.out")"
    dropped="$(awk '/packets dropped by kernel/ {print $1}' "$WORK/logs/tcpdump.out")"
    [ -s "$tmp" ] || die "tcpdump wrote nothing"
    if [ "${dropped:-1}" != 0 ]; then
        echo "make-capture: tcpdump dropped ${dropped:-?} packets; the capture is kept (its .stats says so)" >&2
    fi
    mv -f "$tmp" "$file"
    PARTIAL=""
    {
        echo "file: $(basename "$file")"
        echo "made: $(date -u +%Y-%m-%dT%H:%M:%SZ) by make-capture.sh --identical"
        echo "scene: client $ADDR_C -> pod $ADDR_S:80, istio-2018 rules, HAProxy :15001 (http-reuse always, uid 1337) -> nginx 127.0.0.1:80; tcpdump -i any in the pod"
        echo "packets: $(capinfos -c -M -T "$file" | awk -F'\t' 'NR==2 {print $2}')"
        echo "file_bytes: $(stat -c %s "$file")"
        echo "wrk: -t$threads -c$conns identical GET / keep-alive; $line; $errors"
        echo "wrk_responses: $responses"
        echo "load_seconds: $seconds"
        echo "tcpdump: captured $captured, received by filter $received, dropped by kernel $dropped"
    } > "$file.stats"
    sed 's/^/  /' "$file.stats" >&2
}

stale_cleanup
if [ "$IDENTICAL" = 1 ]; then
    [ "$CONNS_GIVEN" = 1 ] || CONNS=8
    setup_identical
    if [ -n "$OUT" ]; then
        identical_once "$OUT" "$REQUESTS"
    else
        mkdir -p "$DATA"
        identical_once "$DATA/identical.pcap" "$REQUESTS"
        identical_once "$DATA/identical-4x.pcap" "$(( REQUESTS * 4 ))"
    fi
    exit 0
fi
setup_lab
rc=0
if [ -n "$OUT" ]; then
    make_one "$OUT" "$REQUESTS" 0 || rc=1
else
    make_one "$DATA/load-large.pcap" "$REQUESTS" 1 || rc=1
    make_one "$DATA/load-small.pcap" "$(( REQUESTS / 4 ))" 0 || rc=1
fi
exit "$rc"
