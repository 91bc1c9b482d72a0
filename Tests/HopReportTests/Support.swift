import Foundation
import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP
import HopNetfilter
import HopReport
import XCTest

let capturesDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Captures")

/// Runs a capture through every stage (as `hoptrace analyze` does) and returns the report.
func analyze(_ name: String, preset: String = "istio-2018") throws -> AnalysisReport {
    let path = capturesDir.appendingPathComponent(name).path
    let source = try PcapSource.openFile(path)
    var decoder = PacketDecoder(linkType: source.linkType)
    var cfg = CorrelatorConfiguration()
    cfg.rules = .fixed(NetfilterOracle.preset(preset)!)
    var chains: [RequestChain] = []
    let correlator = Correlator(configuration: cfg) { chains.append($0) }
    let http = HTTPAnalyzer { correlator.add($0) }
    let table = ConnectionTable(consumer: http)
    var seg = TCPSegment.empty
    while case .packet(let p) = try source.next() {
        if decoder.decode(p, into: &seg) {
            if seg.direction == .outgoing { correlator.observeLocalAddress(seg.source.address) }
            table.process(seg)
        }
    }
    table.finish()
    http.finish()
    correlator.finish()
    return AnalysisReport(
        source: "Captures/\(name)", linkType: source.linkType, decode: decoder.counters, flows: table.counters,
        http: http.counters, correlator: correlator, rulesOrigin: "given with --rules", chains: chains)
}

/// A copy of a report whose first chain carries hostile text from "the capture".
func planted(_ r: AnalysisReport, target: String, method: String = "GET") -> AnalysisReport {
    var r = r
    var c = r.chains[0]
    for i in c.hops.indices {
        c.hops[i].exchange.request?.target = target
        c.hops[i].exchange.request?.method = method
        c.hops[i].exchange.request?.headers = [("Host", "evil\"><img src=x onerror=alert(1)>")]
        c.hops[i].exchange.response?.reason = "OK;#%% <b>"
    }
    c.explanation = "explained <script>alert('x')</script> & more"
    c.evidence = ["same method and target (\(method) \(target))"]
    r.chains[0] = c
    r.source = "capture <script>.pcap"
    return r
}

/// Hop count of every chain, for sanity.
extension AnalysisReport {
    var hopCount: Int { chains.reduce(0) { $0 + $1.hops.count } }
}

/// Every match of a regular expression (NSRegularExpression; test-only).
func matches(_ pattern: String, in text: String) -> [[String]] {
    let re = try! NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines])
    let ns = text as NSString
    return re.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { m in
        (0..<m.numberOfRanges).map { m.range(at: $0).location == NSNotFound ? "" : ns.substring(with: m.range(at: $0)) }
    }
}
