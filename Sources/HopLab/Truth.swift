import Foundation

/// One request's ground truth: the downstream exchange (the client's tuple and the request's
/// index on that connection, by time), the id the sidecar gave it, and the upstream connection
/// the app saw it on. Written one per line to NAME.truth.jsonl for the correlator's tuning.
public struct TruthRecord: Codable, Equatable, Sendable {
    /// The downstream connection's client tuple, as the sidecar saw it (ip:port).
    public var client: String
    /// 0-based index of this request on that connection, in time order.
    public var index: Int
    /// The sidecar's x-request-id (nil for hoptrace's own proxy: its truth is the access log's tuples).
    public var requestId: String?
    /// The upstream connection's client tuple (the sidecar's local address toward the app).
    public var upstream: String?
    public var method: String
    public var target: String
    public var status: Int
    /// HAProxy's %bi:%bp: its own account of the upstream tuple (cross-check of `upstream`).
    public var backendSource: String?
    /// Seconds since the epoch when the sidecar logged it.
    public var time: Double?

    public init(client: String, index: Int, requestId: String?, upstream: String?, method: String, target: String, status: Int,
                backendSource: String? = nil, time: Double? = nil) {
        self.client = client; self.index = index; self.requestId = requestId; self.upstream = upstream
        self.method = method; self.target = target; self.status = status; self.backendSource = backendSource; self.time = time
    }
}

/// The truth from a third-party sidecar's log joined with the app's log by request id.
public struct JoinedTruth: Sendable {
    public var records: [TruthRecord] = []
    /// Sidecar lines left out of the truth: connections that sent no request (`<BADREQ>`).
    public var excluded: [SidecarLogRecord] = []
    /// Requests the sidecar logged that the app did not (or the other way round), and tuples
    /// on which HAProxy's backend source and the app's peer disagree.
    public var problems: [String] = []

    public init(records: [TruthRecord] = [], excluded: [SidecarLogRecord] = [], problems: [String] = []) {
        self.records = records; self.excluded = excluded; self.problems = problems
    }

    public func jsonl() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return records.map { String(decoding: (try? e.encode($0)) ?? Data(), as: UTF8.self) + "\n" }.joined()
    }

    public static func join(sidecar: [SidecarLogRecord], app: [AppLogRecord]) -> JoinedTruth {
        var t = JoinedTruth()
        var appByID: [String: AppLogRecord] = [:]
        var dupIDs = 0
        for a in app where a.requestId != "-" {
            if appByID[a.requestId] != nil { dupIDs += 1 }
            appByID[a.requestId] = a
        }
        if dupIDs > 0 { t.problems.append("\(dupIDs) request id\(dupIDs == 1 ? "" : "s") logged more than once by the app") }
        let good = sidecar.filter { !$0.badRequest }
        t.excluded = sidecar.filter(\.badRequest)
        let byClient = Dictionary(grouping: good, by: \.client)
        var seen = Set<String>()
        for client in byClient.keys.sorted() {
            let rs = byClient[client]!.sorted { ($0.order, $0.time) < ($1.order, $1.time) }
            for (i, r) in rs.enumerated() {
                let a = appByID[r.requestId]
                seen.insert(r.requestId)
                if a == nil && r.status != 400 {
                    t.problems.append("\(r.method) \(r.target) from \(client) (id \(r.requestId)): the sidecar logged it, the app did not")
                }
                if let a, let b = r.backendSource, b != "-", b != a.peer {
                    t.problems.append("id \(r.requestId): HAProxy says it went out from \(b), the app saw it from \(a.peer)")
                }
                t.records.append(TruthRecord(client: client, index: i, requestId: r.requestId, upstream: a?.peer, method: r.method,
                                             target: r.target, status: r.status, backendSource: r.backendSource, time: r.time))
            }
        }
        let unlogged = app.filter { $0.requestId != "-" && !seen.contains($0.requestId) }
        if !unlogged.isEmpty {
            t.problems.append("\(unlogged.count) request\(unlogged.count == 1 ? "" : "s") the app logged that the sidecar did not (first id \(unlogged[0].requestId))")
        }
        let noID = app.filter { $0.requestId == "-" }.count
        if noID > 0 { t.problems.append("\(noID) request\(noID == 1 ? "" : "s") reached the app without an x-request-id") }
        return t
    }
}
