// swift-tools-version: 6.1
import PackageDescription

// No unsafe flags: SwiftPM refuses packages with them as versioned dependencies. The hot
// stages keep exclusivity checks off only where they mark it themselves (`@exclusivity(unchecked)`
// on single-thread state); dropping the module-wide `-enforce-exclusivity=unchecked` cost 0–7% of
// CPU time on the identical-load capture (http 67.9 → 72.7 ms user, analyze 136.3 → 136.7,
// analyze --format json 199.7 → 204.5; hyperfine, 15 runs each, same machine and run).

let package = Package(
    name: "hoptrace",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "hoptrace", targets: ["hoptrace"]),
        .library(name: "HopCapture", targets: ["HopCapture"]),
        .library(name: "HopFlows", targets: ["HopFlows"]),
        .library(name: "HopHTTP", targets: ["HopHTTP"]),
        .library(name: "HopNetfilter", targets: ["HopNetfilter"]),
        .library(name: "HopCorrelation", targets: ["HopCorrelation"]),
        .library(name: "HopReport", targets: ["HopReport"]),
        .library(name: "HopInstaller", targets: ["HopInstaller"]),
        .library(name: "HopProxy", targets: ["HopProxy"]),
        .library(name: "HopLab", targets: ["HopLab"]),
        .library(name: "HopPipeline", targets: ["HopPipeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // `swift package generate-documentation`: the libraries' DocC catalogs (a plugin only:
        // nothing of it is linked).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // HdrHistogram: the latency percentiles of the reports (p50…p99.9, max) in bounded
        // memory, 3 significant digits, however many requests.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // libpcap, through its own header; Debian: libpcap-dev.
        .systemLibrary(
            name: "CPcap",
            pkgConfig: "libpcap",
            providers: [.apt(["libpcap-dev"])]
        ),
        // epoll, eventfd and accept4 for the proxy's own event loop (not in Swift's Glibc module).
        .target(name: "CHopSys"),
        // HTTP/2 header blocks (HPACK) are decoded by nghttp2's inflater (the maintained library
        // behind curl, nghttpd and h2load), through its own header; Debian: libnghttp2-dev.
        // It replaced NIOHPACK (swift-nio-http2), whose API made a String per name and value:
        // `http` on the h2c benchmark capture 1,712M -> 1,342M instructions. Dropping
        // swift-nio-http2 (and with it NIOHPACK, NIOHTTP1, NIO, NIOPosix in the release binary),
        // a clean release build on this 2-core machine, one after the other, CPU time
        // (user+sys): 341.6 s (99bf265) -> 287.7 s (-54 s, -16%); wall 287 s -> 248 s (shared
        // cores, load average ~3.7 both times); the stripped binary 9.7 MB -> 7.5 MB.
        .systemLibrary(
            name: "CNghttp2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        // Stage 1: capture sources and zero-copy decoders down to TCP segments.
        .target(name: "HopCapture", dependencies: ["CPcap"]),
        // Stage 2: TCP connection table and reassembly (joins NAT-split halves).
        .target(name: "HopFlows", dependencies: ["HopCapture"]),
        // Stage 3: incremental HTTP/1.x and HTTP/2 (h2c) parsers over reassembled streams.
        .target(name: "HopHTTP", dependencies: ["HopFlows", "HopCapture", "CNghttp2"]),
        // A value model of iptables nat/mangle rules: parse, render, evaluate; presets.
        // Shared by the correlator's explanations and HopInstaller.
        .target(name: "HopNetfilter"),
        // Stage 4: pairs the copies of each request across proxy hops and explains them.
        .target(name: "HopCorrelation", dependencies: ["HopHTTP", "HopFlows", "HopCapture", "HopNetfilter"]),
        // Stage 5: renderers (text, JSON, Mermaid, HTML) and expectation checks.
        .target(name: "HopReport", dependencies: ["HopCorrelation", "HopHTTP", "HopFlows", "HopCapture",
                                                  .product(name: "Histogram", package: "hdrhistogram-swift")]),
        // The rule installer: a HopNetfilter rule set installed, shown and removed with
        // iptables-restore (atomic, rolled back on failure), in a named network namespace when
        // asked; and the package's one process runner (posix_spawn, no Foundation Process).
        .target(name: "HopInstaller", dependencies: ["HopNetfilter"]),
        // The transparent proxy: its own epoll reactors, the original destination of REDIRECTed
        // connections, HTTP/1 framing and forwarding, raw relays, the access log, the runtime
        // (bind, drop root, drain). NIOCore for ByteBuffer and SocketAddress only.
        .target(
            name: "HopProxy",
            dependencies: [
                "CHopSys",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // The lab: scenes in network namespaces (sidecars: hoptrace's proxy, HAProxy, nginx),
        // their traffic and capture, ground truth from the peers' own logs, the verifier and
        // the pairing metrics (calibration, the timing-only baseline).
        // The lab's peers (the app, the client, nginx's configuration, wrk's and curl's scripts)
        // are files, embedded in the code: the binary needs no resource bundle beside it.
        .target(name: "HopLab", dependencies: ["HopInstaller", "HopNetfilter", "HopReport"],
                resources: [.embedInCode("Scripts/app.py"), .embedInCode("Scripts/client.py"), .embedInCode("Scripts/nginx.conf"),
                            .embedInCode("Scripts/wrk-unique.lua"), .embedInCode("Scripts/curl-loop.sh"),
                            .embedInCode("Scripts/h2c-clients.sh"), .embedInCode("Scripts/grpc-peer.py")]),
        // The stages wired together for files, live captures and namespaces: capture sources
        // (`--netns`), the flow pipeline, the analysis (its capture, pairing and writing
        // threads), watch's one-thread pipeline, and one rule source (preset | file | live | auto).
        .target(
            name: "HopPipeline",
            dependencies: ["CHopSys", "HopCapture", "HopFlows", "HopHTTP", "HopNetfilter", "HopCorrelation", "HopReport", "HopInstaller"]
        ),
        // The command line: argument parsing and output choice.
        .executableTarget(
            name: "hoptrace",
            dependencies: [
                "HopCapture", "HopFlows", "HopHTTP", "HopNetfilter", "HopCorrelation", "HopReport", "HopInstaller", "HopProxy", "HopLab", "HopPipeline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The fuzz targets (capture → reports, the HTTP parser, the rule parser and evaluator,
        // the proxy's framing) and their driver: libFuzzer's entry point when built with
        // `-sanitize=fuzzer -DFUZZING` (scripts/fuzz.sh), else a replayer of kept inputs.
        .target(
            name: "HopFuzz",
            dependencies: ["HopCapture", "HopFlows", "HopHTTP", "HopNetfilter", "HopCorrelation", "HopReport", "HopProxy"]
        ),
        .executableTarget(name: "hoptrace-fuzz", dependencies: ["HopFuzz"]),
        // Packet builders, paths and process running (through HopInstaller's runner), shared by
        // the test targets.
        .target(name: "HopTestSupport", dependencies: ["HopCapture", "HopInstaller"], path: "Tests/HopTestSupport"),
        .testTarget(name: "HopCaptureTests", dependencies: ["HopCapture", "HopTestSupport"]),
        // Runs the built `hoptrace` binary: messages, exit codes, live capture in a namespace.
        .testTarget(name: "CLITests", dependencies: ["hoptrace", "HopCapture", "HopReport", "HopTestSupport"]),
        .testTarget(name: "HopFlowsTests", dependencies: ["HopFlows", "HopTestSupport"]),
        // Header blocks encoded by nghttp2's deflater (a real peer's encoder).
        .testTarget(name: "HopHTTPTests", dependencies: ["HopHTTP", "HopFlows", "HopCapture", "CNghttp2", "HopTestSupport"]),
        .testTarget(name: "HopNetfilterTests", dependencies: ["HopNetfilter"]),
        .testTarget(name: "HopPipelineTests", dependencies: ["HopPipeline", "HopCapture", "HopFlows", "HopCorrelation", "HopReport"]),
        // Replays every input the fuzzers kept (Tests/HopFuzzTests/Inputs) through its target.
        .testTarget(name: "HopFuzzTests", dependencies: ["HopFuzz"], resources: [.copy("Inputs")]),
        .testTarget(name: "HopCorrelationTests", dependencies: ["HopCorrelation", "HopHTTP", "HopFlows", "HopCapture", "HopNetfilter", "HopTestSupport"]),
        .testTarget(name: "HopReportTests", dependencies: ["HopReport", "HopCorrelation", "HopCapture", "HopFlows", "HopHTTP", "HopNetfilter"]),
        // The rule installer against real iptables in namespaces made for each test (root).
        .testTarget(name: "HopInstallerTests", dependencies: ["HopInstaller", "HopNetfilter", "hoptrace", "HopTestSupport"]),
        // The proxy: its framing, reactor and access log, and forwarding in namespaces (root);
        // the scripted peers of the forwarding tests run on SwiftNIO.
        .testTarget(
            name: "HopProxyTests",
            dependencies: [
                "HopProxy", "HopInstaller", "HopNetfilter", "hoptrace", "HopTestSupport",
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        // Runs `hoptrace lab` scenarios and `hoptrace check` through the built binary.
        .testTarget(name: "LabTests", dependencies: ["hoptrace", "HopReport", "HopLab", "HopTestSupport"]),
    ]
)
