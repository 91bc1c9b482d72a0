#!/usr/bin/env bash
# The whole test suite: system packages, build, unit + CLI + live-capture tests.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
bash scripts/setup.sh
swift build
swift test 2>&1 | tee .build/test-output.txt
