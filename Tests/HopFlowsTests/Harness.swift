import HopCapture
@testable import HopFlows
import XCTest

/// A recorded event, with data copied (as text) so it can be compared after the call.
enum Rec: Equatable, CustomStringConvertible {
    case opened(Int)
    case data(Int, FlowDirection, String, first: Int64, last: Int64)
    case gap(Int, FlowDirection, Int)
    case closed(Int, CloseReason)

    var description: String {
        switch self {
        case .opened(let c): "opened c\(c)"
        case .data(let c, let d, let s, let f, let l): "data c\(c) \(d == .clientToServer ? ">" : "<") \(s.debugDescription) @\(f)-\(l)"
        case .gap(let c, let d, let n): "gap c\(c) \(d == .clientToServer ? ">" : "<") \(n)"
        case .closed(let c, let r): "closed c\(c) \(r)"
        }
    }
}

final class Recorder: StreamEventConsumer {
    var events: [Rec] = []
    /// Last snapshot of each connection (from opened, then closed).
    var opened: [Int: Connection] = [:]
    var closed: [Int: Connection] = [:]
    /// Base addresses of the data events' buffers, in order.
    var dataPointers: [UnsafeRawPointer?] = []

    func handle(_ event: StreamEvent) {
        switch event {
        case .opened(let c):
            XCTAssertNil(opened[c.id.value], "opened twice: \(c.id)")
            opened[c.id.value] = c
            events.append(.opened(c.id.value))
        case .data(let id, let d, let b, let f, let l):
            XCTAssertNotNil(opened[id.value], "data before opened")
            XCTAssertGreaterThan(b.count, 0, "empty data event")
            dataPointers.append(b.baseAddress.map { UnsafeRawPointer($0) })
            events.append(.data(id.value, d, String(decoding: b, as: UTF8.self), first: f, last: l))
        case .gap(let id, let d, let n, _):
            XCTAssertNotNil(opened[id.value], "gap before opened")
            XCTAssertGreaterThan(n, 0, "empty gap")
            events.append(.gap(id.value, d, n))
        case .closed(let c):
            XCTAssertNotNil(opened[c.id.value], "closed before opened")
            XCTAssertNil(closed[c.id.value], "closed twice")
            closed[c.id.value] = c
            events.append(.closed(c.id.value, c.closeReason!))
        }
    }

    /// The stream of one direction as text, gaps shown as `[gap N]`.
    func stream(_ c: Int, _ d: FlowDirection) -> String {
        var s = ""
        for e in events {
            switch e {
            case .data(c, d, let t, _, _): s += t
            case .gap(c, d, let n): s += "[gap \(n)]"
            default: break
            }
        }
        return s
    }
}

func ep(_ s: String) -> Endpoint { Endpoint(s)! }

let SYN: TCPFlags = .syn
let SYNACK: TCPFlags = [.syn, .ack]
let ACK: TCPFlags = .ack
let PSH: TCPFlags = [.psh, .ack]
let FIN: TCPFlags = [.fin, .ack]
let RST: TCPFlags = .rst
let RSTACK: TCPFlags = [.rst, .ack]

/// Drives a `ConnectionTable` with crafted segments. Time advances 1 ms per segment unless
/// given; IP ids are unique unless given.
final class Harness {
    let recorder = Recorder()
    let table: ConnectionTable
    var time: Int64 = 1_000_000_000_000
    var nextIPID: UInt16 = 100
    var packet = 0

    init(_ configuration: FlowConfiguration = FlowConfiguration()) {
        table = ConnectionTable(configuration: configuration, consumer: recorder)
    }

    var events: [Rec] { recorder.events }
    var counters: FlowCounters { table.counters }

    @discardableResult
    func seg(_ src: String, _ dst: String, seq: UInt32, ack: UInt32 = 0, _ flags: TCPFlags, _ data: String = "",
             bytes: [UInt8]? = nil, length: Int? = nil, at: Int64? = nil, ipID: UInt16? = nil, iface: Int32? = nil,
             direction: PacketDirection? = nil, tsval: UInt32? = nil) -> UnsafeRawPointer?
    {
        if let at { time = at } else { time += 1_000_000 }
        packet += 1
        let id: UInt16
        if let ipID { id = ipID } else { id = nextIPID; nextIPID &+= 1 }
        var opts = TCPOptions()
        if let tsval { opts.timestampValue = tsval; opts.timestampEcho = 1 }
        let payload = bytes ?? Array(data.utf8)
        var base: UnsafeRawPointer?
        payload.withUnsafeBytes { p in
            base = p.baseAddress.map { UnsafeRawPointer($0) }
            let s = TCPSegment(
                timestamp: time, packetIndex: packet, interfaceIndex: iface, direction: direction, ipVersion: 4,
                source: ep(src), destination: ep(dst), sequenceNumber: seq, acknowledgementNumber: ack, flags: flags,
                options: opts, ipIdentification: id, payload: p, payloadLength: length)
            table.process(s)
        }
        return base
    }
}
