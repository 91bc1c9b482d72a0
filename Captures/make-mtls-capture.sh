#!/usr/bin/env bash
# make-mtls-capture.sh — a small mTLS sidecar capture from real peers: the pod (namespace
# hoptls-pod-PID, 198.18.6.1) has the istio-2018 rules (`hoptrace intercept install`),
# HAProxy on :15001 as uid/gid 1337 terminating TLS with `verify required` (the client must
# present a certificate signed by the capture's CA) and forwarding plaintext over its pool
# (`http-reuse always`) to nginx on 127.0.0.1:80; the client (namespace hoptls-cli-PID,
# 198.18.6.2) runs curl with a client certificate against 198.18.6.1:80, several requests per
# connection, under TLS 1.3 and TLS 1.2, GETs and a PUT. tcpdump -i any in the pod writes the
# capture: each request appears encrypted (client → pod:80) and in plaintext (HAProxy → nginx
# on lo). Certificates are made with openssl for the run and thrown away. HAProxy's log (stdout)
# is kept beside the capture as OUT.haproxy.log: its ground truth.
#
# MTLS_HTTP2=1 makes the HTTP/2 variant (default OUT Captures/mtls-h2-haproxy.pcap): HAProxy
# offers h2 first, curl --http2 offers h2 and http/1.1 (so under TLS 1.3 only the records can
# tell), three requests on one connection, three multiplexed at once (--parallel) on another,
# and a TLS 1.2 connection whose ServerHello names h2 in clear; HAProxy still forwards HTTP/1.1.
#
# usage: sudo Captures/make-mtls-capture.sh [OUT.pcap]   (default Captures/mtls-haproxy.pcap)
# Needs root; Debian packages haproxy, nginx, curl, openssl, tcpdump, iproute2, iptables; a
# hoptrace binary (HOPTRACE_BIN, else .build/debug or .build/release). Every process it starts
# is stopped by its PID; both namespaces are deleted on exit.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
H2="${MTLS_HTTP2:-0}"
if [ "$H2" = 1 ]; then OUT="${1:-$HERE/mtls-h2-haproxy.pcap}"; ALPN="h2,http/1.1"; else OUT="${1:-$HERE/mtls-haproxy.pcap}"; ALPN="istio-http/1.1,http/1.1"; fi
NS_S="hoptls-pod-$$"
NS_C="hoptls-cli-$$"
POD=198.18.6.1
CLI=198.18.6.2
die() { printf 'make-mtls-capture.sh: %s\n' "$*" >&2; exit 1; }
for c in haproxy:haproxy nginx:nginx curl:curl openssl:openssl tcpdump:tcpdump ip:iproute2 iptables:iptables; do
  command -v "${c%%:*}" >/dev/null 2>&1 || die "'${c%%:*}' not found: apt-get install -y ${c##*:}"
done
[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces)"
HOPTRACE=""
for c in "${HOPTRACE_BIN:-}" "$ROOT/.build/debug/hoptrace" "$ROOT/.build/release/hoptrace"; do
  if [ -n "$c" ] && [ -x "$c" ]; then HOPTRACE="$c"; break; fi
done
[ -n "$HOPTRACE" ] || die "no hoptrace binary for the rules: set HOPTRACE_BIN or swift build"

PIDS=()
WORK="$(mktemp -d /tmp/hoptls.XXXXXX)"
chmod 755 "$WORK"
cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  ip netns del "$NS_S" 2>/dev/null
  ip netns del "$NS_C" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^hoptls-(pod|cli)-/ {print $1}'); do ip netns del "$ns" 2>/dev/null || true; done

