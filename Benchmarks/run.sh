#!/usr/bin/env bash
# run.sh — hoptrace's benchmarks. See Benchmarks/README.md.
#
# Usage: sudo Benchmarks/run.sh [--no-build] [--no-tshark] [--runs N] [--strict] [--identical] [--h2c]
#   --no-build    use the hoptrace already built in .build-bench
#   --no-tshark   skip the tshark comparison (slow) and its memory figures
#   --runs N      hyperfine runs for the bare loop and hoptrace (default 5)
#   --strict      exit 1 when a target is missed (default: report, exit 0)
#   --identical   only the identical-load benchmark: Benchmarks/data/identical{,-4x}.pcap
#                 (made by make-capture.sh --identical when missing); every format of
#                 analyze and http --format jsonl against http, tshark, peak RSS of each
#                 on both captures; writes Benchmarks/data/identical-results.txt
#   --h2c         only the HTTP/2 benchmark: Benchmarks/data/h2c.pcap and h2c-page.pcap
#                 (h2load against nghttpd for an 18-byte file and for a ~600-byte page, made by
#                 Captures/make-h2c-capture.sh with H2LOAD_REQUESTS=60000 when missing; root);
#                 for each, hoptrace http vs the bare loop (<= 4x) and vs tshark's HTTP/2
#                 dissector on the same streams (>= 50x), stream counts of both compared;
#                 writes Benchmarks/data/h2c-results.txt
# Environment: HOPTRACE_BIN=/path/to/hoptrace benchmarks that binary (no build).
#   BASELINE_BIN=/path/to/older/hoptrace (--identical): the same commands of an older build,
#   timed in a run of their own right after, and their peak RSS (a crash shows as "failed").
#
# Steps (each one skipped, with a one-line reason, when what it needs is
# missing, e.g. a hoptrace subcommand not written yet):
#   build     swift build -c release --static-swift-stdlib --scratch-path .build-bench; cc bare-loop.c
#   captures  Benchmarks/data/load-{large,small}.pcap, made by make-capture.sh
#             when missing (that part needs root: network namespaces)
#   decode    hyperfine: bare-loop FILE  vs  hoptrace packets -r FILE -q   (<= 2x)
#   http      hyperfine: hoptrace http -r FILE  vs the bare loop            (<= 4x)
#             and vs tshark -r FILE -Y http.request -T fields -e http.request.method
#             (hoptrace >= 50x faster)
#   analyze   hyperfine: hoptrace analyze FILE vs the bare loop (<= 5x) and vs tshark (>= 50x)
#   memory    peak RSS (/usr/bin/time -f %M) of hoptrace http on the small and
#             the large capture (must not grow with capture length); tshark's
#             for reference
# Writes Benchmarks/data/results.txt (the summary) and hyperfine JSON files.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DATA="$HERE/data"
BIN="$DATA/bin"
LARGE="$DATA/load-large.pcap"
SMALL="$DATA/load-small.pcap"
RESULTS="$DATA/results.txt"

BUILD=1
TSHARK=1
RUNS=5
STRICT=0
IDENTICAL=0
H2C=0
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --no-tshark) TSHARK=0; shift ;;
        --runs) RUNS="${2:?--runs needs a number}"; shift 2 ;;
        --strict) STRICT=1; shift ;;
        --identical) IDENTICAL=1; shift ;;
        --h2c) H2C=1; shift ;;
        -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

mkdir -p "$DATA" "$BIN"
# results of an earlier run must not pass for this one's
rm -f "$DATA"/{decode,http,tshark,bare}.json "$RESULTS"
SUMMARY="$(mktemp /tmp/htbench-summary.XXXXXX)"
trap 'rm -f "$SUMMARY" "$DATA"/.probe.*' EXIT

say() { echo "== $*" >&2; }
row() { printf '%-44s %-22s %-14s %s\n' "$1" "$2" "$3" "$4" >> "$SUMMARY"; }
note() { echo "$*" >> "$SUMMARY"; }
MISSED=0

for t in hyperfine python3 cc; do
    command -v "$t" >/dev/null || { echo "run.sh: missing tool: $t" >&2; exit 2; }
done
TIME=/usr/bin/time
if ! "$TIME" -f %M true >/dev/null 2>&1; then
    TIME=""
fi

