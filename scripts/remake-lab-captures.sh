#!/usr/bin/env bash
# Remakes Captures/lab-*.pcap and their expectation files (Captures/lab-*.expect.json) by
# running every lab scenario (as root: network namespaces, iptables inside them). A scenario's
# capture and expectation are written only when its analysis matched the ground truth.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
swift build
"$(swift build --show-bin-path)/hoptrace" lab --all --write-dir Captures --update-expectations "$@"
"$(swift build --show-bin-path)/hoptrace" check Captures
