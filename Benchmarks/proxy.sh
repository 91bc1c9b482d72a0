#!/usr/bin/env bash
# proxy.sh — what `hoptrace proxy` costs, measured with wrk in network namespaces.
#
# Usage: sudo Benchmarks/proxy.sh [--no-build] [--duration S] [--connections N] [--rounds N] [--strict]
#   --no-build      use the hoptrace already built in .build-bench (release)
#   --duration S    seconds per wrk run (default 5)
#   --connections N keep-alive connections for the peak runs (default 32)
#   --rounds N      rounds of the peak and of the paced runs, interleaved; the median round
#                   is reported, every round is listed (default 3)
#   --strict        exit 1 when a target is missed (default: report, exit 0)
# Environment: HOPTRACE_BIN=/path/to/hoptrace measures that binary (no build);
#   PROXY_ARGS="--threads 1" adds flags to `hoptrace proxy`;
#   PERF_OUT=file records `perf record -g` of the proxy during the peak proxied run.
#
# Scene: namespaces hibench-<pid>-client and hibench-<pid>-pod joined by a veth pair
# (198.18.4.1/24, 198.18.4.2/24); in the pod the 2018 Istio rules (iptables REDIRECT of
# port 80 to 15001), nginx (one worker, access_log off) on 0.0.0.0:80, :81 and :8080, and
# two `hoptrace proxy` (as uid 1337): on 15001 without an access log, as the reference
# proxies run and as Istio installs its sidecar by default; on 15002 (a second REDIRECT,
# port 81) writing its JSON access log to a file, as the lab runs it. Ports 80 and 81 go
# through a proxy to 127.0.0.1; port 8080 reaches nginx directly. Same nginx, same client.
#
# Runs:
#   peak    wrk -t2 -c32 -d5s --latency, direct (:8080), through the proxy (:80) and through
#           the proxy that writes the access log (:81)
#   ref     the same two runs against a second nginx acting as the proxy (:8081 ->
#           127.0.0.1:8080, kept-alive upstream): what a mature C proxy does on this box
#   ref+log the same with nginx doing hoptrace's extra work: a request id, a buffered JSON
#           access-log line per request (:8082 -> 127.0.0.1:8080)
#   haproxy the same against HAProxy in HTTP mode with one thread per core, as many as
#           hoptrace's event loops (:8083 -> 127.0.0.1:8080, kept-alive upstream), when
#           HAProxy is installed (apt-get install haproxy); skipped with a line otherwise
#   floor   the same against Benchmarks/floor-relay.c (built with cc into the scene's temp
#           folder; skipped with a line when no C compiler is found): an epoll relay that
#           adds the two headers and does nothing else, one read and one write per direction
#           and request (:8084 -> 127.0.0.1:8080). What it keeps of direct is the most any
#           proxy could keep on this machine in the same minutes: the 60% target's ceiling.
#   paced   half the proxy's peak rate, every path: wrk with a Lua delay() (2 ms between
#           a connection's requests; connections = rate x 2 ms), so both paths carry the
#           same offered load and p99 compares like with like. wrk2 would correct for
#           coordinated omission; plain wrk doesn't, which flatters both paths alike.
#   rounds  both kinds of run are repeated (--rounds, 3), the paths interleaved in each
#           round; this VM's speed drifts by 10-20% from minute to minute.
#   machine the whole machine's busy share and CPU per request (/proc/stat) in the peak
#           direct and proxied runs, and from them the budget: how much CPU per request a
#           proxy may add and still keep 60% of direct, on this machine, in this run.
# Targets: proxied peak >= 60% of direct requests/s; proxied p99 - direct p99 < 1 ms at
# the paced rate. Checked on the proxy without a log, like for like with the references;
# the logging proxy's figures are printed next to them, and nginx's with the same log.
# Output: a summary on stdout and in Benchmarks/data/proxy-results.txt; wrk's output in
# Benchmarks/data/proxy-*.txt.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DATA="$HERE/data"
BUILD=1
DURATION=5
CONNS=32
ROUNDS=3
STRICT=0
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --duration) DURATION="${2:?--duration needs seconds}"; shift 2 ;;
        --connections) CONNS="${2:?--connections needs a number}"; shift 2 ;;
        --rounds) ROUNDS="${2:?--rounds needs a number}"; shift 2 ;;
        --strict) STRICT=1; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "proxy.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" = 0 ] || { echo "proxy.sh: needs root (network namespaces, iptables)" >&2; exit 2; }
