import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP

/// source → flows → HTTP → correlation on one thread (a live source's capture thread only
/// queues packets for it: `PcapSource`, `PacketQueue`), each exchange reported as it
/// completes (`watch`): a proxy's upstream copy completes first and is handed over at once
/// (`onUpstream`), every chain when its downstream copy completes (`onChain`). A file is
/// replayed the same way, its upstream copies handed over just before their chain.
public enum WatchPipeline {
    public struct Outcome {
        public var result: PipelineResult
        public var summary: AnalysisSummary
        public var chains = 0
        public var multiHop = 0
        public var incomplete = 0
        public var unansweredRequests = 0
        public var http: HTTPCounters
        public var warnings: [AnalysisWarning]
        /// A live capture's losses and what they explain (nil for a file).
        public var loss: LossAttribution.Figures?
    }

    /// `threaded` (a live capture with no limit): the correlation and `onUpstream`/`onChain`
    /// run on a thread of their own, fed the exchanges in order through a `HandOff`; the
    /// source's `onBatchDone` then runs on that thread too, after the exchanges of the batch.
    /// `shouldStop` is then not consulted by the reading thread.
    public static func run(source: PcapSource, settings: AnalysisSettings, raw: ((RawPacket) -> Void)? = nil,
                           threaded: Bool = false,
                           onUpstream: @escaping (Hop) -> Void, onChain: @escaping (RequestChain) -> Void,
                           shouldStop: @escaping () -> Bool) -> Outcome {
        var configuration = settings.correlator
        // Live, the pod's addresses come from the namespace: decide at the first exchange.
        if source.isLive { configuration.inferenceSample = 1 }
        // Live, an upstream copy is classified (and reported) as it completes; see below.
        let early = source.isLive
        var chains = 0, multiHop = 0, incomplete = 0
        var attribution = LossAttribution()
        let correlator = Correlator(configuration: configuration) { chain in
            chains += 1
            if chain.isMultiHop { multiHop += 1 }
            if chain.isIncomplete {
                incomplete += 1
                if early { attribution.incompleteChain(chain) }
            }
            if !early { for hop in chain.hops where hop.role.isUpstream { onUpstream(hop) } }
            onChain(chain)
        }
        // A file is read
        // faster than that: classifying an exchange decides the pod's addresses and the rules,
        // which a file leaves to the first exchanges (`inferenceSample`); its upstream copies
        // are reported with their chain, before its downstream copy.
        let analyse: (HTTPExchange) -> Void = { x in
            if early, x.response == nil, let q = x.request {
                attribution.unansweredRequest(from: q.firstTimestamp, to: q.lastTimestamp)
            }
            if early {
                let (role, _) = correlator.role(of: x)
                if role.isUpstream { onUpstream(Hop(role: role, exchange: x, rule: .none, attempt: 0, roleReason: "")) }
            }
            correlator.add(x)
        }
        let pairing = threaded ? HandOff<PairingInput>(batchSize: 128) { input in
            if case .exchange(let x) = input { analyse(x) } else { input.feed(correlator) }
        } : nil
        let local = LocalAddresses()
        if let pairing {
            // Lines are written out on the pairing thread, after each batch it was handed; the
            // reading thread hands over what it has at the end of each batch of packets.
            pairing.onBatchEnd = source.onBatchDone
            source.onBatchDone = { pairing.flush() }
            correlator.localAddressSource = { local.snapshot() }
        }
        let http = HTTPAnalyzer(configuration: settings.http) { x in
            if let pairing { pairing.send(.exchange(x)) } else { analyse(x) }
        }
        http.onConnectionSummary = { s in
            guard let end = PairingInput(s) else { return }
            if let pairing { pairing.send(end) } else { end.feed(correlator) }
        }
        let result = FlowPipeline.run(source: source, consumer: http, raw: raw, observe: { seg in
            guard seg.direction == .outgoing else { return }
            if threaded { local.insert(seg.source.address) } else { correlator.observeLocalAddress(seg.source.address) }
        }, shouldStop: threaded ? { false } : shouldStop)
        http.finish()
        pairing?.finish()
        if threaded { source.onBatchDone = pairing?.onBatchEnd }
        correlator.finish()
        let warnings = AnalysisWarnings.detect(correlator: correlator, flows: result.flows, http: http.counters,
                                               linkType: result.linkType, filter: settings.filter,
                                               interfaces: result.interfaceCount)
        var loss: LossAttribution.Figures? = nil
        if let st = result.statistics {
            loss = attribution.figures(windows: st.lossWindows, lostPackets: st.lost)
        }
        return Outcome(result: result, summary: correlator.summary, chains: chains, multiHop: multiHop, incomplete: incomplete,
                       unansweredRequests: http.counters.unansweredRequests, http: http.counters, warnings: warnings, loss: loss)
    }
}

