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
    let source = try PcapSource.openFile(capturesDir.appendingPathComponent(name).path)
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
    return (chains, correlator)
}