mean_of() {  # mean_of JSON INDEX -> seconds
    python3 -c 'import json,sys; print("%.6f" % json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]["mean"])' "$1" "$2"
}
stddev_of() {
    python3 -c 'import json,sys; print("%.6f" % (json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]["stddev"] or 0))' "$1" "$2"
}
other_ratios() {  # other_ratios JSON I J -> "min-time ratio A, CPU-time ratio B" of result I over J
    python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"]; i, j = int(sys.argv[2]), int(sys.argv[3])
cpu = lambda x: x["user"] + x["system"]
print("min-time ratio %.2fx, CPU-time (user+sys) ratio %.2fx" % (r[i]["min"] / r[j]["min"], cpu(r[i]) / cpu(r[j])))
' "$1" "$2" "$3"
}
cpu_ratio() {  # cpu_ratio JSON I J -> user+system time of result I over result J
    python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["results"]
cpu = lambda x: x["user"] + x["system"]
print("%.2f" % (cpu(r[int(sys.argv[2])]) / cpu(r[int(sys.argv[3])])))' "$1" "$2" "$3"
}
ratio() { python3 -c 'import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print("%.2f" % (a/b if b else float("inf")))' "$1" "$2"; }
le() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' "$1" "$2"; }
verdict() {  # verdict OKCOND(0/1) -> PASS/MISS
    if [ "$1" = 0 ]; then echo PASS; else MISSED=1; echo MISS; fi
}
ms() { python3 -c 'import sys; print("%.1f ms" % (float(sys.argv[1])*1000))' "$1"; }
fmt_time() { echo "$(ms "$1" | sed 's/ ms//') ± $(ms "$2")"; }

peak_kb() {  # peak_kb CMD... -> KB on stdout; command output discarded
    local f; f="$(mktemp /tmp/htbench-time.XXXXXX)"
    if "$TIME" -f %M -o "$f" "$@" > /dev/null 2>&1; then tail -1 "$f"; else echo "failed"; fi
    rm -f "$f"
}
stat_of() { awk -v k="$2:" '$1 == k {print $2}' "$1.stats" 2>/dev/null; }

# ---------------------------------------------------------------- identical load (--identical)
# The captures of make-capture.sh --identical: a pod with HAProxy as its sidecar (http-reuse
# always) under wrk -c8 identical GET /, tcpdump -i any in the pod. Every format of analyze
# against http in one hyperfine run per capture, tshark on the same file, and peak RSS of
# each command on the capture and on the 4x one. Rerun after any change to the correlator:
#   Benchmarks/run.sh --identical [--no-build] [--runs N]
target_verdict() {  # target_verdict RATIO LIMIT -> VERDICT=PASS/MISS (MISSED=1 on a miss)
    if le "$1" "$2"; then VERDICT=PASS; else VERDICT=MISS; MISSED=1; fi
}
identical_bench() {
    local one="$DATA/identical.pcap" four="$DATA/identical-4x.pcap"
    if [ ! -s "$one" ] || [ ! -s "$four" ]; then
        say "identical-load captures missing: making them with make-capture.sh --identical"
        [ "$(id -u)" = 0 ] || { echo "run.sh: making the captures needs root (network namespaces): sudo Benchmarks/run.sh --identical" >&2; exit 2; }
        HOPTRACE_BIN="$HOPTRACE" "$HERE/make-capture.sh" --identical || { echo "run.sh: make-capture.sh --identical failed" >&2; exit 2; }
    fi
    [ -n "$HOPTRACE" ] || { echo "run.sh: no hoptrace binary" >&2; exit 2; }
    local commit
    commit="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
    (cd "$ROOT" && git diff --quiet HEAD -- Sources Package.swift 2>/dev/null) || commit="$commit+dirty"
    {
        echo "hoptrace identical-load benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "commit $commit; $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores; runs $RUNS"
        for f in "$one" "$four"; do
            echo "$(basename "$f"): $(stat_of "$f" packets) packets, $(stat_of "$f" wrk_responses) responses (wrk), $(( $(stat -L -c %s "$f") / 1048576 )) MiB"
        done
        echo
    } > "$SUMMARY"
    local formats="text json jsonl mermaid html" f file name json i r j_text j_jsonl http_mean tshark_mean
    for file in "$one" "$four"; do
        name="$(basename "$file" .pcap)"
        json="$DATA/$name.json"
        say "identical: $name: http and every format of analyze (hyperfine, $RUNS runs)"
        local args=(-n "http text" "$HOPTRACE http -r $file" -n "http jsonl" "$HOPTRACE http -r $file --format jsonl")
        for f in $formats; do args+=(-n "analyze $f" "$HOPTRACE analyze $file --format $f"); done
        hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$json" "${args[@]}" >&2
        note "$name — times (hyperfine mean ± stddev), ratios of means; the same run"
        row "command" "time" "ratio" "target"
        http_mean="$(mean_of "$json" 0)"
        row "hoptrace http (text)" "$(fmt_time "$http_mean" "$(stddev_of "$json" 0)")" "1.00x http" ""
        r="$(ratio "$(mean_of "$json" 1)" "$http_mean")"
        target_verdict "$r" 2
        row "hoptrace http --format jsonl" "$(fmt_time "$(mean_of "$json" 1)" "$(stddev_of "$json" 1)")" "${r}x http" "<= 2x $VERDICT"
        i=2
        for f in $formats; do
            r="$(ratio "$(mean_of "$json" $i)" "$http_mean")"
            target_verdict "$r" 2
            # json and jsonl also against http's own machine output (the same kind of output)
            local same=""
            case "$f" in json|jsonl) same="; $(ratio "$(mean_of "$json" $i)" "$(mean_of "$json" 1)")x http jsonl" ;; esac
            row "hoptrace analyze --format $f" "$(fmt_time "$(mean_of "$json" $i)" "$(stddev_of "$json" $i)")" "${r}x http" "<= 2x $VERDICT (CPU $(cpu_ratio "$json" $i 0)x$same)"
            i=$((i + 1))
        done
        note "  (json/jsonl against http --format jsonl: analyze json $(ratio "$(mean_of "$json" 3)" "$(mean_of "$json" 1)")x, analyze jsonl $(ratio "$(mean_of "$json" 4)" "$(mean_of "$json" 1)")x; CPU time (user+sys) analyze text / http text: $(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"]
