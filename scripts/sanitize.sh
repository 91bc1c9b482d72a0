#!/usr/bin/env bash
# sanitize.sh — the test suite under AddressSanitizer and ThreadSanitizer.
#
# Usage: scripts/sanitize.sh [address|thread|both] [swift test options, e.g. --filter REGEX]
#
# Each sanitizer builds in its own scratch path (.build-asan, .build-tsan; covered by .gitignore's
# .build-*/) so the normal .build is untouched. TSan covers the threads of `analyze` on files
# (capture + HTTP, pairing behind a HandOff, json/jsonl writing behind a second HandOff) through
# the in-process pipeline tests and the CLI tests, which run the sanitized `hoptrace` binary.
# A report fails the run (halt_on_error); the logs are kept in .build-{asan,tsan}/test.log.
# Exit: 0 clean, 1 a sanitizer report or a failing test, 2 usage.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
WHICH="${1:-both}"
case "$WHICH" in address|thread) shift ;; both) [ $# -gt 0 ] && shift ;; -*) WHICH=both ;; *) echo "usage: $0 [address|thread|both] [swift test options]" >&2; exit 2 ;; esac

# Reports stop the process that has them (the test or the hoptrace child), which fails the test.
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=0:abort_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:report_signal_unsafe=0}"

run() {  # sanitizer scratch
    local sanitizer="$1" scratch="$2" started status
    mkdir -p "$scratch"
    echo "== swift test --sanitize=$sanitizer --scratch-path $scratch ${*:3}"
    started=$(date +%s)
    # Memory bounds (AdversarialCaptureTests, WatchInLabTests) are checked only without a sanitizer.
    HOPTRACE_SANITIZER="$sanitizer" swift test --sanitize="$sanitizer" --scratch-path "$scratch" "${@:3}" >"$scratch/test.log" 2>&1
    status=$?
    local summary
    summary=$(grep -E "Executed [0-9]+ tests" "$scratch/test.log" | tail -1)
    echo "   ${summary:-no XCTest summary} ($(( $(date +%s) - started )) s, log: $scratch/test.log)"
    if grep -qE "ERROR: AddressSanitizer|WARNING: ThreadSanitizer|SUMMARY: (Address|Thread)Sanitizer" "$scratch/test.log"; then
        echo "   sanitizer reports:"
        grep -E "SUMMARY: (Address|Thread)Sanitizer" "$scratch/test.log" | sort | uniq -c | sed 's/^/     /'
        return 1
    fi
    return $status
}

failed=0
if [ "$WHICH" = address ] || [ "$WHICH" = both ]; then run address .build-asan "$@" || failed=1; fi
if [ "$WHICH" = thread ] || [ "$WHICH" = both ]; then run thread .build-tsan "$@" || failed=1; fi
exit $failed