for tool in ip iptables-restore wrk nginx; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "proxy.sh: $tool is missing" >&2; exit 2; }
done
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
mkdir -p "$DATA"
rm -f "$DATA"/proxy-*.txt

NAME=proxy.sh
. "$HERE/scene.sh"
scene_binary proxy-build.log
scene_start hibench 198.18.4 hb
# The seed article's rules, generated and installed by hoptrace's own rule model.
"$BIN" intercept install --netns "$POD" --preset istio-2018 >/dev/null
# Port 81 to the second proxy (15002), the one that writes an access log. (Its own
# connections to 127.0.0.1:81 leave as uid 1337, which the preset's OUTPUT rules exempt.)
ip netns exec "$POD" iptables -t nat -I PREROUTING 1 -p tcp --dport 81 -j REDIRECT --to-ports 15002

scene_app 80 81 8080
# A reference L7 proxy in C: a second nginx (one worker) on :8081 proxying to 127.0.0.1:8080
# with kept-alive upstream connections: what a mature proxy achieves on this machine. On :8082
# the same, doing what hoptrace's proxy does besides: a request id sent upstream, and one JSON
# access-log line per request, buffered (32 KiB or 20 ms, as hoptrace batches its lines).
mkdir -p "$TMP/ref"
cat > "$TMP/ref/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/ref/nginx.pid;
error_log $TMP/ref/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $TMP/ref/body;
    proxy_temp_path $TMP/ref/proxy;
    fastcgi_temp_path $TMP/ref/fastcgi;
    uwsgi_temp_path $TMP/ref/uwsgi;
    scgi_temp_path $TMP/ref/scgi;
    upstream app { server 127.0.0.1:8080; keepalive 64; }
    server {
        listen 8081;
        location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
    log_format hop escape=json '{"time":"\$time_iso8601","requestId":"\$request_id",'
        '"downstream":{"client":"\$remote_addr:\$remote_port","local":"\$server_addr:\$server_port"},'
        '"upstream":"\$upstream_addr","method":"\$request_method","target":"\$request_uri","host":"\$host",'
        '"status":\$status,"requestBytes":\$request_length,"responseBytes":\$body_bytes_sent,'
        '"durationMs":\$request_time,"upstreamConnectMs":"\$upstream_connect_time"}';
    server {
        listen 8082;
        access_log $TMP/ref/access.jsonl hop buffer=32k flush=20ms;
        location / {
            proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_set_header x-request-id \$request_id; proxy_set_header x-forwarded-proto http;
        }
    }
}
EOF
ip netns exec "$POD" "$NGINX" -c "$TMP/ref/nginx.conf" -e "$TMP/ref/error.log" > "$TMP/ref/nginx.out" 2>&1 &
PIDS+=($!)
REF_PID=$!
# A second reference, HAProxy, the usual yardstick for an L7 proxy's cost per request: HTTP
# mode, one thread per core (as many as hoptrace's event loops), kept-alive upstream
# connections, no log.
HAPROXY="$(command -v haproxy || { [ -x /usr/sbin/haproxy ] && echo /usr/sbin/haproxy; })"
HAP_PID=
if [ -n "$HAPROXY" ]; then
    mkdir -p "$TMP/hap"
    cat > "$TMP/hap/haproxy.cfg" <<EOF