cpu = lambda x: x["user"] + x["system"]
print("%.2fx" % (cpu(r[2]) / cpu(r[0])))' "$json"))"
        if [ "$TSHARK" = 1 ] && command -v tshark >/dev/null; then
            say "identical: $name: tshark (2 runs)"
            hyperfine --warmup 0 --runs 2 --export-json "$DATA/$name-tshark.json" \
                -n tshark "tshark -n -r $file -Y http.request -T fields -e http.request.method" >&2
            tshark_mean="$(mean_of "$DATA/$name-tshark.json" 0)"
            row "tshark -Y http.request -T fields" "$(fmt_time "$tshark_mean" "$(stddev_of "$DATA/$name-tshark.json" 0)")" "$(ratio "$tshark_mean" "$http_mean")x http" ""
            note "  (tshark / hoptrace: http $(ratio "$tshark_mean" "$http_mean")x, analyze text $(ratio "$tshark_mean" "$(mean_of "$json" 2)")x, analyze json $(ratio "$tshark_mean" "$(mean_of "$json" 3)")x slower)"
        fi
        if [ -n "${BASELINE_BIN:-}" ] && [ -x "$BASELINE_BIN" ]; then
            say "identical: $name: baseline $BASELINE_BIN"
            local bargs=(-n "http text" "$BASELINE_BIN http -r $file" -n "http jsonl" "$BASELINE_BIN http -r $file --format jsonl")
            for f in $formats; do bargs+=(-n "analyze $f" "$BASELINE_BIN analyze $file --format $f"); done
            # -i: an old build may crash on the capture; its time is then that of the crash
            hyperfine -N -i --warmup 1 --runs "$RUNS" --export-json "$DATA/$name-baseline.json" "${bargs[@]}" >&2
            note "  baseline $BASELINE_BIN, its own run: http $(ms "$(mean_of "$DATA/$name-baseline.json" 0)"), http jsonl $(ratio "$(mean_of "$DATA/$name-baseline.json" 1)" "$(mean_of "$DATA/$name-baseline.json" 0)")x http, analyze text/json/jsonl/mermaid/html $(for i in 2 3 4 5 6; do printf '%sx ' "$(ratio "$(mean_of "$DATA/$name-baseline.json" $i)" "$(mean_of "$DATA/$name-baseline.json" 0)")"; done)http"
        fi
        note ""
    done
    if [ -z "$TIME" ]; then
        note "peak RSS skipped: no GNU time at /usr/bin/time"
    else
        say "identical: peak RSS"
        note "peak RSS (/usr/bin/time -f %M), KB"
        row "command" "$(basename "$one")" "$(basename "$four")" "4x / 1x"
        local a b cmd
        for cmd in "http text|http -r FILE" "http jsonl|http -r FILE --format jsonl" \
            "analyze text|analyze FILE" "analyze json|analyze FILE --format json" "analyze jsonl|analyze FILE --format jsonl" \
            "analyze mermaid|analyze FILE --format mermaid" "analyze html|analyze FILE --format html"; do
            local label="${cmd%%|*}" tmpl="${cmd#*|}"
            # shellcheck disable=SC2086
            a="$(peak_kb "$HOPTRACE" ${tmpl//FILE/$one})"
            # shellcheck disable=SC2086
            b="$(peak_kb "$HOPTRACE" ${tmpl//FILE/$four})"
            local verdict_text=""
            case "$label" in
                "analyze json"|"analyze jsonl"|"analyze text"|"http text"|"http jsonl")
                    if python3 -c 'import sys; s,l=float(sys.argv[1]),float(sys.argv[2]); sys.exit(0 if l <= max(s*1.2, s+4096) else 1)' "$a" "$b" 2>/dev/null; then
                        verdict_text="flat PASS"
                    else
                        verdict_text="flat MISS"; MISSED=1
                    fi ;;
            esac
            row "hoptrace $label" "$a" "$b" "$(ratio "$b" "$a")x $verdict_text"
            if [ -n "${BASELINE_BIN:-}" ] && [ -x "$BASELINE_BIN" ]; then
                # shellcheck disable=SC2086
                a="$(peak_kb "$BASELINE_BIN" ${tmpl//FILE/$one})"
                # shellcheck disable=SC2086
                b="$(peak_kb "$BASELINE_BIN" ${tmpl//FILE/$four})"
                row "  baseline $label" "$a" "$b" "$( [ "$a" != failed ] && [ "$b" != failed ] && ratio "$b" "$a")x"
            fi
        done
        if [ "$TSHARK" = 1 ] && command -v tshark >/dev/null; then
            a="$(peak_kb tshark -n -r "$one" -Y http.request -T fields -e http.request.method)"
            b="$(peak_kb tshark -n -r "$four" -Y http.request -T fields -e http.request.method)"
            row "tshark -Y http.request (reference)" "$a" "$b" "$(ratio "$b" "$a")x"
        fi
    fi
    cp "$SUMMARY" "$DATA/identical-results.txt"
    chmod 644 "$DATA/identical-results.txt"
    echo
    cat "$DATA/identical-results.txt"
    echo "(written to $DATA/identical-results.txt)"
    if [ "$STRICT" = 1 ] && [ "$MISSED" = 1 ]; then exit 1; fi
    exit 0
}

