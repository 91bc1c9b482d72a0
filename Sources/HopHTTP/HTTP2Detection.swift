import HopFlows

/// A fresh connection's first bytes, held while they may still be the HTTP/2 client preface
/// (and, before the client spoke, server bytes that may be its SETTINGS frame: an h2c server
/// speaks first). Bounded: `limit` bytes.
struct PrefaceProbe {
    var events: [(direction: FlowDirection, bytes: [UInt8], first: Int64, last: Int64)] = []
    var clientBytes: [UInt8] = []
    var serverBytes: [UInt8] = []
    static let limit = 64 * 1024

    /// Whether `bytes` (the client's first, so far) are the preface or a prefix of it.
    static func matchesPreface(_ bytes: [UInt8]) -> Bool {
        let m = min(bytes.count, http2Preface.count)
        for k in 0..<m where bytes[k] != http2Preface[k] { return false }
        return true
    }

    /// Whether `bytes` (the server's first, so far) can begin a SETTINGS frame on stream 0.
    static func mayBeServerSettings(_ b: [UInt8]) -> Bool {
        if b.count > 3 && b[3] != HTTP2FrameType.settings.rawValue { return false }
        if b.count > 4 && b[4] != 0 { return false }
        var k = 5
        while k < min(b.count, 9) {
            if b[k] != 0 { return false }
            k += 1
        }
        if b.count >= 3 {
            let len = Int(b[0]) << 16 | Int(b[1]) << 8 | Int(b[2])
            if len % 6 != 0 || len > HTTP2BoundaryScan.defaultMaxFrameSize { return false }
        }
        return true
    }
}

extension ConnectionState {
    /// Before a connection is known to be HTTP/1 or HTTP/2: judges `bytes`. Returns whether
    /// they are to go the HTTP/1 way now (held bytes, if any, were given to it first); false when
    /// they were held or given to the HTTP/2 parser.
    func probeHTTP2(_ dir: FlowDirection, _ bytes: UnsafeRawBufferPointer, first: Int64, last: Int64) -> Bool {
        guard var probe = prefaceProbe.take() else { return true }
        let event = (dir, Array(bytes), first, last)
        if midstream {
            // The first bytes of a direction decide: frames from their first byte, or not.
            probe.events.append(event)
            if dir == .clientToServer { probe.clientBytes.append(contentsOf: bytes) } else { probe.serverBytes.append(contentsOf: bytes) }
            let held = dir == .clientToServer ? probe.clientBytes : probe.serverBytes
            let preface = dir == .clientToServer && PrefaceProbe.matchesPreface(held)
            let verdict: Bool? = preface ? (held.count >= http2Preface.count ? true : nil)
                : held.withUnsafeBytes { HTTP2BoundaryScan.midstreamVerdict($0) }
            switch verdict {
            case true?:
                startHTTP2(preface: preface)
                for e in probe.events {
                    e.bytes.withUnsafeBytes { http2!.consume(e.direction == .clientToServer ? 0 : 1, $0, first: e.first, last: e.last) }
                }
            case nil where probe.clientBytes.count + probe.serverBytes.count <= PrefaceProbe.limit:
                prefaceProbe = probe
            default:
                replayAsHTTP1(probe)
            }
            return false
        }
        if dir == .clientToServer {
            probe.clientBytes.append(contentsOf: bytes)
            if PrefaceProbe.matchesPreface(probe.clientBytes) {
                probe.events.append(event)
                if probe.clientBytes.count >= http2Preface.count {
                    startHTTP2(preface: true)
                    for e in probe.events {
                        e.bytes.withUnsafeBytes { http2!.consume(e.direction == .clientToServer ? 0 : 1, $0, first: e.first, last: e.last) }
                    }
                } else {
                    prefaceProbe = probe
                }
                return false
            }
        } else if probe.clientBytes.isEmpty || PrefaceProbe.matchesPreface(probe.clientBytes) {
            probe.serverBytes.append(contentsOf: bytes)
            if PrefaceProbe.mayBeServerSettings(probe.serverBytes)
                && probe.serverBytes.count + probe.clientBytes.count <= PrefaceProbe.limit {
                probe.events.append(event)
                prefaceProbe = probe
                return false
            }
        }
        replayAsHTTP1(probe)
        return true
    }

    /// Ends an undecided probe (a gap, the connection's end): its bytes are HTTP/1's.
    func settlePrefaceProbe() {
        guard let probe = prefaceProbe.take() else { return }
        replayAsHTTP1(probe)
    }

    private func replayAsHTTP1(_ probe: PrefaceProbe) {
        for e in probe.events {
            e.bytes.withUnsafeBytes { analyzer.http1Data(self, e.direction, $0, first: e.first, last: e.last) }
        }
    }

    /// Whether a 101's Upgrade field names h2c.
    static func upgradesToH2C(_ headers: HTTPHeaders) -> Bool {
        headers.values(for: "upgrade").contains { $0.split(separator: ",").contains { $0.trimmingASCIISpaces().lowercasedASCII() == "h2c" } }
    }

    /// After `101 Switching Protocols` to h2c: the client sends the preface, the server its
    /// SETTINGS, and stream 1 carries the response to `request` (RFC 7540 §3.2).
    func startUpgradedHTTP2(request: HTTPRequest) {
        startHTTP2(preface: true)
        analyzer.counters.http2.upgradeConnections += 1
        analyzer.counters.http2.prefaceConnections -= 1
        http2!.adoptUpgradedRequest(request)
    }

    private func startHTTP2(preface: Bool) {
        rolesSettled = true
        roleProbe = nil
        kind = .http2
        http2 = HTTP2Connection(conn: self, preface: preface, firstSequence: nextSequence)
    }
}