global
    nbthread $(nproc)
    maxconn 4096
    pidfile $TMP/hap/haproxy.pid
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    http-reuse always
frontend fe
    bind :8083
    default_backend app
backend app
    server app 127.0.0.1:8080
EOF
    ip netns exec "$POD" "$HAPROXY" -db -f "$TMP/hap/haproxy.cfg" > "$TMP/hap/haproxy.out" 2>&1 &
    HAP_PID=$!
    PIDS+=($!)
fi
# The floor: the least an HTTP-aware proxy can do per request (see floor-relay.c).
FLOOR_PID=
CC="$(command -v cc || command -v gcc || true)"
if [ -n "$CC" ] && "$CC" -O2 -pthread -o "$TMP/floor-relay" "$HERE/floor-relay.c" 2> "$TMP/floor-build.log"; then
    ip netns exec "$POD" "$TMP/floor-relay" 8084 8080 "$(nproc)" > "$TMP/floor.out" 2>&1 &
    FLOOR_PID=$!
    PIDS+=($!)
else
    echo "proxy.sh: no C compiler (apt-get install gcc) or floor-relay.c did not build, the floor is skipped: $(head -2 "$TMP/floor-build.log" 2>/dev/null | tr '\n' ' ')" >&2
fi
NOLOG_ARGS=(--no-access-log)
case " ${PROXY_ARGS:-} " in *" --no-access-log "*) NOLOG_ARGS=() ;; esac
ip netns exec "$POD" "$BIN" proxy "${NOLOG_ARGS[@]}" ${PROXY_ARGS:-} > "$TMP/proxy.out" 2> "$TMP/proxy.err" &
PIDS+=($!)
PROXY_PID=$!
LOG_ARGS=(--access-log "$TMP/access.jsonl")
case " ${PROXY_ARGS:-} " in *" --no-access-log "*) LOG_ARGS=() ;; esac
ip netns exec "$POD" "$BIN" proxy --port 15002 "${LOG_ARGS[@]}" ${PROXY_ARGS:-} > "$TMP/logged.out" 2> "$TMP/logged.err" &
PIDS+=($!)
LOGGED_PID=$!

ready=0
for _ in $(seq 1 100); do
    if grep -q "listening on" "$TMP/proxy.err" 2>/dev/null && grep -q "listening on" "$TMP/logged.err" 2>/dev/null \
        && ip netns exec "$C" wrk -t1 -c1 -d1s http://198.18.4.2:8080/ >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.1
done
[ "$ready" = 1 ] || { echo "proxy.sh: nginx or the proxies did not start"; cat "$TMP/proxy.err" "$TMP/logged.err" "$TMP/nginx-error.log" 2>/dev/null; exit 2; }

DIRECT=http://198.18.4.2:8080/
PROXIED=http://198.18.4.2:80/
LOGGED=http://198.18.4.2:81/
REFERENCE=http://198.18.4.2:8081/
REFERENCE_LOGGING=http://198.18.4.2:8082/
HAPROXY_URL=http://198.18.4.2:8083/
FLOOR_URL=http://198.18.4.2:8084/
if [ -n "$FLOOR_PID" ] && ! ip netns exec "$C" wrk -t1 -c1 -d1s "$FLOOR_URL" 2>/dev/null | grep -q "requests in"; then
    echo "proxy.sh: floor-relay did not answer on :8084, floor skipped: $(head -3 "$TMP/floor.out" | tr '\n' ' ')" >&2
    FLOOR_PID=
fi
if [ -n "$HAP_PID" ] && ! ip netns exec "$C" wrk -t1 -c1 -d1s "$HAPROXY_URL" 2>/dev/null | grep -q "requests in"; then
    echo "proxy.sh: HAProxy did not answer on :8083, reference skipped: $(head -3 "$TMP/hap/haproxy.out" | tr '\n' ' ')" >&2
    HAP_PID=
fi