extension WatchPipeline.Outcome {
    /// The final summary object of `watch --format jsonl`: the counters, the chains, the
    /// warnings.
    public func summaryJSON() -> String {
        let s = summary
        return result.summaryJSON(extra: [("http", http.report), ("chains", [
            ("exchanges", s.exchanges, "HTTP exchanges"), ("chains", chains, "chains reported"),
            ("multiHop", multiHop, "chains with more than one hop"),
            ("unexplainedDuplicates", s.unexplainedDuplicates, "requests sent twice with no proxy to explain it"),
            ("incomplete", incomplete, "chains missing a hop"),
        ])] + lossSection, warnings: warnings)
    }

    /// A live capture's losses and what they explain, as a summary section (none for a file).
    var lossSection: [PipelineResult.Section] {
        guard let l = loss else { return [] }
        return [("loss", [
            ("lostPackets", l.lostPackets, "packets lost before analysis (kernel and queue)"),
            ("windows", l.windows, "spans of time in which packets were lost"),
            ("incompleteChains", l.incompleteChains, "incomplete chains within a loss window: their missing hop was likely lost"),
            ("unansweredRequests", l.unansweredRequests, "requests without a response whose response would have come in a loss window"),
        ])]
    }

    /// What `watch` says on standard error when it stops, as tcpdump does.
    public func counterLines() -> [String] {
        let s = summary
        var lines = ["\(s.exchanges) exchanges, \(chains) chains (\(multiHop) multi-hop), \(s.unexplainedDuplicates) unexplained duplicate\(s.unexplainedDuplicates == 1 ? "" : "s"), \(incomplete) incomplete chain\(incomplete == 1 ? "" : "s")",
                     "\(result.decode.packets) packets captured"]
        if let st = result.statistics {
            lines.append("\(st.received) packets received by filter")
            lines.append("\(st.dropped) packets dropped by kernel")
            lines.append("\(st.interfaceDropped) packets dropped by interface")
            if let q = st.queue { lines.append(PipelineResult.queueText(q)) }
        }
        if let l = loss, l.lostPackets > 0 {
            let span = l.first.flatMap { f in l.last.map { " between \(Timestamp.timeOfDay(f)) and \(Timestamp.timeOfDay($0))" } } ?? ""
            lines.append("\(l.lostPackets) packets lost before analysis, in \(l.windows) window\(l.windows == 1 ? "" : "s")\(span): "
                         + "\(l.incompleteChains) of the \(incomplete) incomplete chains lie in them (a hop lost with the packets, not missing on the wire)")
            lines.append("\(result.flows.closedIdle) idle connections expired, \(unansweredRequests - l.unansweredRequests) requests unanswered "
                         + "(and \(l.unansweredRequests) whose response would have come while packets were lost)")
        } else {
            lines.append("\(result.flows.closedIdle) idle connections expired, \(unansweredRequests) requests unanswered")
        }
        return lines
    }
}