# ---------------------------------------------------------------- h2c (--h2c)
# Two h2c captures of real peers (h2load -c 4 -m 4 against nghttpd --no-tls, on the loopback of
# a namespace), 60,000 requests each: h2c.pcap asks for an 18-byte file (two streams a packet:
# the densest the peers make), h2c-page.pcap for the HTTP/1 benchmark's ~600-byte page. For
# each, hoptrace http against the bare libpcap loop and against tshark decoding the same
# streams (-d tcp.port==18080,http2, every HEADERS frame's stream id), in one run.
h2c_one() {
    local file="$1" path="$2" name json tjson
    name="$(basename "$file" .pcap)"; json="$DATA/$name.json"; tjson="$DATA/$name-tshark.json"
    if [ ! -s "$file" ]; then
        say "$name capture missing: making it with Captures/make-h2c-capture.sh (H2LOAD_REQUESTS=60000, H2LOAD_PATH=$path)"
        [ "$(id -u)" = 0 ] || { echo "run.sh: making the capture needs root (a network namespace): sudo Benchmarks/run.sh --h2c" >&2; exit 2; }
        H2LOAD_REQUESTS=60000 H2LOAD_CLIENTS=4 H2LOAD_PATH="$path" "$ROOT/Captures/make-h2c-capture.sh" "$file" || { echo "run.sh: make-h2c-capture.sh failed" >&2; exit 2; }
    fi
    local packets streams tstreams bare http r tshark_mean
    packets="$("$BARE" "$file" | awk '{print $2}')"
    streams="$("$HOPTRACE" http -r "$file" --format jsonl 2>/dev/null | grep -c '"http2":{')"
    {
        echo "$(basename "$file") (h2load asks for $path): $packets packets, $streams HTTP/2 streams (hoptrace), $(( $(stat -L -c %s "$file") / 1048576 )) MiB"
    } >> "$SUMMARY"
    say "$name: bare loop vs hoptrace http (hyperfine, $RUNS runs)"
    # `flows` (libpcap and TCP reassembly, no HTTP) for reference: what HTTP/2 adds to it.
    hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$json" \
        -n bare-loop "$BARE $file" -n "hoptrace http" "$HOPTRACE http -r $file" \
        -n "hoptrace flows" "$HOPTRACE flows -r $file" >&2
    bare="$(mean_of "$json" 0)"; http="$(mean_of "$json" 1)"
    row "measure" "value" "target" "verdict"
    row "bare loop" "$(fmt_time "$bare" "$(stddev_of "$json" 0)")" "" ""
    row "hoptrace http" "$(fmt_time "$http" "$(stddev_of "$json" 1)")" "" ""
    row "hoptrace flows (reference)" "$(fmt_time "$(mean_of "$json" 2)" "$(stddev_of "$json" 2)")" "" ""
    r="$(ratio "$http" "$bare")"
    le "$r" 4; row "http: hoptrace http / bare loop" "${r}x" "<= 4x" "$(verdict $?)"
    note "  ($(other_ratios "$json" 1 0))"
    row "  http / flows (reference)" "$(ratio "$http" "$(mean_of "$json" 2)")x" "" ""
    # `http` reads and reassembles on one thread while another parses HTTP: it cannot take less
    # than `flows`, which does that reading and reassembly alone. Where this is above 4x, so is
    # `http` (and no HTTP parser can bring it under).
    row "  flows / bare loop (http's floor)" "$(ratio "$(mean_of "$json" 2)" "$bare")x" "" ""
    if [ "$TSHARK" = 1 ]; then
        say "$name: tshark's HTTP/2 dissector on the same file (2 runs)"
        local tcmd="tshark -n -r $file -d tcp.port==18080,http2 -Y http2.type==1 -T fields -e tcp.stream -e http2.streamid -e http2.type"
        hyperfine --warmup 0 --runs 2 --export-json "$tjson" -n tshark "$tcmd" >&2
        tshark_mean="$(mean_of "$tjson" 0)"
        tstreams="$($tcmd 2>/dev/null | python3 -c '
import sys
s = set()
for line in sys.stdin:
    f = line.rstrip("\n").split("\t")
    if len(f) < 3: continue
    for i, t in zip(f[1].split(","), f[2].split(",")):
        if t == "1": s.add((f[0], i))
print(len(s))')"
        row "tshark -d tcp.port==18080,http2 -Y http2.type==1" "$(fmt_time "$tshark_mean" "$(stddev_of "$tjson" 0)")" "" ""
        r="$(ratio "$tshark_mean" "$http")"
        python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= 50 else 1)' "$r"
        row "http: tshark / hoptrace http" "${r}x" ">= 50x" "$(verdict $?)"
        if [ "$tstreams" = "$streams" ]; then
            row "streams: hoptrace / tshark" "$streams / $tstreams" "equal" "PASS"
        else
            row "streams: hoptrace / tshark" "$streams / $tstreams" "equal" "MISS"; MISSED=1
        fi
    else
        note "tshark skipped (--no-tshark or not installed)"
    fi
    if [ -n "$TIME" ]; then
        note "peak RSS: hoptrace http $(peak_kb "$HOPTRACE" http -r "$file") KB"
    fi
    echo >> "$SUMMARY"
}