# wrk's "Requests/sec" and its 99% latency in ms.
rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
p99ms() {
    awk '$1 == "99%" {
        v = $2; unit = v; gsub(/[0-9.]/, "", unit); gsub(/[a-z]/, "", v);
        if (unit == "us") v = v / 1000; else if (unit == "s") v = v * 1000; else if (unit == "m") v = v * 60000;
        printf "%.3f", v }' "$1"
}
# CPU time (user+system, clock ticks) of a process and its threads, and of its children.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
tree_ticks() { local t; t=$(ticks "$1"); for c in $(pgrep -P "$1"); do t=$(( t + $(ticks "$c") )); done; echo "$t"; }
requests() { awk '/requests in/ {print $1}' "$1"; }
# The whole machine's busy and idle clock ticks (all cores; iowait counts as idle; time the
# hypervisor took, steal, is neither: it was not the machine's to use).
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat; }
# "busy% us-per-request" of the whole machine between two machine_ticks snapshots.
machine_use() { # busy0 idle0 busy1 idle1 requests
    awk -v b="$(( $3 - $1 ))" -v i="$(( $4 - $2 ))" -v n="$5" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (n > 0 && b + i > 0) printf "%.1f %.1f", 100 * b / (b + i), b * 1e6 / hz / n; else print "? ?" }'
}
# Microseconds of CPU per request: ticks x (1e6 / CLK_TCK) / requests.
cpu_us() { awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "?" }'; }
errors() { awk '/Non-2xx|Socket errors/ {print}' "$1" | tr '\n' ' '; }
# 100 x part / whole, printed with the format given (default one decimal).
percent() { awk -v p="$1" -v d="$2" -v f="${3:-%.1f}" 'BEGIN { printf f, 100 * p / d }'; }
# a - b, in ms with three decimals.
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
# Of the lines "value round" in a file, the round of the median value.
median_round() { median_of "$1" 2; }
# Of the lines "value round" in a file, field N (1: the value, 2: the round) of the median line.
median_of() { sort -g "$1" | awk -v f="$2" '{ v[NR] = $f } END { print v[int((NR + 1) / 2)] }'; }
# Copies round N's wrk outputs of the given runs to the names the summary reads.
keep_round() { local n="$1" f; shift; for f in "$@"; do cp "$DATA/proxy-$f-$n.txt" "$DATA/proxy-$f.txt"; done; }

run() { # name url wrk-args…
    local name="$1" url="$2"; shift 2
    ip netns exec "$C" wrk "$@" --latency "$url" > "$DATA/proxy-$name.txt" 2>&1
}

# One peak run of round $r: wrk on URL into proxy-peak-NAME-$r.txt, the whole machine's use
# into $TMP/machine-NAME-$r and, given a PID, that process tree's CPU per request into
# $TMP/cpu-NAME-$r.
peak_run() { # name url [pid]
    local name="$1" url="$2" pid="${3:-}" t0=0 b0 i0 b1 i1
    local out="$DATA/proxy-peak-$name-$r.txt"
    if [ -n "$pid" ]; then t0=$(tree_ticks "$pid"); fi
    read -r b0 i0 <<< "$(machine_ticks)"
    run "peak-$name-$r" "$url" -t2 -c"$CONNS" -d"${DURATION}s"
    read -r b1 i1 <<< "$(machine_ticks)"
    machine_use "$b0" "$i0" "$b1" "$i1" "$(requests "$out")" > "$TMP/machine-$name-$r"
    if [ -n "$pid" ]; then cpu_us $(( $(tree_ticks "$pid") - t0 )) "$(requests "$out")" > "$TMP/cpu-$name-$r"; fi
}

# Warm up the direct path and both proxies (connections, caches, page faults).
run warmup-direct "$DIRECT" -t2 -c"$CONNS" -d1s
run warmup-proxied "$PROXIED" -t2 -c"$CONNS" -d1s
run warmup-logged "$LOGGED" -t2 -c"$CONNS" -d1s

