import HopFlows

/// HTTP analysis split between the thread that reassembles (the caller's) and a second one, so
/// the two threads carry about the same load: reading and reassembly alone are the lighter
/// half, HTTP parsing the heavier.
///
/// Connections are shared out by id: one in `nearShare` is analysed right here, on the calling
/// thread ("near"); the others are handed with their stream events to a `StreamEventPipe`
/// whose thread runs a second analyzer ("far"). Exchanges found near ride the same pipe as
/// parcels, so `onExchange` sees every exchange on the far thread, in exactly the order one
/// analyzer would have emitted them (each is queued at the event that completed it).
///
/// Use from one thread: `handle` for every event, then `finish()`. `counters` are complete
/// after `finish()`.
public final class SplitHTTPAnalyzer: StreamEventConsumer {
    private let near: HTTPAnalyzer
    private let far: HTTPAnalyzer
    private let pipe: StreamEventPipe
    private let nearShare: Int

    /// - Parameters:
    ///   - nearShare: one connection in this many is analysed on the calling thread (about the
    ///     share of the work that evens the two threads out when reading and reassembly cost
    ///     half of what HTTP costs: 3).
    ///   - onExchange: runs on the pipe's thread.
    public init(configuration: HTTPConfiguration = .init(), nearShare: Int = 3,
                onExchange: @escaping (HTTPExchange) -> Void) {
        precondition(nearShare >= 1)
        self.nearShare = nearShare
        far = HTTPAnalyzer(configuration: configuration, onExchange: onExchange)
        let pipe = StreamEventPipe(consumer: far)
        self.pipe = pipe
        near = HTTPAnalyzer(configuration: configuration) { x in
            pipe.send(ExchangeParcel(x, onExchange))
        }
    }

    @inline(__always)
    private func isNear(_ id: ConnectionID) -> Bool { id.value % nearShare == 0 }

    public func handle(_ event: StreamEvent) {
        let id: ConnectionID
        switch event {
        case .opened(let c), .closed(let c): id = c.id
        case .data(let i, _, _, _, _), .gap(let i, _, _, _): id = i
        }
        if isNear(id) { near.handle(event) } else { pipe.handle(event) }
    }

    /// Ends the connections still open (near ones first, then far ones) and waits until
    /// every exchange has been delivered.
    public func finish() {
        near.finish()
        let far = self.far
        pipe.finish(then: { far.finish() })
    }

    /// Both analyzers' counts.
    public var counters: HTTPCounters {
        var c = near.counters
        c += far.counters
        return c
    }
}

/// An exchange found on the producing thread, delivered on the consumer's.
private final class ExchangeParcel: PipeParcel {
    let exchange: HTTPExchange
    let sink: (HTTPExchange) -> Void
    init(_ exchange: HTTPExchange, _ sink: @escaping (HTTPExchange) -> Void) {
        self.exchange = exchange
        self.sink = sink
    }
    func deliver() { sink(exchange) }
}