h2c_bench() {
    [ -n "$HOPTRACE" ] || { echo "run.sh: no hoptrace binary" >&2; exit 2; }
    command -v tshark >/dev/null || TSHARK=0
    local commit
    commit="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
    (cd "$ROOT" && git diff --quiet HEAD -- Sources Package.swift 2>/dev/null) || commit="$commit+dirty"
    {
        echo "hoptrace h2c benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "commit $commit; $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores; runs $RUNS"
        echo
    } > "$SUMMARY"
    h2c_one "$DATA/h2c.pcap" /a.txt
    h2c_one "$DATA/h2c-page.pcap" /page.html
    cp "$SUMMARY" "$DATA/h2c-results.txt"
    chmod 644 "$DATA/h2c-results.txt"
    echo
    cat "$DATA/h2c-results.txt"
    echo "(written to $DATA/h2c-results.txt)"
    if [ "$STRICT" = 1 ] && [ "$MISSED" = 1 ]; then exit 1; fi
    exit 0
}

# ---------------------------------------------------------------- build
HOPTRACE=""
if [ -n "${HOPTRACE_BIN:-}" ]; then
    # benchmark a given binary instead of building one
    HOPTRACE="$HOPTRACE_BIN"
elif [ "$BUILD" = 1 ]; then
    say "building hoptrace (release, .build-bench)"
    if (cd "$ROOT" && swift build -c release --static-swift-stdlib --scratch-path .build-bench) > "$DATA/build.log" 2>&1; then
        HOPTRACE="$(cd "$ROOT" && swift build -c release --static-swift-stdlib --scratch-path .build-bench --show-bin-path)/hoptrace"
    else
        echo "run.sh: hoptrace did not build; see $DATA/build.log (last lines below)" >&2
        tail -15 "$DATA/build.log" >&2
    fi