# Peak runs, ROUNDS times, all the paths interleaved so that the machine's drift hits
# them alike; the round whose proxied/direct ratio is the median one is reported.
ROUND_LINES=()
for r in $(seq 1 "$ROUNDS"); do
    peak_run direct "$DIRECT"
    if [ -n "${PERF_OUT:-}" ] && [ "$r" = 1 ]; then
        perf record -g -o "$PERF_OUT" -p "$PROXY_PID" -- sleep "$(( DURATION > 2 ? DURATION - 1 : 1 ))" > /dev/null 2>&1 &
        PERF_PID=$!
    fi
    peak_run proxied "$PROXIED" "$PROXY_PID"
    if [ -n "${PERF_PID:-}" ]; then wait "$PERF_PID"; PERF_PID=; fi
    peak_run logged "$LOGGED" "$LOGGED_PID"
    peak_run nginx-proxy "$REFERENCE" "$REF_PID"
    peak_run nginx-proxy-logging "$REFERENCE_LOGGING" "$REF_PID"
    HAP_ROUND=
    if [ -n "$HAP_PID" ]; then
        peak_run haproxy "$HAPROXY_URL" "$HAP_PID"
        h=$(rps "$DATA/proxy-peak-haproxy-$r.txt")
        hcpu=$(cat "$TMP/cpu-haproxy-$r")
    fi
    FLOOR_ROUND=
    if [ -n "$FLOOR_PID" ]; then
        peak_run floor "$FLOOR_URL" "$FLOOR_PID"
    fi
    d=$(rps "$DATA/proxy-peak-direct-$r.txt"); p=$(rps "$DATA/proxy-peak-proxied-$r.txt"); n=$(rps "$DATA/proxy-peak-nginx-proxy-$r.txt")
    if [ -n "$FLOOR_PID" ]; then
        f=$(rps "$DATA/proxy-peak-floor-$r.txt")
        echo "$(percent "$f" "$d") $r" >> "$TMP/floor-ratios"
        FLOOR_ROUND=$(printf '; floor %.0f/s = %s%%, %s us' "$f" "$(percent "$f" "$d")" "$(cat "$TMP/cpu-floor-$r")")
    fi
    if [ -n "$HAP_PID" ]; then
        echo "$(percent "$h" "$d") $r" >> "$TMP/haproxy-ratios"
        HAP_ROUND=$(printf '; HAProxy %.0f/s = %s%%, %s us' "$h" "$(percent "$h" "$d")" "$hcpu")
    fi
    nl=$(rps "$DATA/proxy-peak-nginx-proxy-logging-$r.txt")
    ratio=$(percent "$p" "$d"); nratio=$(percent "$n" "$d"); nlratio=$(percent "$nl" "$d")
    echo "$ratio $r" >> "$TMP/ratios"
    echo "$nlratio $r" >> "$TMP/logging-ratios"
    l=$(rps "$DATA/proxy-peak-logged-$r.txt"); lratio=$(percent "$l" "$d")
    echo "$lratio $r" >> "$TMP/logged-ratios"
    read -r dbusy dmach < "$TMP/machine-direct-$r"; read -r pbusy pmach < "$TMP/machine-proxied-$r"
    read -r lbusy lmach < "$TMP/machine-logged-$r"
    ROUND_LINES+=("$(printf '  peak round %d: direct %.0f/s (machine %s%% busy, %s us/request); proxied %.0f/s = %s%%, proxy %s us CPU/request (machine %s%% busy, %s us/request); with access log %.0f/s = %s%%, %s us (machine %s%% busy, %s us/request); nginx as proxy %.0f/s = %s%%, %s us; nginx as proxy with access log %.0f/s = %s%%, %s us' \
        "$r" "$d" "$dbusy" "$dmach" "$p" "$ratio" "$(cat "$TMP/cpu-proxied-$r")" "$pbusy" "$pmach" \
        "$l" "$lratio" "$(cat "$TMP/cpu-logged-$r")" "$lbusy" "$lmach" "$n" "$nratio" "$(cat "$TMP/cpu-nginx-proxy-$r")" \
        "$nl" "$nlratio" "$(cat "$TMP/cpu-nginx-proxy-logging-$r")")$HAP_ROUND$FLOOR_ROUND")
