# scene.sh — sourced by the benchmark scripts that run a scene in network namespaces
# (proxy.sh, attack.sh, live-load.sh): the hoptrace binary, a client and a pod namespace joined by a veth
# pair, the processes started in them, and the cleanup (also of an earlier run that crashed).
# The sourcing script sets NAME (for messages), ROOT, DATA and BUILD (0: no build) first.

# Sets BIN: $HOPTRACE_BIN, or the release build in .build-bench (built unless BUILD=0; the
# build's output in $DATA/$1).
scene_binary() {
    if [ -n "${HOPTRACE_BIN:-}" ]; then
        BIN="$HOPTRACE_BIN"
    else
        BIN="$ROOT/.build-bench/release/hoptrace"
        if [ "$BUILD" = 1 ]; then
            echo "building hoptrace (release, .build-bench)…" >&2
            (cd "$ROOT" && swift build -c release --static-swift-stdlib --product hoptrace --scratch-path .build-bench > "$DATA/$1" 2>&1) \
                || { echo "$NAME: build failed, see $DATA/$1" >&2; exit 2; }
        fi
    fi
    [ -x "$BIN" ] || { echo "$NAME: no hoptrace binary at $BIN" >&2; exit 2; }
}

# scene_start PREFIX NET VETH: namespaces PREFIX-<pid>-client (C) and PREFIX-<pid>-pod (POD),
# addresses NET.1/24 and NET.2/24 on a veth pair named VETH<n>c / VETH<n>p, loopback up; a
# temporary folder TMP; PIDS, the processes to stop on exit. Stale namespaces of PREFIX whose
# script is gone are removed first.
scene_start() {
    local prefix="$1" net="$2" veth="$3"
    P="$prefix-$$"
    C="$P-client"; POD="$P-pod"
    TMP="$(mktemp -d "/tmp/$prefix.XXXXXX")"
    chmod 755 "$TMP"
    PIDS=()
    trap scene_cleanup EXIT INT TERM
    for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix-"); do
        owner="$(echo "$ns" | cut -d- -f2)"
        if ! kill -0 "$owner" 2>/dev/null; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
            ip netns del "$ns" 2>/dev/null
        fi
    done
    ip netns add "$C" && ip netns add "$POD" || { echo "$NAME: cannot create namespaces" >&2; exit 2; }
    local vc="$veth$(( $$ % 100000 ))c" vp="$veth$(( $$ % 100000 ))p"
    ip link add "$vc" netns "$C" type veth peer name "$vp" netns "$POD"
    ip -n "$C" addr add "$net.1/24" dev "$vc"
    ip -n "$POD" addr add "$net.2/24" dev "$vp"
    for ns in "$C" "$POD"; do ip -n "$ns" link set lo up; done
    ip -n "$C" link set "$vc" up
    ip -n "$POD" link set "$vp" up
}

scene_cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    sleep 0.3
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$C" 2>/dev/null
    ip netns del "$POD" 2>/dev/null
    rm -rf "$TMP"
}

# The app: nginx (one worker, no access log, keep-alive for the load) in $POD, answering
# "hello from nginx" on each port given; its pid joins PIDS. Sets NGINX when unset.
scene_app() {
    NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
    local listens="" p
    for p in "$@"; do listens="$listens        listen $p;
"; done
    cat > "$TMP/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $TMP/body;
    proxy_temp_path $TMP/proxy;
    fastcgi_temp_path $TMP/fastcgi;
    uwsgi_temp_path $TMP/uwsgi;
    scgi_temp_path $TMP/scgi;
    server {
${listens}        location / { default_type text/plain; return 200 "hello from nginx\n"; }
    }
}
EOF
    ip netns exec "$POD" "$NGINX" -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" > "$TMP/nginx.out" 2>&1 &
    PIDS+=($!)
}