else
    [ -x "$ROOT/.build-bench/release/hoptrace" ] && HOPTRACE="$ROOT/.build-bench/release/hoptrace"
fi
[ -n "$HOPTRACE" ] && [ ! -x "$HOPTRACE" ] && HOPTRACE=""

say "building bare-loop"
BARE="$BIN/bare-loop"
cc -O2 -Wall -o "$BARE" "$HERE/bare-loop.c" -lpcap || { echo "run.sh: bare-loop did not build (libpcap-dev?)" >&2; exit 2; }

[ "$IDENTICAL" = 1 ] && identical_bench
[ "$H2C" = 1 ] && h2c_bench

# ---------------------------------------------------------------- captures
if [ ! -s "$LARGE" ] || [ ! -s "$SMALL" ]; then
    say "captures missing: making them with make-capture.sh"
    if [ "$(id -u)" != 0 ]; then
        echo "run.sh: making the captures needs root (network namespaces): sudo Benchmarks/run.sh" >&2
        exit 2
    fi
    "$HERE/make-capture.sh" || { echo "run.sh: make-capture.sh failed" >&2; exit 2; }
fi
# subcommand probe. ArgumentParser answers `hoptrace NOSUCH --help` with the
# root help and exit 0, so look for the subcommand's own usage line
# ("USAGE: hoptrace SUB ...") and its -r option.
has_sub() {
    [ -n "$HOPTRACE" ] || { echo "hoptrace not built"; return 1; }
    local out
    if ! out="$("$HOPTRACE" "$1" --help 2>&1)"; then
        echo "'hoptrace $1' does not exist yet ($(echo "$out" | head -1))"; return 1
    fi
    if ! printf '%s\n' "$out" | grep -Eq "hoptrace $1( |\$)" \
        || ! printf '%s\n' "$out" | grep -q -- '-r'; then
        echo "'hoptrace $1' does not exist yet (not in hoptrace's subcommands)"; return 1
    fi
    return 0
}

COMMIT="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
(cd "$ROOT" && git diff --quiet HEAD -- Sources Package.swift 2>/dev/null) || COMMIT="$COMMIT+dirty"
{
    echo "hoptrace benchmarks — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit $COMMIT; $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores; runs $RUNS"
    for f in "$LARGE" "$SMALL"; do
        echo "$(basename "$f"): $(stat_of "$f" packets) packets, $(stat_of "$f" tshark_requests) requests (tshark), $(( $(stat -L -c %s "$f") / 1048576 )) MiB"
    done
    echo
} > "$SUMMARY"
row "measure" "value" "target" "verdict"
row "-------" "-----" "------" "-------"

# bare loop sanity + its own memory
BARE_OUT="$("$BARE" "$LARGE")" || { echo "run.sh: bare-loop failed on $LARGE" >&2; exit 2; }
BARE_PACKETS="$(echo "$BARE_OUT" | awk '{print $2}')"
say "bare-loop: $BARE_OUT"

