import Foundation
import HopCapture
@testable import HopCorrelation
import HopFlows
import HopHTTP
import XCTest

let capturesDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Captures")

/// Runs a capture through every stage and returns the chains and the correlator.
func correlate(_ name: String, configuration: CorrelatorConfiguration) throws -> ([RequestChain], Correlator) {
    let run = try pipeline(name, configuration: configuration)
    return (run.chains, run.correlator)
}

/// What every stage of a run made: the chains, the correlator and the counters.
struct PipelineRun {
    var chains: [RequestChain]
    var correlator: Correlator
    var flows: FlowCounters
    var http: HTTPCounters
    var linkType: LinkType
    var filter: String?

    /// The warnings `hoptrace analyze` would give.
    var warnings: [AnalysisWarning] {
        AnalysisWarnings.detect(correlator: correlator, flows: flows, http: http, linkType: linkType, filter: filter)
    }
}

/// Runs a capture (through a BPF `filter`, if given) through every stage.
func pipeline(_ name: String, configuration: CorrelatorConfiguration, filter: String? = nil) throws -> PipelineRun {
    let source = try PcapSource.openFile(capturesDir.appendingPathComponent(name).path)
    if let filter { try source.setFilter(filter) }
    var decoder = PacketDecoder(linkType: source.linkType)
    var chains: [RequestChain] = []
    let correlator = Correlator(configuration: configuration) { chains.append($0) }
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
    return PipelineRun(chains: chains, correlator: correlator, flows: table.counters, http: http.counters,
                       linkType: source.linkType, filter: filter)
}
