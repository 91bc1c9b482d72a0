// Reassembles a capture's TCP connections and parses HTTP/1.x over them (HopFlows, HopHTTP).
//
//   swift run HTTPExchanges [FILE]    (default: Captures/lab-seed.pcap)
import HopCapture
import HopFlows
import HopHTTP

let path = CommandLine.arguments.dropFirst().first ?? "Captures/lab-seed.pcap"
do {
    let source = try PcapSource.openFile(path)
    var decoder = PacketDecoder(linkType: source.linkType)
    // Each exchange (a request and its response) is handed over as its response completes.
    let http = HTTPAnalyzer { x in
        let request = x.request.map { "\($0.method) \($0.target)" } ?? "(no request)"
        let status = x.response.map { String($0.status) } ?? "-"
        print("\(x.connection.client) → \(x.connection.server)  \(request)  \(status)")
    }
    // The table joins the two halves of a connection (and NAT-split halves on lo) and hands
    // ordered stream events (opened, data, gap, closed) to the analyzer.
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
    print("\(http.counters.report.first { $0.name == "exchanges" }?.count ?? 0) exchanges")
} catch {
    print("\(path): \(error)")
}
