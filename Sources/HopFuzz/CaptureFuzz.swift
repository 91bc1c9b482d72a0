import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP
import HopNetfilter
import HopReport

/// Capture bytes through every stage, as `hoptrace analyze` runs them, then every report.
/// A file libpcap refuses is an input error (fine); nothing past that may crash.
enum CaptureFuzz {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        guard let source = try? PcapSource.openMemory(Array(bytes), name: "fuzz.pcap") else { return }
        var decoder = PacketDecoder(linkType: source.linkType)
        var configuration = CorrelatorConfiguration()
        configuration.rules = .fixed(NetfilterOracle.preset("istio-2018")!)
        var chains: [RequestChain] = []
        var exchangeLines = 0
        let correlator = Correlator(configuration: configuration) { chains.append($0) }
        let http = HTTPAnalyzer { x in
            exchangeLines += JSONReport.exchange(x).utf8.count
            correlator.add(x)
        }
        let table = ConnectionTable(consumer: http)
        var segment = TCPSegment.empty
        while true {
            guard case .packet(let p)? = try? source.next() else { break }
            if decoder.decode(p, into: &segment) {
                if segment.direction == .outgoing { correlator.observeLocalAddress(segment.source.address) }
                table.process(segment)
            }
        }
        table.finish()
        http.finish()
        correlator.finish()
        let report = AnalysisReport(
            source: "fuzz.pcap", linkType: source.linkType, decode: decoder.counters, flows: table.counters,
            http: http.counters, correlator: correlator, rulesOrigin: "fuzz", chains: chains)
        var total = exchangeLines
        total += TextReport.render(report).utf8.count
        total += JSONReport.document(report).utf8.count
        for chain in chains { total += JSONReport.chain(chain, report: report).utf8.count }
        total += JSONReport.trailer(report).utf8.count
        total += MermaidReport.render(report).utf8.count
        total += HTMLReport.render(report).utf8.count
        promise(total > 0, "every report is empty")
    }
}
