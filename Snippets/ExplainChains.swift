// Pairs the copies of each request across a sidecar's hops and explains them (HopCorrelation),
// then prints the report hoptrace analyze prints (HopReport).
//
//   swift run ExplainChains [FILE]    (default: Captures/lab-seed.pcap)
import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP
import HopReport

let path = CommandLine.arguments.dropFirst().first ?? "Captures/lab-seed.pcap"
do {
    let source = try PcapSource.openFile(path)
    var decoder = PacketDecoder(linkType: source.linkType)
    var configuration = CorrelatorConfiguration()
    // Look at the capture for a sidecar's traces and pick the matching rule preset.
    configuration.rules = .auto(presets: { NetfilterOracle.preset($0) })
    var chains: [RequestChain] = []
    let correlator = Correlator(configuration: configuration) { chains.append($0) }
    let http = HTTPAnalyzer { correlator.add($0) }
    let table = ConnectionTable(configuration: FlowConfiguration(), consumer: http)
    var segment = TCPSegment.empty
    reading: while true {
        switch try source.next() {
        case .packet(let packet): if decoder.decode(packet, into: &segment) { table.process(segment) }
        case .timeout: continue
        case .end: break reading
        }
    }
    table.finish()
    http.finish()
    correlator.finish()
    for chain in chains {
        print("chain \(chain.id) (confidence \(chain.confidence)): \(chain.explanation)")
    }
    let report = AnalysisReport(
        source: path, linkType: source.linkType.name, packets: decoder.counters.packets,
        connections: table.counters.connections, rulesName: correlator.rules.name, rulesOrigin: "auto",
        podAddresses: correlator.podAddresses.sorted().map(\.description),
        podAddressesInferred: correlator.podAddressesInferred, summary: correlator.summary, chains: chains,
        duplicates: correlator.duplicates, counters: [])
    print(report.answer)
} catch {
    print("\(path): \(error)")
}
