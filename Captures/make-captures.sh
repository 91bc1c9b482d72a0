#!/usr/bin/env bash
# Remake every saved test capture in Captures/ from real traffic, then the
# link types Linux cannot capture (converted from those real captures), then
# tshark's reference values in Captures/reference/.
#
# Needs root. Uses only network namespaces named htcap-*, veth pairs between
# them, loopback, 198.18.1.0/24 and ::1. Never touches the root namespace's
# interfaces or iptables: every ip/iptables/tcpdump/nginx/curl runs inside
# `ip netns exec htcap-...`. Every process it starts is stopped by its PID.
#
# usage: sudo Captures/make-captures.sh            (all captures + references)
#        sudo Captures/make-captures.sh --refs-only (only Captures/reference/)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$HERE"
TOOLS="$HERE/tools"
REF="$HERE/reference"
PY="${PYTHON:-python3}"   # the forwarder drops to uid 1337 after start: it must not need to read /root
REFS_ONLY=0
[[ "${1:-}" == "--refs-only" ]] && REFS_ONLY=1

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'make-captures.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools ----
need() { # need COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found: apt-get install -y $2"
}
need tshark tshark
need capinfos wireshark-common
need editcap wireshark-common
need tcpdump tcpdump
need "$PY" python3
if (( ! REFS_ONLY )); then
  [[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, iptables, packet capture)"
  need ip iproute2
  need ss iproute2
  need iptables iptables
  need nginx nginx-light
  need curl curl
  need ethtool ethtool
  need sysctl procps
fi

# --------------------------------------------------- namespaces/cleanup ----
PIDS=()
TMP=""
cleanup() {
  local rc=$?
  set +e
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null
  done
  for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^htcap-/ {print $1}'); do
    ip netns del "$ns"
  done
  [[ -n "$TMP" && -d "$TMP" ]] && rm -rf "$TMP"
  exit $rc
}

ns_exec() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

new_ns() { # new_ns NAME : fresh namespace, lo up, no IPv6 autoconf noise
  ip netns add "$1"
  ns_exec "$1" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1
  ns_exec "$1" sysctl -qw net.ipv6.conf.lo.disable_ipv6=0
  ip -n "$1" link set lo up
}

veth() { # veth NS1 IF1 ADDR1 NS2 IF2 ADDR2 (ADDR "-" = no address)
  ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
  ip -n "$1" link set "$2" up
  ip -n "$4" link set "$5" up
  [[ "$3" != - ]] && ip -n "$1" addr add "$3" dev "$2"
  [[ "$6" != - ]] && ip -n "$4" addr add "$6" dev "$5"
  return 0
}

wait_for() { # wait_for SECONDS COMMAND... : poll until the command succeeds
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < end )) || return 1
    sleep 0.1
  done
}

# tcp_listening NS PORT
tcp_listening() { ns_exec "$1" ss -Hltn "sport = :$2" | grep -q LISTEN; }

# start_nginx NS NAME LISTEN... : tiny nginx with its config in $TMP/NAME
start_nginx() {
  local ns=$1 name=$2; shift 2
  local d="$TMP/$name" listen=""
  mkdir -p "$d/html" "$d/tmp"
  for l in "$@"; do listen+="    listen $l;"$'\n'; done
  printf '<html><body>hoptrace test page</body></html>\n' >"$d/html/index.html"
  printf 'second resource on a keep-alive connection\n' >"$d/html/a.txt"
  { printf '<html><body><pre>\n'
    for i in $(seq 1 48); do printf 'line %02d of a page a little over three kilobytes long....\n' "$i"; done
    printf '</pre></body></html>\n'; } >"$d/html/big.html"
  chmod -R a+rX "$d"
  cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  types { text/html html; text/plain txt; }
  default_type application/octet-stream;
  keepalive_timeout 5s;
  server {
$listen    root $d/html;
  }
}
EOF
  ip netns exec "$ns" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf" 2>>"$d/error.log" &
  PIDS+=($!)
}

