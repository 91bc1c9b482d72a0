#!/usr/bin/env bash
# Sets up what is missing, builds hoptrace, and runs it on a bundled capture.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
bash scripts/setup.sh
swift build -c release --static-swift-stdlib
bin="$(swift build -c release --static-swift-stdlib --show-bin-path)/hoptrace"
echo "== hoptrace analyze   (the bundled seed capture: why does every request show up twice?)"
"$bin" analyze
