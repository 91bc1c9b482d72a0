#!/usr/bin/env bash
# attack.sh — `hoptrace proxy` under attack, in network namespaces, with legitimate load beside.
#
# Usage: sudo Benchmarks/attack.sh [--no-build] [--quick]
#   --no-build   use the hoptrace already built in .build-bench (release)
#   --quick      smaller attacks (200 slowloris, 1,000 idle) and 5 s proxy timeouts, for a check
# Environment: HOPTRACE_BIN=/path/to/hoptrace attacks that binary (no build);
#   PROXY_ARGS="..." adds flags to `hoptrace proxy`.
#
# Scene: namespaces htatk-<pid>-client and htatk-<pid>-pod joined by a veth pair
# (198.18.77.1/24, 198.18.77.2/24); in the pod the 2018 Istio rules (hoptrace intercept),
# nginx on :80 (reached through the proxy) and :8080 (direct), the upstream that resets
# mid-body on 127.0.0.1:81 (Benchmarks/attack-clients.py reset-server), and `hoptrace proxy`
# as the sidecar with its access log, its default timeouts (--header-timeout 30,
# --keep-alive-timeout 30) and room for the attack (--max-connections 20000, 65,536 fds, or
# the hard limit when that is lower: a container without CAP_SYS_RESOURCE can't raise it; the
# limit the proxy got is in the summary's first line). Each proxied client holds two
# descriptors (its own and its upstream's), so at a 20,000 limit the 10,000 idle connections
# fill it: the proxy then closes the connections kept alive and idle the longest.
#
# Attacks, one after the other; legitimate load is wrk -t1 -c16 for 5 s, run before, during
# (once every attack connection is open) and after each:
#   slowloris  2,000 connections, each sending its request head a byte a second
#   idle       10,000 keep-alive connections: one GET each, then silence
#   reset      2,000 GETs (20 at a time) to an upstream that resets after 64 KiB of 1 MB
#   fd-limit   a second proxy started with 1,024 descriptors (ulimit -n; port 82 redirected
#              to it on 15002) while 1,500 clients each send it a GET and keep the connection;
#              the legitimate load goes through that proxy too
#   smuggle    each request-smuggling shape, through the proxy and straight to nginx
# Figures: legitimate req/s (and errors) before/during/after, how many attack connections the
# proxy closed and how long after their first byte (or their response), the status of each
# smuggling shape and the proxy's access-log error for it, the proxy's descriptors and RSS
# before and after (and after each attack), its CPU seconds during each attack.
# Output: a summary on stdout and in Benchmarks/data/attack-results.txt.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DATA="$HERE/data"
BUILD=1
SLOW=2000
IDLE=10000
HOLD=45
QUICK_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --quick) SLOW=200; IDLE=1000; HOLD=15; QUICK_ARGS=(--header-timeout 5 --keep-alive-timeout 5); shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "attack.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" = 0 ] || { echo "attack.sh: needs root (network namespaces, iptables in the pod namespace)" >&2; exit 2; }
for tool in ip wrk nginx python3; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "attack.sh: $tool is missing" >&2; exit 2; }
done
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
CLIENTS="$HERE/attack-clients.py"
mkdir -p "$DATA"

NAME=attack.sh
. "$HERE/scene.sh"
scene_binary attack-build.log
scene_start htatk 198.18.77 ha
for ns in "$C" "$POD"; do
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="10000 65000" net.core.somaxconn=4096
done
"$BIN" intercept install --netns "$POD" --preset istio-2018 >/dev/null
# Port 81 (the upstream that resets) to the proxy, as port 80 is; port 82 to the second proxy
# (15002), the one with few descriptors.
ip netns exec "$POD" iptables -t nat -I PREROUTING 1 -p tcp --dport 81 -j REDIRECT --to-ports 15001
ip netns exec "$POD" iptables -t nat -I PREROUTING 1 -p tcp --dport 82 -j REDIRECT --to-ports 15002

cat > "$TMP/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 32768; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_body_temp_path $TMP/body;
    proxy_temp_path $TMP/proxy;
    fastcgi_temp_path $TMP/fastcgi;
    uwsgi_temp_path $TMP/uwsgi;
    scgi_temp_path $TMP/scgi;
    server {
        listen 80 backlog=4096;
        listen 8080 backlog=4096;
        listen 82 backlog=4096;
        location / { default_type text/plain; return 200 "hello from nginx\n"; }
    }
}
EOF
ip netns exec "$POD" "$NGINX" -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" > "$TMP/nginx.out" 2>&1 &
PIDS+=($!)
ip netns exec "$POD" python3 "$CLIENTS" reset-server --host 127.0.0.1 --port 81 --max-seconds 3600 2> "$TMP/reset-server.err" &
PIDS+=($!)
ACCESS="$TMP/access.jsonl"
( ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec ip netns exec "$POD" "$BIN" proxy --access-log "$ACCESS" --max-connections 20000 "${QUICK_ARGS[@]}" ${PROXY_ARGS:-} ) \
    > "$TMP/proxy.out" 2> "$TMP/proxy.err" &