# running PID : true while PID runs (a zombie waiting to be reaped does not count)
running() { [[ -r /proc/$1/status ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# start_capture NS FILE IFACE [tcpdump args...] ; stop_capture
CAP_PID=""
start_capture() {
  local ns=$1 file=$2 iface=$3; shift 3
  rm -f "$file"
  local log="$TMP/tcpdump.$(basename "$file").log"
  ip netns exec "$ns" tcpdump -Z root -U -n -i "$iface" -w "$file" "$@" 2>"$log" &
  CAP_PID=$!
  PIDS+=("$CAP_PID")
  wait_for 10 grep -q "listening on" "$log" || die "tcpdump did not start: $(cat "$log")"
  sleep 0.3
}
stop_capture() {
  sleep 1                 # let the last FIN/ACKs arrive and be written (-U)
  kill -INT "$CAP_PID"
  # tcpdump flushes and exits on SIGINT; make sure it cannot hang the script
  local i
  for i in $(seq 50); do running "$CAP_PID" || break; sleep 0.1; done
  running "$CAP_PID" && kill -TERM "$CAP_PID"
  wait "$CAP_PID" || true
  CAP_PID=""
}

# curl with bounded time; the client side of every capture
CURL=(curl -sS --http1.1 -m 5 -o /dev/null -A "curl (hoptrace captures)")
curl_in() { local ns=$1; shift; ns_exec "$ns" "${CURL[@]}" "$@"; }

# save_ifindex NS CAPTURE-FILE : the namespace's interface numbers, which is
# what sll.ifindex / SLL2 interface_index in an `-i any` capture refer to
# (tcpdump -r prints names from the reading host, which are wrong here)
save_ifindex() {
  mkdir -p "$REF"
  ip -n "$1" -o link show | awk -F': ' '{split($2, n, "@"); print $1 "\t" n[1]}' \
    >"$REF/$(basename "$2").interfaces.tsv"
}

flush_neigh() { ip -n "$1" neigh flush all 2>/dev/null || true; }

# --------------------------------------------------------------- captures ----
make_captures() {
  TMP="$(mktemp -d /tmp/htcap.XXXXXX)"
  chmod 755 "$TMP"
  for ns in $(ip netns list | awk '$1 ~ /^htcap-/ {print $1}'); do
    say "removing stale namespace $ns"; ip netns del "$ns"
  done

  # ---- plain Ethernet pair: client 198.18.1.1 <-veth-> server 198.18.1.2
  local C=htcap-client S=htcap-server SIP=198.18.1.2
  new_ns $C; new_ns $S
  veth $C htc-eth0 198.18.1.1/24 $S hts-eth0 198.18.1.2/24
  start_nginx $S eth "$SIP:80"
  wait_for 10 tcp_listening $S 80 || die "nginx did not start in $S"

  ethernet_traffic() {
    curl_in $C "http://$SIP/"                               # GET
    curl_in $C -I "http://$SIP/"                            # HEAD
    curl_in $C "http://$SIP/" -o /dev/null "http://$SIP/a.txt"  # keep-alive pair
    curl_in $C "http://$SIP/missing" || true                # 404
  }

  say "ethernet.pcap"
  flush_neigh $C; flush_neigh $S
  start_capture $C "$OUT/ethernet.pcap" htc-eth0
  ethernet_traffic
  stop_capture

  say "ethernet-nano.pcap (nanosecond timestamps)"
  flush_neigh $C; flush_neigh $S
  start_capture $C "$OUT/ethernet-nano.pcap" htc-eth0 --time-stamp-precision=nano
  ethernet_traffic
  stop_capture

  say "sll2-any.pcap (tcpdump -i any, LINUX_SLL2)"
  flush_neigh $C; flush_neigh $S
  save_ifindex $C "$OUT/sll2-any.pcap"
  start_capture $C "$OUT/sll2-any.pcap" any
  curl_in $C "http://$SIP/"
  curl_in $C -I "http://$SIP/"
  curl_in $C "http://$SIP/missing" || true
  stop_capture

  say "sll-any.pcap (tcpdump -i any -y LINUX_SLL)"
  flush_neigh $C; flush_neigh $S
  save_ifindex $C "$OUT/sll-any.pcap"
  start_capture $C "$OUT/sll-any.pcap" any -y LINUX_SLL
  curl_in $C "http://$SIP/"
  curl_in $C -I "http://$SIP/"
  curl_in $C "http://$SIP/missing" || true
  stop_capture

  say "snaplen.pcap (-s 96)"
  flush_neigh $C; flush_neigh $S
  start_capture $C "$OUT/snaplen.pcap" htc-eth0 -s 96
  curl_in $C "http://$SIP/big.html"
  curl_in $C "http://$SIP/"
  stop_capture

  # ---- loopback: IPv6 ::1 and one IPv4 request over 127.0.0.1
  local L=htcap-lo
  new_ns $L
  start_nginx $L lo "80" "[::]:80"
  wait_for 10 tcp_listening $L 80 || die "nginx did not start in $L"
  say "loopback-ipv6.pcap"
  start_capture $L "$OUT/loopback-ipv6.pcap" lo
  curl_in $L -g "http://[::1]/"
  curl_in $L -g -I "http://[::1]/"
  curl_in $L -g "http://[::1]/" -o /dev/null "http://[::1]/a.txt"
  curl_in $L -g "http://[::1]/missing" || true
  curl_in $L "http://127.0.0.1/"
  stop_capture

  # ---- VLAN: the kernel here has no 802.1Q support (CONFIG_VLAN_8021Q unset),
  # so tools/vlan-wire.py tags and untags real frames in userspace.
  vlan_capture() { # vlan_capture FILE CLIENT-IP SERVER-IP TAG...
    local file=$1 cip=$2 sip=$3; shift 3
    local VC=htcap-vclient VS=htcap-vserver VW=htcap-vwire
    new_ns $VC; new_ns $VS; new_ns $VW
    veth $VC htc0 "$cip/24" $VW htc1 -
    veth $VS hts0 "$sip/24" $VW hts1 -
    veth $VW htw0 - $VW htw1 -
    ip -n $VW link set htw0 mtu 1600; ip -n $VW link set htw1 mtu 1600
    # the relay copies frames as bytes: endpoints must put real checksums on
    # them and send MTU-sized segments
    ns_exec $VC ethtool -K htc0 tx off tso off gso off >/dev/null 2>&1
    ns_exec $VS ethtool -K hts0 tx off tso off gso off >/dev/null 2>&1
    local tagargs=()
    for t in "$@"; do tagargs+=(--tag "$t"); done
    ip netns exec $VW "$PY" "$TOOLS/vlan-wire.py" --client-if htc1 --server-if hts1 \
      --trunk-client htw0 --trunk-server htw1 "${tagargs[@]}" --timeout 60 2>"$TMP/vlan-wire.log" &
    local WPID=$!
    PIDS+=("$WPID")
    wait_for 10 grep -q ready "$TMP/vlan-wire.log" || die "vlan-wire did not start: $(cat "$TMP/vlan-wire.log")"
    start_nginx $VS "vlan-$(basename "$file")" "$sip:80"
    wait_for 10 tcp_listening $VS 80 || die "nginx did not start in $VS"
    start_capture $VW "$file" htw0
    curl_in $VC "http://$sip/"
    curl_in $VC -I "http://$sip/"
    curl_in $VC "http://$sip/missing" || true
    stop_capture
    kill -TERM "$WPID"; wait "$WPID" || true
    ip netns del $VC; ip netns del $VS; ip netns del $VW
  }
  say "vlan.pcap (802.1Q id 100)"
  vlan_capture "$OUT/vlan.pcap" 198.18.1.101 198.18.1.102 0x8100:100
  say "qinq.pcap (802.1ad id 200 over 802.1Q id 100)"
  vlan_capture "$OUT/qinq.pcap" 198.18.1.201 198.18.1.202 0x88a8:200 0x8100:100

  # ---- nat-split: the outbound sidecar path
  # pod 198.18.1.10 (app = curl as root, forwarder as uid 1337) -> remote 198.18.1.20:80
  local P=htcap-pod R=htcap-remote PODIP=198.18.1.10 REMOTE=198.18.1.20
  new_ns $P; new_ns $R
  veth $P htp-eth0 $PODIP/24 $R htr-eth0 $REMOTE/24
  start_nginx $R remote "$REMOTE:80"
  wait_for 10 tcp_listening $R 80 || die "nginx did not start in $R"
  ns_exec $P iptables -t nat -A OUTPUT -p tcp -d $REMOTE --dport 80 \
    -m owner ! --uid-owner 1337 -j REDIRECT --to-ports 15001
  ip netns exec $P "$PY" "$TOOLS/redirect-forwarder.py" --listen 0.0.0.0:15001 \
    --max-conns 20 --timeout 60 2>"$TMP/fwd-out.log" &
  local FPID=$!
  PIDS+=("$FPID")
  wait_for 10 tcp_listening $P 15001 || die "forwarder did not start: $(cat "$TMP/fwd-out.log")"
  say "nat-split.pcap"
  save_ifindex $P "$OUT/nat-split.pcap"
  start_capture $P "$OUT/nat-split.pcap" any
  for _ in 1 2; do
    curl_in $P "http://$REMOTE/"
    curl_in $P -I "http://$REMOTE/"
  done
  stop_capture
  kill -TERM "$FPID"; wait "$FPID" || true
  ns_exec $P iptables -t nat -S >"$TMP/nat-split.rules"

  # ---- seed-doubled-head: the inbound sidecar path of the seed article
  # client 198.18.1.30 -> pod 198.18.1.40:80, PREROUTING REDIRECT to 15001,
  # forwarder -> app (nginx) on 127.0.0.1:80
  local SC=htcap-sclient SP=htcap-spod SPIP=198.18.1.40
  new_ns $SC; new_ns $SP
  veth $SC htsc-eth0 198.18.1.30/24 $SP htsp-eth0 $SPIP/24
  start_nginx $SP app "127.0.0.1:80"
  wait_for 10 tcp_listening $SP 80 || die "nginx did not start in $SP"
  ns_exec $SP iptables -t nat -A PREROUTING -p tcp --dport 80 -j REDIRECT --to-ports 15001
  ip netns exec $SP "$PY" "$TOOLS/redirect-forwarder.py" --listen 0.0.0.0:15001 \
    --inbound-ip $SPIP --inbound-to 127.0.0.1:80 --max-conns 20 --timeout 60 2>"$TMP/fwd-in.log" &
  FPID=$!
  PIDS+=("$FPID")
  wait_for 10 tcp_listening $SP 15001 || die "forwarder did not start: $(cat "$TMP/fwd-in.log")"
  say "seed-doubled-head.pcap"
  save_ifindex $SP "$OUT/seed-doubled-head.pcap"
  start_capture $SP "$OUT/seed-doubled-head.pcap" any
  curl_in $SC -I "http://$SPIP/"
  curl_in $SC "http://$SPIP/"
  curl_in $SC -I "http://$SPIP/"
  stop_capture
  kill -TERM "$FPID"; wait "$FPID" || true

  # ---- link types Linux cannot capture: converted from the real captures above
  say "converted link types"
  "$PY" "$TOOLS/relink.py" --to null-le "$OUT/loopback-ipv6.pcap" "$OUT/null-le.pcap"
  "$PY" "$TOOLS/relink.py" --to null-be "$OUT/loopback-ipv6.pcap" "$OUT/null-be.pcap"
  "$PY" "$TOOLS/relink.py" --to loop    "$OUT/loopback-ipv6.pcap" "$OUT/loop.pcap"
  "$PY" "$TOOLS/relink.py" --to raw     "$OUT/loopback-ipv6.pcap" "$OUT/raw.pcap"
  "$PY" "$TOOLS/relink.py" --to ipv4    "$OUT/ethernet.pcap"      "$OUT/ipv4.pcap"
  "$PY" "$TOOLS/relink.py" --to ipv6    "$OUT/loopback-ipv6.pcap" "$OUT/ipv6.pcap"
  editcap -F pcapng "$OUT/ethernet.pcap" "$OUT/ethernet.pcapng"

  for ns in $(ip netns list | awk '$1 ~ /^htcap-/ {print $1}'); do ip netns del "$ns"; done
}

# -------------------------------------------------------------- references ----
FIELDS=(frame.number frame.time_epoch ip.src ip.dst ipv6.src ipv6.dst tcp.srcport tcp.dstport
        tcp.seq_raw tcp.ack_raw tcp.flags tcp.len tcp.window_size_value tcp.options.mss_val
        tcp.options.wscale.shift tcp.options.timestamp.tsval sll.ifindex sll.pkttype vlan.id
        ieee8021ad.id)

tsh() { tshark "$@" 2>/dev/null; }

make_reference() { # make_reference PATH-RELATIVE-TO-Captures
  local rel=$1 f="$HERE/$1"
  local base="$REF/$rel"
  mkdir -p "$(dirname "$base")"
  local fargs=()
  for x in "${FIELDS[@]}"; do fargs+=(-e "$x"); done
  tsh -r "$f" -o tcp.desegment_tcp_streams:FALSE -T fields -E header=y -E separator=/t \
      "${fargs[@]}" -Y tcp >"$base.tsv"
  local req resp
  req=$(tsh -r "$f" -Y http.request | wc -l)
  resp=$(tsh -r "$f" -Y http.response | wc -l)
  printf 'requests %s\nresponses %s\n' "$req" "$resp" >"$base.http.txt"
  local lt total tcpn
  lt=$(tcpdump -r "$f" -c 1 2>&1 >/dev/null | sed -n 's/.*link-type \([^ ]*\) .*/\1/p' | head -1)
  total=$(tsh -r "$f" | wc -l)
  tcpn=$(tsh -r "$f" -Y tcp | wc -l)
  printf '%s\t%s\t%s\t%s\n' "$rel" "$lt" "$total" "$tcpn" >>"$REF/counts.tsv"
}

make_references() {
  say "tshark references"
  mkdir -p "$REF"
  find "$REF" \( -name '*.pcap*.tsv' -o -name '*.http.txt' \) ! -name '*.interfaces.tsv' -delete
  printf 'file\tlinktype\tpackets\ttcp_packets\n' >"$REF/counts.tsv"
  local f
  for f in "$HERE"/*.pcap "$HERE"/*.pcapng "$HERE"/third-party/*/*.pcap; do
    [[ -e "$f" ]] || continue
    make_reference "${f#"$HERE"/}"
  done
  # what tshark pairs on the NAT-split captures, frame by frame
  for f in nat-split.pcap seed-doubled-head.pcap; do
    [[ -e "$HERE/$f" ]] || continue
    tsh -2 -r "$HERE/$f" -Y http -T fields -E header=y -E separator=/t \
      -e frame.number -e sll.ifindex -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport \
      -e http.request.method -e http.request.uri -e http.response.code \
      -e http.request_in -e http.response_in >"$REF/$f.http-pairs.tsv"
  done
}

trap cleanup EXIT
trap 'exit 130' INT TERM
if (( ! REFS_ONLY )); then
  make_captures
fi
make_references
say "done"
ls -l "$HERE"/*.pcap "$HERE"/*.pcapng >&2