# ---------------------------------------------------------------- decode
DECODE_JSON="$DATA/decode.json"
BARE_MEAN=""
if why="$(has_sub packets)"; then
    say "decode: bare-loop vs hoptrace packets -q"
    probe_err="$DATA/.probe.packets"
    if "$HOPTRACE" packets -r "$LARGE" -q > /dev/null 2> "$probe_err"; then
        if grep -qw -- "$BARE_PACKETS" "$probe_err"; then
            count_note="packet count matches the bare loop ($BARE_PACKETS)"
        else
            count_note="packet count $BARE_PACKETS not found in hoptrace's counters: $(tr '\n' ' ' < "$probe_err" | cut -c1-160)"
        fi
        hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$DECODE_JSON" \
            -n bare-loop "$BARE $LARGE" \
            -n "hoptrace packets -q" "$HOPTRACE packets -r $LARGE -q" >&2
        BARE_MEAN="$(mean_of "$DECODE_JSON" 0)"
        h="$(mean_of "$DECODE_JSON" 1)"
        r="$(ratio "$h" "$BARE_MEAN")"
        row "bare loop, large capture" "$(fmt_time "$BARE_MEAN" "$(stddev_of "$DECODE_JSON" 0)")" "" ""
        row "hoptrace packets -q, large capture" "$(fmt_time "$h" "$(stddev_of "$DECODE_JSON" 1)")" "" ""
        le "$r" 2; row "decode: hoptrace packets / bare loop" "${r}x" "<= 2x" "$(verdict $?)"
        note "  ($(other_ratios "$DECODE_JSON" 1 0); $count_note)"
    else
        row "decode" "skipped" "<= 2x" "-"
        note "  (hoptrace packets -r FILE -q failed: $(head -1 "$probe_err"))"
    fi
else
    row "decode" "skipped" "<= 2x" "-"
    note "  ($why)"
fi
if [ -z "$BARE_MEAN" ]; then
    say "bare loop alone"
    hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$DATA/bare.json" -n bare-loop "$BARE $LARGE" >&2
    BARE_MEAN="$(mean_of "$DATA/bare.json" 0)"
    row "bare loop, large capture" "$(fmt_time "$BARE_MEAN" "$(stddev_of "$DATA/bare.json" 0)")" "" ""
fi

# ---------------------------------------------------------------- http
HTTP_OK=0
if why="$(has_sub http)"; then
    probe_out="$DATA/.probe.http"
    if "$HOPTRACE" http -r "$SMALL" > "$probe_out" 2>"$probe_out.err"; then
        HTTP_OK=1
        lines="$(wc -l < "$probe_out")"
        want="$(stat_of "$SMALL" tshark_requests)"
        note_http="hoptrace http printed $lines lines on the small capture; tshark counts ${want:-?} requests there"
    else
        row "http" "skipped" "<= 4x" "-"
        note "  (hoptrace http -r FILE failed: $(head -1 "$probe_out.err"))"
    fi
else
    row "http" "skipped" "<= 4x" "-"
    note "  ($why)"
fi
# against_bare SUB ARGS LIMIT NOTE: hyperfine `hoptrace ARGS` against the bare loop (same run),
# rows for its time and the ratio (target <= LIMIT x); sets MEAN (seconds).
against_bare() {
    local sub="$1" args="$2" limit="$3" extra="$4" json="$DATA/$1.json" b r
    say "$sub: hoptrace $sub vs bare-loop"
    hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$json" \
        -n bare-loop "$BARE $LARGE" \
        -n "hoptrace $sub" "$HOPTRACE $args" >&2
    b="$(mean_of "$json" 0)"
    MEAN="$(mean_of "$json" 1)"
    r="$(ratio "$MEAN" "$b")"
    row "hoptrace $sub, large capture" "$(fmt_time "$MEAN" "$(stddev_of "$json" 1)")" "" ""
    le "$r" "$limit"; row "$sub: hoptrace $sub / bare loop" "${r}x" "<= ${limit}x" "$(verdict $?)"
    note "  ($(other_ratios "$json" 1 0)$extra)"
}

