#!/usr/bin/env bash
# fuzz.sh — run one libFuzzer target of hoptrace for a while.
#
# Usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]
#   TARGET   capture | http | http2 | netfilter | wire   (Sources/HopFuzz/FuzzTarget.swift)
#   SECONDS  how long to fuzz (-max_total_time)
#
# Builds `hoptrace-fuzz` with `-sanitize=fuzzer,address -DFUZZING` in .build-fuzz (a separate
# scratch path: the normal build is untouched), seeds a corpus in fuzz-corpus/TARGET from
# Captures/ (capture), HTTP snippets from the tests and captures (http, wire) or rule files
# (netfilter), runs libFuzzer, keeps crashes as fuzz-crashes/TARGET/crash-* (gitignored,
# like the corpus), and prints the figures: wall and CPU seconds of the fuzzer itself (user +
# system, by /usr/bin/time: on a shared, nice'd machine they differ), execs, exec/s, coverage
# (cov/ft), corpus size, crashes (all kept, and new in this run). A crash is replayed with
# `.build/debug/hoptrace-fuzz TARGET FILE` and becomes a regression input under
# Tests/HopFuzzTests/Inputs/TARGET/ once fixed.
# Exit: 0 no crash, 1 crashes found, 2 usage, 3 the fuzz build failed (toolchain).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${1:-}"
SECONDS_TO_RUN="${2:-}"
case "$TARGET" in capture|http|http2|netfilter|wire) ;; *) echo "usage: $0 capture|http|http2|netfilter|wire SECONDS [libFuzzer options]" >&2; exit 2 ;; esac
[[ "$SECONDS_TO_RUN" =~ ^[0-9]+$ ]] || { echo "usage: $0 TARGET SECONDS" >&2; exit 2; }
shift 2

cd "$ROOT"
BUILD_LOG="$ROOT/.build-fuzz/build.log"
mkdir -p .build-fuzz
if ! swift build -c debug --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING \
        --product hoptrace-fuzz > "$BUILD_LOG" 2>&1; then
    echo "fuzz build failed (see $BUILD_LOG): $(grep -m1 -E 'error' "$BUILD_LOG")" >&2
    exit 3
fi
BIN="$ROOT/.build-fuzz/debug/hoptrace-fuzz"

CORPUS="$ROOT/fuzz-corpus/$TARGET"
CRASHES="$ROOT/fuzz-crashes/$TARGET"
SEEDS="$ROOT/fuzz-corpus/seeds-$TARGET"
mkdir -p "$CORPUS" "$CRASHES" "$SEEDS"

