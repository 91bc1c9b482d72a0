#!/usr/bin/env bash
# The whole test suite: system packages, build, unit + CLI + live-capture tests, every lab
# scenario (root only), and the saved captures against their expectations.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
bash scripts/setup.sh
swift build
swift test 2>&1 | tee .build/test-output.txt
bin="$(swift build --show-bin-path)/hoptrace"

# The lab: network namespaces, veth pairs and iptables inside them (root only).
lab_skip=""
if [ "$(id -u)" -ne 0 ]; then
  lab_skip="not root (the lab creates network namespaces and installs iptables rules in them)"
elif ! command -v ip >/dev/null 2>&1; then
  lab_skip="ip (iproute2) is missing"
elif ! command -v iptables-restore >/dev/null 2>&1 && [ ! -x /usr/sbin/iptables-restore ]; then
  lab_skip="iptables-restore is missing"
elif ! ip netns add "hoplab-probe-$$" 2>/dev/null; then
  lab_skip="cannot create network namespaces here"
else
  ip netns del "hoplab-probe-$$"
fi
if [ -n "$lab_skip" ]; then
  echo "== hoptrace lab --all: skipped: $lab_skip"
else
  echo "== hoptrace lab --all"
  "$bin" lab --all
  # A third-party sidecar: HAProxy pools upstream connections; truth from its log and the app's
  # (exact counts fail the run; pairing accuracy is reported, not checked).
  echo "== hoptrace lab load --sidecar haproxy --identical-targets --connections 8"
  "$bin" lab load --sidecar haproxy --identical-targets --connections 8
fi

echo "== hoptrace check Captures"
"$bin" check Captures

# Fuzzing, briefly when root or in CI: 2,000 inputs per target from a fixed seed, so the
# verdict is the same on every run (a crash found here is reproducible, not luck); longer
# runs are a benchmark (Benchmarks/README.md, "Fuzzing"). A toolchain that cannot build the
# fuzzer is a skip.
if [ "$(id -u)" -eq 0 ] || [ -n "${CI:-}" ]; then
  for target in capture http http2 netfilter wire; do
    echo "== scripts/fuzz.sh $target 60 -seed=1 -runs=2000"
    set +e
    bash scripts/fuzz.sh "$target" 60 -seed=1 -runs=2000
    status=$?
    set -e
    if [ $status -eq 3 ]; then
      echo "== fuzzing: skipped: the libFuzzer build failed with this toolchain (.build-fuzz/build.log)"
      break
    elif [ $status -ne 0 ]; then
      echo "== fuzzing: $target found a crash (fuzz-crashes/$target/)"
      exit 1
    fi
  done
else
  echo "== fuzzing: skipped: not root and not CI"
fi

# The libraries' documentation (DocC catalogs and their snippets) builds without a warning.
echo "== swift package generate-documentation (warnings are errors)"
swift package generate-documentation --warnings-as-errors \
  $(for t in HopCapture HopFlows HopHTTP HopNetfilter HopCorrelation HopReport HopInstaller HopProxy HopLab; do echo --target $t; done)

# The snippets the documentation shows run (they are built by `swift build`).
echo "== snippets"
snippets="$(swift build --show-bin-path)"
check_snippet() {  # check_snippet NAME EXPECTED: runs it on the seed capture, looks for EXPECTED
  local out
  out="$("$snippets/$1" Captures/lab-seed.pcap)"
  grep -qF "$2" <<<"$out" || { echo "snippet $1: expected \"$2\" in:"; echo "$out"; exit 1; }
}
check_snippet ReadPackets "60 TCP segments"
check_snippet HTTPExchanges "6 exchanges"
check_snippet ExplainChains "but they are 3 requests"

# The libraries as a versioned dependency of another package.
echo "== scripts/dependent.sh"
bash scripts/dependent.sh