# against_tshark SUB MEAN: the tshark run's mean over hoptrace SUB's (target >= 50x faster).
against_tshark() {
    local r
    r="$(ratio "$(mean_of "$TSHARK_JSON" 0)" "$2")"
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= 50 else 1)' "$r"
    row "$1: tshark / hoptrace $1" "${r}x faster" ">= 50x" "$(verdict $?)"
}

if [ "$HTTP_OK" = 1 ]; then
    against_bare http "http -r $LARGE" 4 "; $note_http"
    HTTP_MEAN="$MEAN"
    if [ "$TSHARK" = 1 ] && command -v tshark >/dev/null; then
        say "http: tshark (slow, 2 runs)"
        TSHARK_JSON="$DATA/tshark.json"
        hyperfine --warmup 0 --runs 2 --export-json "$TSHARK_JSON" \
            -n tshark "tshark -n -r $LARGE -Y http.request -T fields -e http.request.method" >&2
        row "tshark -Y http.request, large capture" \
            "$(fmt_time "$(mean_of "$TSHARK_JSON" 0)" "$(stddev_of "$TSHARK_JSON" 0)")" "" ""
        against_tshark http "$HTTP_MEAN"
    else
        row "http vs tshark" "skipped" ">= 50x" "-"
        note "  (--no-tshark or no tshark)"
    fi
fi

# ---------------------------------------------------------------- analyze
if why="$(has_sub analyze)"; then
    against_bare analyze "analyze $LARGE" 5 ""
    if [ -n "${TSHARK_JSON:-}" ] && [ -f "$TSHARK_JSON" ]; then
        against_tshark analyze "$MEAN"
    fi
else
    row "analyze" "skipped" "<= 5x" "-"
    note "  ($why)"
fi

# ---------------------------------------------------------------- memory
if [ -z "$TIME" ]; then
    row "memory" "skipped" "" "-"
    note "  (no GNU time at /usr/bin/time: apt-get install time)"
else
    say "memory"
    row "peak RSS bare loop, large" "$(peak_kb "$BARE" "$LARGE") KB" "" ""
    if [ "$HTTP_OK" = 1 ]; then
        ms_kb="$(peak_kb "$HOPTRACE" http -r "$SMALL")"
        ml_kb="$(peak_kb "$HOPTRACE" http -r "$LARGE")"
        row "peak RSS hoptrace http, small" "$ms_kb KB" "" ""
        row "peak RSS hoptrace http, large" "$ml_kb KB" "" ""
        row "peak RSS hoptrace analyze, small" "$(peak_kb "$HOPTRACE" analyze "$SMALL") KB" "" ""
        row "peak RSS hoptrace analyze, large" "$(peak_kb "$HOPTRACE" analyze "$LARGE") KB" "" ""
        if [ "$ms_kb" != failed ] && [ "$ml_kb" != failed ]; then
            g="$(ratio "$ml_kb" "$ms_kb")"
            # flat: the 4x longer capture may cost at most 20% (or 4 MB) more
            python3 -c 'import sys; s,l=float(sys.argv[1]),float(sys.argv[2]); sys.exit(0 if l <= max(s*1.2, s+4096) else 1)' "$ms_kb" "$ml_kb"
            row "memory: hoptrace http large / small" "${g}x" "flat (<=1.2x)" "$(verdict $?)"
        fi
    else
        row "peak RSS hoptrace http" "skipped" "flat" "-"
    fi
    if has_sub packets >/dev/null; then
        row "peak RSS hoptrace packets -q, small" "$(peak_kb "$HOPTRACE" packets -r "$SMALL" -q) KB" "" ""
        row "peak RSS hoptrace packets -q, large" "$(peak_kb "$HOPTRACE" packets -r "$LARGE" -q) KB" "" ""
    fi
    if [ "$TSHARK" = 1 ] && command -v tshark >/dev/null; then
        row "peak RSS tshark, small (reference)" "$(peak_kb tshark -n -r "$SMALL" -Y http.request -T fields -e http.request.method) KB" "" ""
        row "peak RSS tshark, large (reference)" "$(peak_kb tshark -n -r "$LARGE" -Y http.request -T fields -e http.request.method) KB" "" ""
    fi
fi

cp "$SUMMARY" "$RESULTS"
chmod 644 "$RESULTS"
echo
cat "$RESULTS"
echo "(written to $RESULTS)"
if [ "$STRICT" = 1 ] && [ "$MISSED" = 1 ]; then exit 1; fi
exit 0