# Seeds: small files only (libFuzzer's -max_len decides what it mutates).
seed_http_snippets() {
    local n=0 f
    # Request and response heads from the test sources, one snippet per line found.
    grep -hoE '"(GET|POST|HEAD|PUT|CONNECT|OPTIONS|HTTP/1\.[01]) [^"]{0,200}"' "$ROOT"/Tests/HopHTTPTests/*.swift \
        "$ROOT"/Tests/HopProxyTests/*.swift 2>/dev/null | sort -u | head -200 | while IFS= read -r line; do
        n=$((n + 1))
        printf '%b' "$(printf '%s' "${line:1:${#line}-2}" | sed 's|\\u{[0-9a-fA-F]*}||g')" > "$SEEDS/snippet-$n"
    done
    # Payloads of the HTTP segments of the small captures.
    if command -v tshark >/dev/null; then
        for f in "$ROOT"/Captures/*.pcap; do
            [ "$(stat -c %s "$f")" -lt 200000 ] || continue
            tshark -r "$f" -Y 'tcp.len > 0' -T fields -e tcp.payload 2>/dev/null | head -50 | while read -r hex; do
                n=$((n + 1))
                echo "$hex" | xxd -r -p > "$SEEDS/$(basename "$f")-$n"
            done
        done
    fi
}
case "$TARGET" in
    capture)
        find "$ROOT/Captures" -maxdepth 2 -type f \( -name '*.pcap' -o -name '*.pcapng' \) -size -64k -exec cp {} "$SEEDS/" \;
        MAXLEN=65536 ;;
    http)
        seed_http_snippets
        # The http target reads records: prefix each snippet as one client record of its length.
        for f in "$SEEDS"/*; do
            [ -f "$f" ] || continue
            python3 - "$f" <<'PY'
import sys
p = sys.argv[1]
b = open(p, "rb").read()
out = bytearray([0])
d = 0
while b:
    n = min(len(b), 125)
    units = (n - 1) // 4
    take = units * 4 + 1
    out.append(units << 3 | d)
    out += b[:take]
    b = b[take:]
    d ^= 1
open(p, "wb").write(bytes(out))
PY
        done
        MAXLEN=8192 ;;
    http2)
        python3 "$ROOT/scripts/h2-fuzz-seed.py" "$SEEDS/h2-get-rst"
        cp "$ROOT"/Tests/HopFuzzTests/Inputs/http2/* "$SEEDS/" 2>/dev/null
        MAXLEN=8192 ;;
    wire)
        seed_http_snippets
        MAXLEN=8192 ;;
    netfilter)
        find "$ROOT/Tests/HopNetfilterTests" "$ROOT/Sources/HopNetfilter" -type f -name '*.rules' -exec cp {} "$SEEDS/" \; 2>/dev/null
        "$ROOT/.build/debug/hoptrace" intercept rules --preset istio-2018 > "$SEEDS/istio-2018" 2>/dev/null || true
        grep -hoE '"\*(nat|mangle)\\n[^"]{0,2000}"' "$ROOT"/Tests/HopNetfilterTests/*.swift 2>/dev/null | head -50 | while IFS= read -r line; do
            printf '%b' "${line:1:${#line}-2}" > "$SEEDS/test-$RANDOM"
        done
        MAXLEN=4096 ;;
esac

LOG="$ROOT/fuzz-crashes/$TARGET.log"
# The fuzzer's own CPU time (user + system, without the build and the seeding), which on a
# shared machine is what a run is worth; wall time is not (a nice'd run gets what is left).
CPU_FILE="$ROOT/fuzz-crashes/$TARGET.cpu"
rm -f "$CPU_FILE"
TIMER=()
[ -x /usr/bin/time ] && TIMER=(/usr/bin/time -o "$CPU_FILE" -f '%U %S %e')
before=$(find "$CRASHES" -maxdepth 1 -type f | wc -l)
HOPTRACE_FUZZ_TARGET="$TARGET" SWIFT_BACKTRACE=enable=no "${TIMER[@]}" "$BIN" "$CORPUS" "$SEEDS" \
    -max_total_time="$SECONDS_TO_RUN" -max_len="$MAXLEN" -timeout=20 -rss_limit_mb=3000 \
    -artifact_prefix="$CRASHES/" -print_final_stats=1 -fork=0 "$@" > "$LOG" 2>&1
status=$?

execs=$(grep -m1 'stat::number_of_executed_units' "$LOG" | awk '{print $2}')
rate=$(grep -m1 'stat::average_exec_per_sec' "$LOG" | awk '{print $2}')
last=$(grep -E '^#[0-9]+' "$LOG" | tail -1)
cov=$(echo "$last" | grep -oE 'cov: [0-9]+' | awk '{print $2}')
ft=$(echo "$last" | grep -oE 'ft: [0-9]+' | awk '{print $2}')
crashes=$(find "$CRASHES" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
new=$(( $(find "$CRASHES" -maxdepth 1 -type f | wc -l) - before ))
cpu="?"; wall="?"
if [ -s "$CPU_FILE" ]; then
    read -r u s e < <(grep -E '^[0-9.]+ [0-9.]+ [0-9.]+$' "$CPU_FILE" | tail -1)
    [ -n "${u:-}" ] && cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.0f", u + s }') && wall=$(printf '%.0f' "$e")
fi
echo "target=$TARGET seconds=$SECONDS_TO_RUN wall=$wall cpu=$cpu execs=${execs:-?} exec/s=${rate:-?} cov=${cov:-?} ft=${ft:-?} corpus=$(ls "$CORPUS" | wc -l) crashes=$crashes (new: $new) (log: $LOG)"
if [ "$crashes" -gt 0 ] || { [ $status -ne 0 ] && grep -q 'ERROR: libFuzzer\|Fatal error\|AddressSanitizer' "$LOG"; }; then
    grep -m3 -E 'Fatal error|ERROR: AddressSanitizer|ERROR: libFuzzer' "$LOG" >&2
    exit 1
fi
exit 0
