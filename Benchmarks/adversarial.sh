#!/usr/bin/env bash
# adversarial.sh — hostile captures through every command and format, with peak memory.
#
# Usage: Benchmarks/adversarial.sh [--small] [--no-build] [--remake] [--body-size BYTES]
#                                  [--cap-mb MB] [--out DIR] [NAME ...]
#
# Makes the captures of scripts/make-adversarial.py (all, or the NAMEs given) in DIR
# (default Benchmarks/data/adversarial, or .../adversarial-small with --small; gitignored;
# captures already there are kept unless --remake), then
# runs each through `packets`, `flows`, `http` and `analyze` in every format (text, json, jsonl,
# mermaid, html) with the release binary, under /usr/bin/time. A run passes when it exits 0 or 2
# (2: an input error, said on stderr), was not ended by a signal, and its peak resident memory
# is under the cap (default 200 MB: hoptrace's stated bound whatever the capture). Formats a
# command does not print (json for the streaming commands, mermaid and html outside analyze)
# must be refused with exit 2 and a usage message: they are checked, and shown as "refused".
#
# Prints one row per capture and command: for each format `exit seconds peakMB`, then PASS or
# MISS; then, per capture, what the capture notes and warnings of `analyze` say was dropped or
# capped. Exit: 0 every run passed, 1 a run missed, 2 usage.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SMALL=""; BUILD=1; BODY=""; CAP_MB=200; OUT=""; NAMES=(); REMAKE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --small) SMALL="--small" ;;
        --no-build) BUILD=0 ;;
        --remake) REMAKE=1 ;;
        --body-size) BODY="$2"; shift ;;
        --cap-mb) CAP_MB="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) NAMES+=("$1") ;;
    esac
    shift
done
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
[ -x /usr/bin/time ] || { echo "adversarial.sh needs GNU time (/usr/bin/time): apt-get install time" >&2; exit 2; }
OUT="${OUT:-$ROOT/Benchmarks/data/adversarial${SMALL:+-small}}"
cd "$ROOT"

if [ $BUILD -eq 1 ]; then
    swift build -c release --static-swift-stdlib --product hoptrace >/dev/null || { echo "release build failed" >&2; exit 2; }
fi
BIN="$ROOT/.build/release/hoptrace"
[ -x "$BIN" ] || { echo "no release binary at $BIN (run without --no-build)" >&2; exit 2; }

mkdir -p "$OUT"
# Captures already made are kept (the 1 GB one takes minutes); --remake makes them again.
ALL=$(python3 scripts/make-adversarial.py --list) || exit 2
MISSING=()
for name in ${NAMES[@]:-$ALL}; do
    if [ -n "$REMAKE" ] || { [ ! -f "$OUT/$name.pcap" ] && [ ! -f "$OUT/$name.pcapng" ]; }; then MISSING+=("$name"); fi
done
if [ ${#MISSING[@]} -gt 0 ]; then
    echo "== making ${MISSING[*]} in $OUT ${SMALL:+(small)}"
    python3 scripts/make-adversarial.py "$OUT" $SMALL ${BODY:+--body-size "$BODY"} "${MISSING[@]}" || exit 2
fi

COMMANDS=(packets flows http analyze)
FORMATS=(text json jsonl mermaid html)
supports() {  # command format
    case "$1:$2" in
        analyze:*) return 0 ;;
        *:text|*:jsonl) return 0 ;;
        *) return 1 ;;
    esac
}

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
misses=0
header="| capture | size | command |"; rule="|---|---|---|"
for f in "${FORMATS[@]}"; do header+=" $f |"; rule+="---|"; done
echo
echo "Cap: peak RSS < $CAP_MB MB; exit 0 or 2; no signal. Cells: exit · seconds · peak MB."
echo
echo "$header result |"
echo "$rule---|"
mapfile -t FILES < <(ls -1 "$OUT"/*.pcap "$OUT"/*.pcapng 2>/dev/null | sort)
for file in "${FILES[@]}"; do
    name="$(basename "$file")"; name="${name%.*}"
    if [ ${#NAMES[@]} -gt 0 ] && [[ ! " ${NAMES[*]} " == *" $name "* ]]; then continue; fi
    size=$(stat -c %s "$file" | awk '{ s=$1; u="B"; if (s>=1e9) {s/=1e9; u="GB"} else if (s>=1e6) {s/=1e6; u="MB"} else if (s>=1e3) {s/=1e3; u="kB"}; printf "%.3g %s", s, u }')
    for cmd in "${COMMANDS[@]}"; do
        row="| $name | $size | $cmd |"; result="PASS"
        for fmt in "${FORMATS[@]}"; do
            /usr/bin/time -f "%e %M %x" -o "$TMP/time" "$BIN" "$cmd" -r "$file" --format "$fmt" >"$TMP/out" 2>"$TMP/err"
            read -r secs kb status < <(tail -1 "$TMP/time")
            # GNU time reports "Command terminated by signal N" and exit status 0 for a signal.
            sig=$(grep -oE 'terminated by signal [0-9]+' "$TMP/time" | awk '{print $4}')
            mb=$(( (kb + 1023) / 1024 ))
            if ! supports "$cmd" "$fmt"; then
                if [ "$status" = 2 ] && [ -z "$sig" ] && grep -qi "format" "$TMP/err"; then
                    row+=" refused |"
                else
                    row+=" **not refused: exit $status** |"; result="MISS"
                fi
                continue
            fi
            cell="$status · $secs · $mb"
            if [ -n "$sig" ]; then
                cell="**signal $sig** · $secs · $mb"; result="MISS"
                cp "$TMP/err" "$OUT/$name.$cmd.$fmt.stderr"
            elif [ "$status" != 0 ] && [ "$status" != 2 ]; then
                cell="**$status** · $secs · $mb"; result="MISS"
                cp "$TMP/err" "$OUT/$name.$cmd.$fmt.stderr"
            elif [ "$mb" -ge "$CAP_MB" ]; then
                cell="$status · $secs · **$mb**"; result="MISS"
            fi
            [ "$status" = 2 ] && cp "$TMP/err" "$OUT/$name.$cmd.$fmt.stderr"
            row+=" $cell |"
        done
        [ "$result" = MISS ] && misses=$((misses + 1))
        echo "$row $result |"
    done
done

echo
echo "== what each capture's analysis says was dropped, capped or odd (analyze's capture notes and warnings; stderr of an exit 2)"
for file in "${FILES[@]}"; do
    name="$(basename "$file")"; name="${name%.*}"
    if [ ${#NAMES[@]} -gt 0 ] && [[ ! " ${NAMES[*]} " == *" $name "* ]]; then continue; fi
    "$BIN" analyze -r "$file" >"$TMP/a.txt" 2>"$TMP/a.err"
    notes=$(grep -m1 '^capture notes:' "$TMP/a.txt" | sed 's/^capture notes: //')
    warnings=$(grep -oE '^  \[[a-z-]+\]' "$TMP/a.txt" | tr -d ' []' | paste -sd, -)
    error=$(grep -m1 -E '^hoptrace: /' "$TMP/a.err" | cut -c1-240)
    echo "- $name: ${notes:-no capture notes}${warnings:+; warnings: $warnings}${error:+; exit 2: $error}"
done
echo
echo "runs missed: $misses"
[ $misses -eq 0 ]