# Certificates: a CA, the pod's server certificate, the client's certificate.
cd "$WORK"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=hoptrace capture CA" -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=orders.default.svc.cluster.local" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:orders.default.svc.cluster.local,IP:%s\n' "$POD" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.crt 2>/dev/null
cat server.crt server.key > server.pem
openssl req -newkey rsa:2048 -nodes -subj "/CN=spiffe-client" -keyout client.key -out client.csr 2>/dev/null
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out client.crt 2>/dev/null
chmod 644 ./*.pem ./*.crt ./*.key
cd "$ROOT"

mkdir -p "$WORK/www" "$WORK/tmp"
printf '<html><body>orders</body></html>\n' > "$WORK/www/index.html"
head -c 20000 /dev/zero | tr '\0' 'o' > "$WORK/www/orders.json"
mkdir -p "$WORK/www/upload"
chmod -R a+rX "$WORK/www"
chmod 777 "$WORK/www/upload"
cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 64; }
http {
    log_format truth '\$time_iso8601 \$request_id \$http_x_request_id "\$request" \$status \$body_bytes_sent';
    access_log $WORK/nginx-access.log truth;
    default_type text/html;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    server {
        listen 80;
        root $WORK/www;
        location / { }
        # PUT stores the body (read whole before the answer, as an app that reads its request).
        location /upload/ { dav_methods PUT; create_full_put_path on; dav_access user:rw all:r; }
    }
}
NGINX
cat > "$WORK/haproxy.cfg" <<HAPROXY
global
    uid 1337
    gid 1337
    log stdout format raw local0
    nbthread 1
defaults
    mode http
    log global
    option http-keep-alive
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend sidecar
    bind :15001 ssl crt $WORK/server.pem ca-file $WORK/ca.pem verify required alpn $ALPN
    unique-id-format %{+X}o\ %ci:%cp_%rt
    unique-id-header X-Request-Id
    log-format "%ci:%cp %ID %{+Q}r %ST %sslv %[ssl_c_s_dn(cn)]"
    default_backend app
backend app
    http-reuse always
    server app 127.0.0.1:80
HAPROXY

ip netns add "$NS_S"
ip netns add "$NS_C"
ip link add hoptls-p0 netns "$NS_S" type veth peer name hoptls-c0 netns "$NS_C"
ip -n "$NS_S" addr add "$POD/24" dev hoptls-p0
ip -n "$NS_C" addr add "$CLI/24" dev hoptls-c0
for ns in "$NS_S" "$NS_C"; do ip -n "$ns" link set lo up; done
ip -n "$NS_S" link set hoptls-p0 up
ip -n "$NS_C" link set hoptls-c0 up
"$HOPTRACE" intercept install --netns "$NS_S" --preset istio-2018 >"$WORK/rules.out" 2>&1 || { cat "$WORK/rules.out" >&2; die "hoptrace intercept install failed"; }

ip netns exec "$NS_S" tcpdump -i any -n -s 0 -U -w "$OUT.tmp" tcp >"$WORK/tcpdump.log" 2>&1 &
PIDS+=($!)
ip netns exec "$NS_S" nginx -p "$WORK" -c "$WORK/nginx.conf" -g 'daemon off;' >"$WORK/nginx.out" 2>&1 &
PIDS+=($!)
ip netns exec "$NS_S" haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do
  ip netns exec "$NS_S" ss -ltnH "sport = :15001" | grep -q . && ip netns exec "$NS_S" ss -ltnH "sport = :80" | grep -q . && break
  sleep 0.1
done
sleep 1
URL="https://orders.default.svc.cluster.local:80"
CURL=(curl -sS --fail-with-body -o /dev/null --resolve "orders.default.svc.cluster.local:80:$POD"
      --cacert "$WORK/ca.pem" --cert "$WORK/client.crt" --key "$WORK/client.key" --http1.1)
if [ "$H2" = 1 ]; then
  CURL=("${CURL[@]/--http1.1/--http2}")
  # TLS 1.3: three requests one after another on one connection; then three at once,
  # multiplexed on another.
  ip netns exec "$NS_C" "${CURL[@]}" -o /dev/null "$URL/" -o /dev/null "$URL/orders.json" -o /dev/null "$URL/"
  ip netns exec "$NS_C" "${CURL[@]}" --no-progress-meter --parallel --parallel-max 3 \
    -o /dev/null "$URL/?p=1" -o /dev/null "$URL/orders.json?p=2" -o /dev/null "$URL/?p=3"
  # TLS 1.2: the server's choice (h2) is in clear.
  ip netns exec "$NS_C" "${CURL[@]}" --tls-max 1.2 -o /dev/null "$URL/" -o /dev/null "$URL/orders.json"
else
  # TLS 1.3: three requests on one connection, then a PUT and a large download on another.
  ip netns exec "$NS_C" "${CURL[@]}" -o /dev/null "$URL/" -o /dev/null "$URL/orders.json" -o /dev/null "$URL/"
  ip netns exec "$NS_C" "${CURL[@]}" -T "$WORK/www/orders.json" "$URL/upload/orders.json" --next "${CURL[@]:1}" "$URL/orders.json"
  # TLS 1.2: the client's certificate travels in clear.
  ip netns exec "$NS_C" "${CURL[@]}" --tls-max 1.2 -o /dev/null "$URL/" -o /dev/null "$URL/orders.json"
fi
# Without a client certificate the handshake is refused (verify required): no request gets through.
ip netns exec "$NS_C" curl -sS -o /dev/null --resolve "orders.default.svc.cluster.local:80:$POD" --cacert "$WORK/ca.pem" --http1.1 "$URL/" 2>/dev/null \
  && die "a client without a certificate got through"
sleep 1
kill -INT "${PIDS[0]}"
wait "${PIDS[0]}" 2>/dev/null || true
PIDS=("${PIDS[@]:1}")
mv "$OUT.tmp" "$OUT"
cp "$WORK/haproxy.log" "$OUT.haproxy.log"
cp "$WORK/nginx-access.log" "$OUT.nginx.log"
printf 'wrote %s (%s bytes); HAProxy log %s.haproxy.log\n' "$OUT" "$(stat -c %s "$OUT")" "$OUT" >&2