done
MID=$(median_round "$TMP/ratios")
keep_round "$MID" peak-direct peak-proxied peak-nginx-proxy
LMID=$(median_round "$TMP/logging-ratios")
LOGGING_RATIO=$(percent "$(rps "$DATA/proxy-peak-nginx-proxy-logging-$LMID.txt")" "$(rps "$DATA/proxy-peak-direct-$LMID.txt")")
OMID=$(median_round "$TMP/logged-ratios")
keep_round "$OMID" peak-logged
LOGGED_RATIO=$(percent "$(rps "$DATA/proxy-peak-logged-$OMID.txt")" "$(rps "$DATA/proxy-peak-direct-$OMID.txt")")
L_CPU=$(cat "$TMP/cpu-logged-$OMID")
read -r LD_BUSY LD_MACH < "$TMP/machine-direct-$OMID"; read -r L_BUSY L_MACH < "$TMP/machine-logged-$OMID"
P_CPU=$(cat "$TMP/cpu-proxied-$MID"); R_CPU=$(cat "$TMP/cpu-nginx-proxy-$MID")
if [ -n "$HAP_PID" ]; then
    HMID=$(median_round "$TMP/haproxy-ratios")
    HAP_LINE="reference, HAProxy ($(nproc) threads) as the proxy: $(percent "$(rps "$DATA/proxy-peak-haproxy-$HMID.txt")" "$(rps "$DATA/proxy-peak-direct-$HMID.txt")")% of direct at peak (median round), $(cat "$TMP/cpu-haproxy-$HMID") us CPU/request"
else
    HAP_LINE="reference, HAProxy: not installed (apt-get install haproxy), skipped"
fi
if [ -n "$FLOOR_PID" ]; then
    FMID=$(median_round "$TMP/floor-ratios")
    FLOOR_LINE="ceiling, floor-relay.c (headers added, nothing else): $(percent "$(rps "$DATA/proxy-peak-floor-$FMID.txt")" "$(rps "$DATA/proxy-peak-direct-$FMID.txt")")% of direct at peak (median round; rounds: $(sort -k2 -n "$TMP/floor-ratios" | awk '{printf "%s%s%%", (NR > 1 ? ", " : ""), $1}')), $(cat "$TMP/cpu-floor-$FMID") us CPU/request: the most a proxy could keep here in these minutes"
else
    FLOOR_LINE="ceiling, floor-relay.c: skipped (no C compiler)"
fi
read -r D_BUSY D_MACH < "$TMP/machine-direct-$MID"; read -r P_BUSY P_MACH < "$TMP/machine-proxied-$MID"
R_RPS=$(rps "$DATA/proxy-peak-nginx-proxy.txt"); R_P99=$(p99ms "$DATA/proxy-peak-nginx-proxy.txt")
D_RPS=$(rps "$DATA/proxy-peak-direct.txt"); P_RPS=$(rps "$DATA/proxy-peak-proxied.txt")
D_P99=$(p99ms "$DATA/proxy-peak-direct.txt"); P_P99=$(p99ms "$DATA/proxy-peak-proxied.txt")

