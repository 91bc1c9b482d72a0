import XCTest

import HopInstaller
@testable import HopProxy

/// What `hoptrace proxy`, `intercept` and `watch -Z` ask of HopProxy and HopInstaller before they start.
final class CommandSettingsTests: XCTestCase {
    func refusal(_ change: (inout ProxyConfiguration) -> Void) -> String? {
        var c = ProxyConfiguration()
        change(&c)
        do { try c.validate(); return nil } catch { return error.description }
    }

    func testProxyConfigurationRefusalsNameTheOption() {
        XCTAssertNil(refusal { _ in })
        XCTAssertNil(refusal { $0.podAddresses = ["198.18.3.2", "fd00::2"]; $0.listenAddresses = ["127.0.0.1"] })
        XCTAssertEqual(refusal { $0.port = 0 }, "ports must be between 1 and 65535 (got 0)")
        XCTAssertEqual(refusal { $0.inboundPort = 70000 }, "ports must be between 1 and 65535 (got 70000)")
        XCTAssertEqual(refusal { $0.podAddresses = ["pod"] }, "'pod' is not an IPv4 or IPv6 address")
        XCTAssertEqual(refusal { $0.listenAddresses = ["0.0.0.0", "::1::"] }, "'::1::' is not an IPv4 or IPv6 address")
        XCTAssertEqual(refusal { $0.retries = -1 }, "--retries must be 0 or more")
        XCTAssertEqual(refusal { $0.idleTimeoutSeconds = 0 }, "--idle-timeout must be a positive number of seconds")
        XCTAssertEqual(refusal { $0.protocolDetectionTimeoutSeconds = .nan },
                       "--protocol-detection-timeout must be a positive number of seconds")
        XCTAssertEqual(refusal { $0.maxConnections = 0 }, "--max-connections must be at least 1")
        XCTAssertEqual(refusal { $0.threads = 0 }, "--threads must be at least 1")
        // The first refusal in the documented order.
        XCTAssertEqual(refusal { $0.retries = -1; $0.port = 0; $0.podAddresses = ["x"] }, "ports must be between 1 and 65535 (got 0)")
    }

    func testInboundPortDefaultsAndPodAddresses() {
        XCTAssertEqual(InboundLayout.istio2018.defaultInboundPort(proxyPort: 16001), 16001)
        XCTAssertEqual(InboundLayout.istioCurrent.defaultInboundPort(proxyPort: 16001), 15006)
        var c = ProxyConfiguration()
        c.podAddresses = ["198.18.3.2", "FD00:0::2"]
        c.resolvePodAddresses()
        XCTAssertEqual(c.podAddresses, ["198.18.3.2", "fd00::2"])
        c.podAddresses = []
        c.resolvePodAddresses()
        XCTAssertEqual(c.podAddresses, InterfaceAddresses.podAddresses())
    }

    func testHostNamespaceRefusal() {
        XCTAssertNil(RuleInstaller.hostNamespaceRefusal(.other))
        let host = RuleInstaller.hostNamespaceRefusal(.host)
        XCTAssertEqual(host, "refusing to change the host's network namespace: these rules would redirect every TCP connection of "
                       + "the host to a proxy on the capture ports that may not be running. Use --netns NAME for a pod/lab "
                       + "namespace, or --allow-root-netns if you really mean this namespace")
        XCTAssertEqual(RuleInstaller.hostNamespaceRefusal(.unknown("/proc/1/ns/net: Permission denied"))?
                        .hasPrefix("refusing to change this network namespace: it may be the host's (cannot compare with "
                                   + "PID 1's: /proc/1/ns/net: Permission denied); these rules would redirect"), true)
    }

    func testDropToAnUnknownUser() {
        XCTAssertThrowsError(try Privileges.drop(toUser: "no-such-user-hoptrace")) { error in
            XCTAssertEqual("\(error)", "no such user")
        }
    }
}
