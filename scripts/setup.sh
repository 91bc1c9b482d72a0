#!/usr/bin/env bash
# Installs the Debian packages hoptrace's build and tests need, when they are missing.
# Safe to run again: it installs nothing that is already there.
set -euo pipefail

# package → why
declare -A NEED=(
  [libpcap-dev]="libpcap headers and library (the capture engine)"
  [libnghttp2-dev]="nghttp2 headers and library (its HPACK decoder reads HTTP/2 header blocks)"
  [iproute2]="ip netns / veth for the live-capture and lab tests"
  [iptables]="iptables-restore/-save inside test namespaces (rule model and interceptor tests)"
  [util-linux]="setpriv, to test the no-privilege message as root"
  [python3]="drives test traffic inside network namespaces (and the lab's client and built-in app)"
  [haproxy]="a third-party sidecar for hoptrace lab --sidecar haproxy (truth from its log)"
  [nginx]="the lab's app (its access log names each request id) and hoptrace lab --sidecar nginx"
  [wrk]="load for hoptrace lab --sidecar haproxy|nginx"
  [curl]="the lab's mixed scenario (curl HEAD/GET beside the load)"
  [python3-jsonschema]="validates the JSON output against docs/schema/analyze.schema.json (ReportSchemaValidationTests)"
  [python3-numpy]="recomputes the latency percentiles of the JSON output (scripts/check-latency.py, LatencyPercentileTests)"
  [chromium]="renders the HTML report headless: its render time, errors and a screenshot (HTMLBrowserTests)"
  [nghttp2-server]="nghttpd, the h2c app of HTTP2CaptureTests (Captures/make-h2c-capture.sh)"
  [nghttp2-client]="nghttp and h2load, h2c clients of HTTP2CaptureTests"
  [tcpdump]="captures the h2c traffic of HTTP2CaptureTests"
  [tshark]="HTTP/2 ground truth: stream counts and fields compared with hoptrace's (HTTP2CaptureTests)"
  [python3-grpcio]="a real gRPC server and client (Captures/make-grpc-capture.sh, GRPCCaptureTests)"
)
# Without nginx, `hoptrace lab` falls back to a built-in Python app (hoptrace sidecar only).

missing=()
for pkg in "${!NEED[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
# python3 may come from elsewhere (pyenv): accept any python3 on PATH.
if command -v python3 >/dev/null 2>&1; then
  kept=()
  for pkg in "${missing[@]}"; do [ "$pkg" = python3 ] || kept+=("$pkg"); done
  missing=("${kept[@]}")
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all system packages present"
else
  echo "setup: missing Debian packages: ${missing[*]}"
  for pkg in "${missing[@]}"; do echo "  $pkg: ${NEED[$pkg]}"; done
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root (or: sudo apt-get install -y ${missing[*]})" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # nginx's package starts the service on install; the lab runs its own instances only.
  if [ -x /usr/sbin/service ] && [[ " ${missing[*]} " == *" nginx "* ]]; then service nginx stop >/dev/null 2>&1 || true; fi
fi

if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "setup: swift is at /opt/swift/usr/bin; add it to PATH: export PATH=/opt/swift/usr/bin:\$PATH" >&2
  else
    echo "setup: swift is not installed (hoptrace needs Swift 6.1 or later)" >&2
  fi
  exit 2
fi