PIDS+=($!)
PROXY_PID=$!
( ulimit -n 1024; exec ip netns exec "$POD" "$BIN" proxy --port 15002 --access-log "$TMP/limited.jsonl" "${QUICK_ARGS[@]}" ${PROXY_ARGS:-} ) \
    > "$TMP/limited.out" 2> "$TMP/limited.err" &
PIDS+=($!)
LIMITED_PID=$!

ready=0
for _ in $(seq 1 100); do
    if grep -q "listening on" "$TMP/proxy.err" 2>/dev/null && grep -q "listening on" "$TMP/limited.err" 2>/dev/null && grep -q ready "$TMP/reset-server.err" 2>/dev/null \
        && ip netns exec "$C" wrk -t1 -c1 -d1s http://198.18.77.2:8080/ >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.1
done
[ "$ready" = 1 ] || { echo "attack.sh: nginx, the reset server or the proxy did not start"; cat "$TMP/proxy.err" "$TMP/nginx-error.log" 2>/dev/null; exit 2; }

PROXIED=http://198.18.77.2:80/
OUT="$DATA/attack-results.txt"
: > "$OUT"
say() { echo "$*" | tee -a "$OUT"; }

fds() { ls "/proc/$PROXY_PID/fd" 2>/dev/null | wc -l; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$PROXY_PID/status" 2>/dev/null; }
cpu() { awk '{print $14 + $15}' "/proc/$PROXY_PID/stat" 2>/dev/null; }
ticks="$(getconf CLK_TCK)"

# Legitimate load: wrk for $1 seconds on new connections; "req/s (errors)".
legit() {
    local text rps errors
    text="$(ip netns exec "$C" wrk -t1 -c16 -d"$1"s --timeout 5s "${TARGET:-$PROXIED}" 2>&1)"
    rps="$(echo "$text" | awk '/Requests\/sec/ {printf "%.0f", $2}')"
    errors="$(echo "$text" | awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}')"
    [ -n "$rps" ] || { echo "wrk failed: $(echo "$text" | tail -2 | tr '\n' ' ')"; return; }
    echo "$rps req/s (${errors} errors)"
}

# Runs an attack helper in the client namespace in the background; waits until it says ready.
ATTACK_PID=
start_attack() {
    local name="$1"; shift
    ip netns exec "$C" python3 "$CLIENTS" "$@" > "$TMP/$name.json" 2> "$TMP/$name.err" &
    ATTACK_PID=$!
    PIDS+=($ATTACK_PID)
    for _ in $(seq 1 1200); do
        grep -q ready "$TMP/$name.err" 2>/dev/null && return 0
        kill -0 "$ATTACK_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Prints the figures of a finished attack helper's JSON.
show() {
    python3 - "$TMP/$1.json" <<'EOF' | tee -a "$OUT"
import json, sys
d = json.load(open(sys.argv[1]))
if d["mode"] in ("slowloris", "idle"):
    since = "first byte" if d["mode"] == "slowloris" else "response"
    print("  attack: %d connections, %d opened, %d closed by the proxy, %d still open after %.0f s; statuses %s"
          % (d["connections"], d["opened"], d["closedByServer"], d["stillOpenAtEnd"], d["heldSeconds"], d["statuses"]))
    if d.get("answered") is not None:
        print("  answered: %d of %d" % (d["answered"], d["connections"]))
    if d["closedAfterSeconds"]:
        s = d["closedAfterSeconds"]
        print("  closed after their %s: min %.1f s, median %.1f s, max %.1f s" % (since, s["min"], s["median"], s["max"]))
elif d["mode"] == "reset":
    print("  attack: %d requests; outcomes %s" % (d["requests"], d["outcomes"]))
EOF
}

# One attack: legitimate load before, during (from ready on) and after; CPU, fds, RSS.
attack() {
    local name="$1"; shift
    local before during after cpu0 cpu1
    before="$(legit 5)"
    cpu0="$(cpu)"
    if ! start_attack "$name" "$@"; then
        say "$name: the attack did not start: $(tail -3 "$TMP/$name.err")"
        return
    fi
    during="$(legit 5)"
    wait "$ATTACK_PID"
    cpu1="$(cpu)"
    sleep 1
    after="$(legit 5)"
    say "$name: legitimate before $before | during $during | after $after"
    show "$name"
    say "  proxy: $(awk -v a="$cpu0" -v b="$cpu1" -v t="$ticks" 'BEGIN {printf "%.1f", (b - a) / t}') CPU s during the attack; $(fds) fds, $(rss) KiB RSS after"
}

legit 2 > /dev/null
sleep 1
FDS0="$(fds)"; RSS0="$(rss)"
say "hoptrace proxy under attack ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores; proxy: --max-connections 20000 ${QUICK_ARGS[*]} ${PROXY_ARGS:-}; $(awk '/Max open files/ {print $4}' "/proc/$PROXY_PID/limits") fds allowed)"
say "proxy before: $FDS0 fds, $RSS0 KiB RSS"

attack slowloris slowloris --host 198.18.77.2 --port 80 --count "$SLOW" --interval 1 --max-seconds "$HOLD"
say "  access log: $(grep -c '"error":"header_timeout"' "$ACCESS") lines with error header_timeout (status 408)"
: > "$ACCESS"

attack idle idle --host 198.18.77.2 --port 80 --count "$IDLE" --max-seconds "$HOLD" --open-concurrency 500
say "  proxy: $(grep -c 'Too many open files' "$TMP/proxy.err") 'cannot accept' lines; last 'closed … idle keep-alive connection(s) to make room' line: $(grep 'to make room' "$TMP/proxy.err" | tail -1 | sed 's/.*; //')"
: > "$ACCESS"

attack reset reset --host 198.18.77.2 --port 81 --count 2000 --concurrency 20 --max-seconds 10
say "  access log: $(grep '"target":"/reset"' "$ACCESS" | grep -o '"error":"[a-z_]*"' | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
: > "$ACCESS"

# The descriptor limit: the second proxy, with 1,024.
TARGET=http://198.18.77.2:82/
MAIN_PID="$PROXY_PID"; PROXY_PID="$LIMITED_PID"
say "limited proxy before: $(fds) fds, $(rss) KiB RSS, limit $(awk '/Max open files/ {print $4}' "/proc/$PROXY_PID/limits")"
attack fd-limit idle --host 198.18.77.2 --port 82 --count 1500 --max-seconds 8 --open-concurrency 500
say "  limited proxy: $(grep -c 'pausing 100 ms' "$TMP/limited.err") 'cannot accept … pausing 100 ms' lines while at the limit; $(grep -c '"status":503' "$TMP/limited.jsonl") 503s logged; idle closed to make room: $(grep 'to make room' "$TMP/limited.err" | tail -1 | sed 's/.*; //')"
sleep 2
say "limited proxy after: $(fds) fds, $(rss) KiB RSS"
TARGET=; PROXY_PID="$MAIN_PID"
: > "$ACCESS"

before="$(legit 5)"
ip netns exec "$C" python3 "$CLIENTS" smuggle --host 198.18.77.2 --port 80 --max-seconds 3 > "$TMP/smuggle.json"
ip netns exec "$C" python3 "$CLIENTS" smuggle --host 198.18.77.2 --port 8080 --max-seconds 3 > "$TMP/smuggle-direct.json"
sleep 0.5
after="$(legit 5)"
say "smuggle: legitimate before $before | after $after"
python3 - "$TMP/smuggle.json" "$TMP/smuggle-direct.json" "$ACCESS" <<'EOF' | tee -a "$OUT"
import json, sys
proxied = json.load(open(sys.argv[1]))["shapes"]
direct = {r["shape"]: r for r in json.load(open(sys.argv[2]))["shapes"]}
# The proxy's line for each shape, found by the client's address and port.
errors = {}
for line in open(sys.argv[3]):
    entry = json.loads(line)
    errors[(entry.get("downstream") or {}).get("client")] = "%s %s" % (entry["status"], entry["error"])
def outcome(r):
    return "%s%s" % (r["status"], ", closed" if r["closed"] else ", left open")
print("  %-24s %-20s %-32s %s" % ("shape", "through the proxy", "its access-log line", "nginx direct"))
for p in proxied:
    name = p["shape"]
    print("  %-24s %-20s %-32s %s" % (name, outcome(p), errors.get(p["client"], "none"), outcome(direct[name])))
EOF

sleep 2
legit 5 > /dev/null
sleep 3
say "proxy after: $(fds) fds, $(rss) KiB RSS (before: $FDS0 fds, $RSS0 KiB)"
say "(figures in $OUT)"