# Paced runs at half the proxy's peak (of the median round): each connection sends a
# request 2 ms after the previous response, so N connections offer about N x 500
# requests/s. ROUNDS times too; the round with the median p99 added is reported.
HALF=$(awk -v r="$P_RPS" 'BEGIN { printf "%d", r / 2 }')
PACED_CONNS=$(awk -v r="$HALF" 'BEGIN { c = int(r * 0.002 + 0.5); if (c < 1) c = 1; print c }')
echo 'function delay() return 2 end' > "$TMP/pace.lua"
for r in $(seq 1 "$ROUNDS"); do
    run "paced-direct-$r" "$DIRECT" -t2 -c"$PACED_CONNS" -d"${DURATION}s" -s "$TMP/pace.lua"
    run "paced-proxied-$r" "$PROXIED" -t2 -c"$PACED_CONNS" -d"${DURATION}s" -s "$TMP/pace.lua"
    run "paced-logged-$r" "$LOGGED" -t2 -c"$PACED_CONNS" -d"${DURATION}s" -s "$TMP/pace.lua"
    run "paced-nginx-proxy-$r" "$REFERENCE" -t2 -c"$PACED_CONNS" -d"${DURATION}s" -s "$TMP/pace.lua"
    pd=$(p99ms "$DATA/proxy-paced-direct-$r.txt"); pp=$(p99ms "$DATA/proxy-paced-proxied-$r.txt"); pn=$(p99ms "$DATA/proxy-paced-nginx-proxy-$r.txt")
    pl=$(p99ms "$DATA/proxy-paced-logged-$r.txt"); ladded=$(minus "$pl" "$pd")
    echo "$ladded $r" >> "$TMP/logged-added"
    added=$(minus "$pp" "$pd")
    echo "$added $r" >> "$TMP/added"
    ROUND_LINES+=("$(printf '  paced round %d: p99 direct %s ms; proxied %s ms (adds %s); with access log %s ms (adds %s); nginx as proxy %s ms' "$r" "$pd" "$pp" "$added" "$pl" "$ladded" "$pn")")
done
PMID=$(median_round "$TMP/added")
keep_round "$PMID" paced-direct paced-proxied paced-nginx-proxy
LOGGED_ADDED=$(median_of "$TMP/logged-added" 1)
PR_RPS=$(rps "$DATA/proxy-paced-nginx-proxy.txt"); PR_P99=$(p99ms "$DATA/proxy-paced-nginx-proxy.txt")
PD_RPS=$(rps "$DATA/proxy-paced-direct.txt"); PP_RPS=$(rps "$DATA/proxy-paced-proxied.txt")
PD_P99=$(p99ms "$DATA/proxy-paced-direct.txt"); PP_P99=$(p99ms "$DATA/proxy-paced-proxied.txt")

LOGLINES=$(if [ -f "$TMP/access.jsonl" ]; then wc -l < "$TMP/access.jsonl"; else echo "none (--no-access-log)"; fi)
RATIO=$(percent "$P_RPS" "$D_RPS" %.0f)
REF_RATIO=$(percent "$R_RPS" "$D_RPS" %.0f)
REF_ADDED=$(minus "$PR_P99" "$PD_P99")
ADDED=$(minus "$PP_P99" "$PD_P99")
V1=$(awk -v r="$RATIO" 'BEGIN { print (r >= 60) ? "PASS" : "MISS" }')
V2=$(awk -v a="$ADDED" 'BEGIN { print (a < 1.0) ? "PASS" : "MISS" }')
PROXY_RSS=$(awk '/VmHWM/ {print $2 " " $3}' "/proc/$PROXY_PID/status" 2>/dev/null)
LOGGED_RSS=$(awk '/VmHWM/ {print $2 " " $3}' "/proc/$LOGGED_PID/status" 2>/dev/null)

