import HopCapture
import HopFlows
@testable import HopHTTP
import HopTestSupport
import XCTest

/// One scripted stream event.
enum Step {
    case c2s(String, Int64)
    case s2c(String, Int64)
    case c2sBytes([UInt8], Int64)
    case s2cBytes([UInt8], Int64)
    case gap(FlowDirection, Int, Int64)
}

/// How `.data` steps are cut into chunks.
enum Split {
    case whole
    /// Every step cut into `n`-byte chunks.
    case chunks(Int)
    /// Step `step` cut once at `at`.
    case once(step: Int, at: Int)
    /// Every step cut at random points.
    case random(seed: UInt64)
}

struct RunResult {
    var exchanges: [HTTPExchange]
    var counters: HTTPCounters
    var summaries: [HTTPConnectionSummary]
}

let clientEP = Endpoint(IPAddress(ipv4: 0xC612_0001), 40000)
let serverEP = Endpoint(IPAddress(ipv4: 0xC612_0002), 80)

func makeConnection(id: Int = 1, handshake: Bool = true) -> Connection {
    Connection(id: ConnectionID(id), client: clientEP, server: serverEP, firstTimestamp: 0, sawHandshake: handshake)
}

func bytes(of step: Step) -> (FlowDirection, [UInt8], Int64)? {
    switch step {
    case .c2s(let s, let t): (.clientToServer, Array(s.utf8), t)
    case .s2c(let s, let t): (.serverToClient, Array(s.utf8), t)
    case .c2sBytes(let b, let t): (.clientToServer, b, t)
    case .s2cBytes(let b, let t): (.serverToClient, b, t)
    case .gap: nil
    }
}

/// Feeds `steps` to a fresh analyzer; `close` nil means `finish()` instead of a close event.
func feed(_ steps: [Step], split: Split = .whole, handshake: Bool = true, close: CloseReason? = .fin,
         configuration: HTTPConfiguration = .init()) -> RunResult {
    var out: [HTTPExchange] = []
    var summaries: [HTTPConnectionSummary] = []
    let analyzer = HTTPAnalyzer(configuration: configuration) { out.append($0) }
    analyzer.onConnectionSummary = { summaries.append($0) }
    var conn = makeConnection(handshake: handshake)
    analyzer.handle(.opened(conn))
    var rng = SplitMix(state: 0)
    if case .random(let seed) = split { rng = SplitMix(state: seed) }
    for (index, step) in steps.enumerated() {
        if case .gap(let dir, let len, let t) = step {
            analyzer.handle(.gap(conn.id, dir, length: len, at: t))
            continue
        }
        let (dir, data, t) = bytes(of: step)!
        var cuts: [Int] = []
        switch split {
        case .whole: break
        case .chunks(let n): cuts = Array(stride(from: n, to: data.count, by: n))
        case .once(let s, let at): if s == index && at > 0 && at < data.count { cuts = [at] }
        case .random:
            var p = 0
            while true {
                p += Int(rng.next() % 7) + 1
                if p >= data.count { break }
                cuts.append(p)
            }
        }
        var start = 0
        for end in cuts + [data.count] {
            // A fresh allocation per chunk so a parser keeping a pointer would be caught.
            let chunk = Array(data[start..<end])
            chunk.withUnsafeBytes { analyzer.handle(.data(conn.id, dir, $0, first: t, last: t)) }
            start = end
        }
    }
    if let close {
        conn.closeReason = close
        analyzer.handle(.closed(conn))
    } else {
        analyzer.finish()
    }
    return RunResult(exchanges: out, counters: analyzer.counters, summaries: summaries)
}

/// Runs whole, then with every single cut point, 1-byte chunks and random cuts, and checks
/// every run gives exactly the same exchanges and counters. Returns the whole run.
@discardableResult
func runSplitInvariant(_ steps: [Step], handshake: Bool = true, close: CloseReason? = .fin,
                       configuration: HTTPConfiguration = .init(), everyCut: Bool = true,
                       file: StaticString = #filePath, line: UInt = #line) -> RunResult {
    let base = feed(steps, split: .whole, handshake: handshake, close: close, configuration: configuration)
    var splits: [Split] = [.chunks(1), .chunks(2), .chunks(3), .chunks(7)]
    for seed in 1...8 { splits.append(.random(seed: UInt64(seed))) }
    if everyCut {
        for (i, s) in steps.enumerated() {
            guard let (_, data, _) = bytes(of: s) else { continue }
            for at in 1..<max(1, data.count) { splits.append(.once(step: i, at: at)) }
        }
    }
    for split in splits {
        let r = feed(steps, split: split, handshake: handshake, close: close, configuration: configuration)
        if r.exchanges != base.exchanges || r.counters != base.counters || r.summaries != base.summaries {
            XCTFail("split \(split) changes the result:\nwhole: \(describe(base))\nsplit: \(describe(r))", file: file, line: line)
            return base
        }
    }
    return base
}

func describe(_ r: RunResult) -> String {
    r.exchanges.map(describe).joined(separator: "\n") + "\ncounters: "
        + r.counters.report.map { "\($0.name)=\($0.count)" }.joined(separator: " ")
}

func describe(_ x: HTTPExchange) -> String {
    var s = "#\(x.sequence) pos=\(x.pipelinePosition) \(x.flags)"
    if let q = x.request {
        s += " | \(q.method) \(q.target) \(q.version) body=\(q.bodyLength)-\(q.bodyMissing) \(q.framing) complete=\(q.complete) t=\(q.firstTimestamp)…\(q.lastTimestamp)"
    } else {
        s += " | (no request)"
    }
    if let r = x.response {
        s += " | \(r.status) \(r.reason) body=\(r.bodyLength)-\(r.bodyMissing) \(r.framing) complete=\(r.complete) interim=\(r.interim.map(\.status)) t=\(r.firstTimestamp)…\(r.lastTimestamp)"
    } else {
        s += " | (no response)"
    }
    return s
}

/// `HTTP/1.1 <status> OK` with a body and Content-Length, tagged with `X-Seq`.
func okResponse(_ seq: Int, body: String = "", extra: String = "") -> String {
    "HTTP/1.1 200 OK\r\nX-Seq: \(seq)\r\nContent-Length: \(body.utf8.count)\r\n\(extra)\r\n\(body)"
}

func getRequest(_ path: String, extra: String = "") -> String {
    "GET \(path) HTTP/1.1\r\nHost: example.test\r\n\(extra)\r\n"
}
