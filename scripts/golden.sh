#!/usr/bin/env bash
# golden.sh — regenerate the golden files under Captures/golden/ (every printer's output on
# every bundled capture; see Tests/CLITests/GoldenTests.swift), then show what changed.
#
# Usage: scripts/golden.sh
# Review the diff (git diff --stat Captures/golden; git diff Captures/golden/...) and commit
# the files with the change that made them differ.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="/opt/swift/usr/bin:$PATH"
HOPTRACE_UPDATE_GOLDEN=1 swift test --filter GoldenTests.testEveryPrinterOnEveryCaptureMatchesItsGoldenFile
git status --short Captures/golden | head -20
git diff --stat Captures/golden | tail -1
