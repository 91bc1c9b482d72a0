import HopNetfilter
import XCTest

/// istio-iptables' flags read into a configuration (`hoptrace intercept`'s options).
final class InterceptFlagsTests: XCTestCase {
    func testPresetsAndPorts() throws {
        XCTAssertEqual(try InterceptFlags().config(), InterceptConfig.preset("istio-2018"))
        var f = InterceptFlags()
        f.proxyPort = 16001
        var c = try f.config()
        // 2018: inbound shares the proxy port, so -p moves both…
        XCTAssertEqual([c.proxyPort, c.inboundCapturePort], [16001, 16001])
        // …unless -z says otherwise.
        f.inboundPort = 16006
        c = try f.config()
        XCTAssertEqual([c.proxyPort, c.inboundCapturePort], [16001, 16006])
        f = InterceptFlags()
        f.preset = "istio-current"
        f.proxyPort = 16001
        c = try f.config()
        XCTAssertEqual([c.proxyPort, c.inboundCapturePort], [16001, 15006])
    }

    func testListsAndWildcards() throws {
        var f = InterceptFlags()
        f.uids = "1337, 1338"
        f.gids = "7"
        f.inboundPorts = "80,8080"
        f.excludedInboundPorts = "22"
        f.outboundCIDRs = " 10.0.0.0/8 ,192.168.1.1"
        f.excludedCIDRs = "10.1.0.0/16"
        f.excludedOutboundPorts = "443"
        let c = try f.config()
        XCTAssertEqual(c.proxyUIDs, [1337, 1338])
        XCTAssertEqual(c.proxyGIDs, [7])
        XCTAssertEqual(c.inbound, .ports([80, 8080]))
        XCTAssertEqual(c.excludedInboundPorts, [22])
        XCTAssertEqual(c.outbound, .networks([CIDR("10.0.0.0/8")!, CIDR("192.168.1.1")!]))
        XCTAssertEqual(c.excludedOutboundNetworks, [CIDR("10.1.0.0/16")!])
        XCTAssertEqual(c.excludedOutboundPorts, [443])
        f.inboundPorts = "*"
        f.outboundCIDRs = ""
        XCTAssertEqual(try f.config().inbound, .all)
        XCTAssertEqual(try f.config().outbound, .disabled)
        f.inboundPorts = ""
        f.outboundCIDRs = "*"
        XCTAssertEqual(try f.config().inbound, .disabled)
        XCTAssertEqual(try f.config().outbound, .all)
    }

    func testRefusalsNameTheFlag() {
        func refusal(_ change: (inout InterceptFlags) -> Void) -> String? {
            var f = InterceptFlags()
            change(&f)
            do { _ = try f.config(); return nil } catch { return error.description }
        }
        XCTAssertEqual(refusal { $0.preset = "linkerd" }, "--preset linkerd: unknown (istio-2018, istio-current)")
        XCTAssertEqual(refusal { $0.inboundPorts = "80,http" }, "-b: 'http' is not a port")
        XCTAssertEqual(refusal { $0.excludedInboundPorts = "70000" }, "-d: '70000' is not a port")
        XCTAssertEqual(refusal { $0.excludedOutboundPorts = "x" }, "-o: 'x' is not a port")
        XCTAssertEqual(refusal { $0.uids = "1337,root" }, "-u: 'root' is not a number")
        XCTAssertEqual(refusal { $0.gids = "-1" }, "-g: '-1' is not a number")
        XCTAssertEqual(refusal { $0.outboundCIDRs = "10.0.0.0/33" }, "-i: '10.0.0.0/33' is not an address or CIDR")
        XCTAssertEqual(refusal { $0.excludedCIDRs = "10.0.0.0/8, host" }, "-x: ' host' is not an address or CIDR")
    }
}
