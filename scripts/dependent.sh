#!/usr/bin/env bash
# Proves the libraries can be used as a versioned dependency: clones this repository (its
# committed HEAD) into a temporary directory, tags it, and builds and runs a small package that
# depends on it by URL and version (SwiftPM refuses packages with unsafe flags there, and
# checks that every product it names exists). Usage: scripts/dependent.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
root="$(pwd)"
# The libraries link libpcap and libnghttp2 (system libraries found through pkg-config): a
# package depending on hoptrace needs their headers too (scripts/setup.sh installs them).
for pc in libpcap libnghttp2; do
  pkg-config --exists "$pc" 2>/dev/null || { echo "dependent.sh: $pc's headers are missing (Debian: $pc-dev; scripts/setup.sh installs it)" >&2; exit 2; }
done
work="$(mktemp -d /tmp/hoptrace-dependent.XXXXXX)"
trap 'rm -rf "$work"' EXIT
git clone -q "$root" "$work/hoptrace"
git -C "$work/hoptrace" -c user.name=ci -c user.email=ci@localhost tag -a 0.1.0 -m "for scripts/dependent.sh"
mkdir -p "$work/app/Sources/app"
cat > "$work/app/Package.swift" <<SWIFT
// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "app",
    platforms: [.macOS(.v14)],
    dependencies: [.package(url: "file://$work/hoptrace", exact: "0.1.0")],
    targets: [
        .executableTarget(name: "app", dependencies: [
            .product(name: "HopCapture", package: "hoptrace"),
            .product(name: "HopFlows", package: "hoptrace"),
            .product(name: "HopHTTP", package: "hoptrace"),
            .product(name: "HopCorrelation", package: "hoptrace"),
            .product(name: "HopReport", package: "hoptrace"),
            .product(name: "HopNetfilter", package: "hoptrace"),
            .product(name: "HopInstaller", package: "hoptrace"),
            .product(name: "HopProxy", package: "hoptrace"),
        ]),
    ]
)
SWIFT
# The ExplainChains snippet is the app: the whole pipeline through the public API.
cp Snippets/ExplainChains.swift "$work/app/Sources/app/main.swift"
# The interception libraries' public API, compiled and linked (installing rules or serving
# needs root, so nothing of it runs here).
cat > "$work/app/Sources/app/Interception.swift" <<'SWIFT'
import HopInstaller
import HopNetfilter
import HopProxy

func interception() throws -> (rules: String, proxyPort: Int, date: String) {
    let rules = RuleInstaller(config: InterceptConfig.istio2018, runner: IptablesRunner(netns: "pod")).renderSave()
    let date = try ProcessRunner.run("/bin/date", ["-u"], timeout: 5).stdoutText
    return (rules, ProxyConfiguration().port, date)
}
SWIFT
swift build --package-path "$work/app" -q
out="$("$work/app/.build/debug/app" "$root/Captures/lab-seed.pcap")"
echo "$out" | tail -1
echo "$out" | grep -q "but they are 3 requests" || { echo "dependent.sh: unexpected output" >&2; exit 1; }
echo "dependent.sh: a package depending on hoptrace 0.1.0 by URL built and ran"