{
    echo "hoptrace proxy vs direct (nginx, 1 worker), $(nproc) cores, wrk keep-alive, ${DURATION}s per run, $ROUNDS rounds (median shown)"
    echo "binary: $BIN"
    echo
    printf '%-34s %12s %10s\n' "run" "requests/s" "p99 ms"
    printf '%-34s %12s %10s\n' "peak direct (-t2 -c$CONNS)" "$D_RPS" "$D_P99"
    printf '%-34s %12s %10s\n' "peak proxied (-t2 -c$CONNS)" "$P_RPS" "$P_P99"
    printf '%-34s %12s %10s\n' "peak proxied, access log (median)" "$(rps "$DATA/proxy-peak-logged.txt")" "$(p99ms "$DATA/proxy-peak-logged.txt")"
    printf '%-34s %12s %10s\n' "peak nginx as proxy (reference)" "$R_RPS" "$R_P99"
    printf '%-34s %12s %10s\n' "paced direct (-c$PACED_CONNS, 2 ms delay)" "$PD_RPS" "$PD_P99"
    printf '%-34s %12s %10s\n' "paced proxied (-c$PACED_CONNS, 2 ms delay)" "$PP_RPS" "$PP_P99"
    printf '%-34s %12s %10s\n' "paced nginx as proxy (reference)" "$PR_RPS" "$PR_P99"
    echo
    echo "peak: proxied keeps ${RATIO}% of direct requests/s (target >= 60%): $V1"
    echo "paced at ~half the proxy's peak ($HALF/s offered): proxy adds ${ADDED} ms at p99 (target < 1 ms): $V2"
    echo "the proxy writing its JSON access log (to $TMP, the disk here): ${LOGGED_RATIO}% of direct at peak, ${L_CPU} us CPU/request (median round); adds ${LOGGED_ADDED} ms at p99 paced (median)"
    echo "reference, nginx as the proxy: ${REF_RATIO}% of direct at peak, adds ${REF_ADDED} ms at p99 paced"
    echo "reference, nginx as the proxy with a request id and a buffered JSON access log: ${LOGGING_RATIO}% of direct at peak (median round)"
    echo "$HAP_LINE"
    echo "$FLOOR_LINE"
    echo "CPU per request at peak (user+system, incl. the kernel's TCP work): hoptrace proxy ${P_CPU} us (${L_CPU} us with its access log), nginx as proxy ${R_CPU} us"
    # The budget: at 60% of direct, with the machine as busy as in the proxied run, what is
    # left per request for the proxy once wrk and the app have had what they use direct.
    awk -v d="$D_RPS" -v busy="$P_BUSY" -v cores="$(nproc)" -v dm="$D_MACH" -v pm="$P_MACH" -v db="$D_BUSY" 'BEGIN {
        if (busy == "?" || dm == "?") exit
        per = cores * 1e6 * busy / 100 / (0.6 * d)
        printf "whole machine: direct %.1f us/request at %s%% busy%s; proxied %.1f us/request at %s%% busy\n", dm, db, (db < 90 ? " (not CPU-bound: the app'"'"'s one worker is)" : ""), pm, busy
        printf "  budget: at 60%% of direct (%.0f/s) and %s%% busy the machine has %.1f us/request; wrk and the app take %.1f of it direct,\n", 0.6 * d, busy, per, dm
        printf "  so a proxy may add %.1f us/request; the proxied path adds %.1f (the proxy'"'"'s own CPU and the kernel work it causes)\n", per - dm, pm - dm
    }'
    awk -v d="$LD_MACH" -v l="$L_MACH" -v busy="$L_BUSY" 'BEGIN {
        if (d == "?" || l == "?") exit
        printf "  with the access log the proxied path adds %.1f us/request (machine %s%% busy; the log'"'"'s writes and their writeback to disk included)\n", l - d, busy
    }'
    echo "access-log lines written: $LOGLINES; peak RSS: proxy ${PROXY_RSS:-?}, proxy with access log ${LOGGED_RSS:-?}"
    echo "every round:"
    printf '%s\n' "${ROUND_LINES[@]}"
    for f in "$DATA"/proxy-peak-*-[0-9]*.txt "$DATA"/proxy-paced-*-[0-9]*.txt; do
        e=$(errors "$f"); [ -n "$e" ] && echo "  $(basename "$f" .txt): $e"
    done
} | tee "$DATA/proxy-results.txt"

if [ "$STRICT" = 1 ] && { [ "$V1" = MISS ] || [ "$V2" = MISS ]; }; then exit 1; fi
exit 0
