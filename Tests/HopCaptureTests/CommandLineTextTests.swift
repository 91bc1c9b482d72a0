import Foundation
@testable import HopCapture
import HopTestSupport
import XCTest

/// The lines hoptrace's command line prints from HopCapture's values: `-D`'s listing and
/// what `-w` could not write.
final class CommandLineTextTests: XCTestCase {
    func testInterfaceListingLines() {
        let eth = PcapSource.Interface(name: "eth0", description: nil, isUp: true, isRunning: true, isLoopback: false)
        XCTAssertEqual(eth.listingLine(number: 1), "1.eth0 [Up, Running]")
        let lo = PcapSource.Interface(name: "lo", description: "Loopback device", isUp: true, isRunning: false, isLoopback: true)
        XCTAssertEqual(lo.listingLine(number: 2), "2.lo (Loopback device) [Up, Loopback]")
        let any = PcapSource.Interface(name: "any", description: "Pseudo-device", isUp: false, isRunning: false, isLoopback: false)
        XCTAssertEqual(any.listingLine(number: 10), "10.any (Pseudo-device)")
    }

    func testUnwrittenWarningNamesTheCountAndTheLinkTypes() throws {
        XCTAssertEqual(PcapWriter.unwrittenWarning(path: "out.pcap", count: 1, linkType: "EN10MB", linkTypes: "EN10MB, RAW"),
                       "out.pcap: 1 packet not written: its interface's link type is not EN10MB, the first interface's, and a pcap "
                       + "file holds one link type (the capture's link types: EN10MB, RAW); filter by interface, e.g. "
                       + "`tshark -r FILE -Y 'frame.interface_id == N' -w part-N.pcapng`")
        XCTAssertTrue(PcapWriter.unwrittenWarning(path: "o", count: 2, linkType: "RAW", linkTypes: "RAW, EN10MB")
            .hasPrefix("o: 2 packets not written: their interface's link type is not RAW,"))

        // A pcapng file with an Ethernet and a raw-IP interface: the raw packet is not written.
        var f = PcapngBuilder()
        f.interface(1, name: "eth0")
        f.packet(PB.ethernet(payload: PB.ipv4(payload: PB.tcp(sport: 1, dport: 80, seq: 1, payload: []))))
        f.interface(101, name: "tun0")
        f.packet(PB.ipv4(payload: PB.tcp(sport: 2, dport: 80, seq: 1, payload: [])), interface: 1)
        let source = try PcapSource.openMemory(f.bytes, name: "two.pcapng")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("unwritten-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path, source: source)
        XCTAssertNil(writer.unwrittenWarning(source: source))
        while case .packet(let p) = try source.next() { writer.write(p) }
        writer.flush()
        XCTAssertEqual(writer.unwrittenWarning(source: source),
                       PcapWriter.unwrittenWarning(path: path, count: 1, linkType: "EN10MB", linkTypes: "EN10MB, RAW"))
    }
}
