import Foundation
import XCTest

/// HTTP/2 (h2c) captures of real peers (nghttpd, nghttp, curl, h2load) read by `hoptrace http`
/// against tshark's HTTP/2 dissector on the same file: the same streams, with the same method,
/// path and status each.
final class HTTP2CaptureTests: XCTestCase {
    /// One stream as either tool saw it: `method path status` (a field not seen is "-").
    typealias Stream = String

    /// tshark's streams: every HEADERS frame (type 1), keyed by TCP stream and stream id; the
    /// first one with :method gives the request, the first with :status the response.
    static func tsharkStreams(_ file: String, port: Int) throws -> [Stream] {
        guard let tshark = TestEnv.which("tshark") else { throw XCTSkip("no tshark (Debian: tshark; scripts/setup.sh installs it)") }
        let r = try TestEnv.run(tshark, ["-r", file, "-d", "tcp.port==\(port),http2", "-Y", "http2.type==1", "-T", "fields",
                                         "-E", "occurrence=a", "-E", "aggregator=|",
                                         "-e", "tcp.stream", "-e", "http2.streamid", "-e", "http2.type",
                                         "-e", "http2.headers.method", "-e", "http2.headers.path", "-e", "http2.headers.status"],
                                timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        var method: [String: String] = [:], path: [String: String] = [:], status: [String: String] = [:]
        var order: [String] = []
        for line in r.stdout.split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 6 else { continue }
            let ids = f[1].split(separator: "|").map(String.init), types = f[2].split(separator: "|").map(String.init)
            var methods = f[3].split(separator: "|").map(String.init)[...]
            var paths = f[4].split(separator: "|").map(String.init)[...]
            var statuses = f[5].split(separator: "|").map(String.init)[...]
            // Header values come in frame order, one per HEADERS frame that carries them.
            for (id, type) in zip(ids, types) where type == "1" {
                let key = f[0] + "/" + id
                if !order.contains(key) { order.append(key) }
                if method[key] == nil, status[key] == nil, let m = methods.first {
                    // A request block: the next method and path are its.
                    methods = methods.dropFirst()
                    method[key] = m
                    path[key] = paths.popFirst() ?? "-"
                } else if status[key] == nil, let s = statuses.first {
                    statuses = statuses.dropFirst()
                    status[key] = s
                }
            }
        }
        return order.map { "\(method[$0] ?? "-") \(path[$0] ?? "-") \(status[$0] ?? "-")" }.sorted()
    }

    /// hoptrace's streams, from `http --format jsonl`.
    static func hoptraceStreams(_ file: String) throws -> (streams: [Stream], all: Int) {
        let r = try TestEnv.run(TestEnv.hoptrace, ["http", file, "--format", "jsonl"])
        XCTAssertEqual(r.status, 0, r.stderr)
        var out: [Stream] = []
        var all = 0
        for line in r.stdout.split(separator: "\n") where !line.hasPrefix("{\"summary\":") {
            all += 1
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            guard o["http2"] is [String: Any] else { continue }
            let status = (o["status"] as? Int).map(String.init) ?? "-"
            out.append("\(o["method"] as? String ?? "-") \(o["target"] as? String ?? "-") \(status)")
        }
        return (out.sorted(), all)
    }

    func testBundledH2CCaptureHasTsharksStreams() throws {
        let file = TestEnv.captures.appendingPathComponent("h2c-nghttpd.pcap").path
        let want = try Self.tsharkStreams(file, port: 18080)
        let got = try Self.hoptraceStreams(file)
        XCTAssertEqual(want.count, 30, "the capture's streams (make-h2c-capture.sh makes 30)")
        XCTAssertEqual(got.streams, want)
        XCTAssertEqual(got.all, got.streams.count, "every exchange of the capture is an HTTP/2 stream")
    }

    /// A fresh capture made by Captures/make-h2c-capture.sh (root, nghttp2's tools): the same
    /// comparison on traffic made now.
    func testFreshH2CCaptureFromRealPeersHasTsharksStreams() throws {
        guard TestEnv.isRoot else { throw XCTSkip("needs root for the capture's network namespace") }
        for tool in ["nghttpd", "nghttp", "h2load", "tcpdump", "curl"] where TestEnv.which(tool) == nil {
            throw XCTSkip("no \(tool) (Debian: nghttp2-server, nghttp2-client; scripts/setup.sh installs them)")
        }
        let file = TestEnv.temporaryFile("h2c.pcap")
        defer { try? FileManager.default.removeItem(at: file) }
        let script = TestEnv.repoRoot.appendingPathComponent("Captures/make-h2c-capture.sh").path
        let made = try TestEnv.run("/bin/bash", [script, file.path], timeout: 120)
        XCTAssertEqual(made.status, 0, made.stderr)
        let want = try Self.tsharkStreams(file.path, port: 18080)
        let got = try Self.hoptraceStreams(file.path)
        XCTAssertEqual(want.count, 30)
        XCTAssertEqual(got.streams, want)
    }
}
