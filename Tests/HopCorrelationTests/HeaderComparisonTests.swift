import HopHTTP
import XCTest
@testable import HopCorrelation

/// The byte-level header comparisons the evidence uses agree with their String forms.
final class HeaderComparisonTests: XCTestCase {
    func testProxyHeaderBytesAgreeWithTheNames() {
        let names = ["X-Request-Id", "x-forwarded-for", "X-FORWARDED-PROTO", "Via", "b3", "B3", "b4", "x-b3-traceid",
                     "X-Envoy-Attempt-Count", "x-envoy-", "x-envo", "Host", "Accept", "content-length", "Content-Type",
                     "traceparent", "tracestate", "x-datadog-trace-id", "x-ot-span-context", "x-ot-spa", "te", "t", "",
                     "user-agent", "connection", "keep-alivex"]
        for n in names {
            var s = n
            let byBytes = s.withUTF8 { Correlator.isProxyHeader(bytes: UnsafeRawBufferPointer($0)) }
            XCTAssertEqual(byBytes, Correlator.isProxyHeader(n.lowercased()), n)
        }
    }

    func testSameEndToEndFieldsIgnoresProxyHeadersAndNameCase() {
        let client: HTTPHeaders = [("Host", "a"), ("User-Agent", "curl/8"), ("Accept", "*/*")]
        let proxied: HTTPHeaders = [("host", "a"), ("X-Forwarded-For", "1.2.3.4"), ("user-agent", "curl/8"),
                                    ("accept", "*/*"), ("x-request-id", "abc")]
        XCTAssertTrue(Correlator.sameEndToEndFields(client, proxied))
        XCTAssertEqual(Correlator.endToEndHeaderDifferences(client, proxied), [])
        let changed: HTTPHeaders = [("Host", "a"), ("User-Agent", "curl/7"), ("Accept", "*/*")]
        XCTAssertFalse(Correlator.sameEndToEndFields(client, changed))
        XCTAssertEqual(Correlator.endToEndHeaderDifferences(client, changed), ["user-agent"])
        let fewer: HTTPHeaders = [("Host", "a"), ("User-Agent", "curl/8")]
        XCTAssertFalse(Correlator.sameEndToEndFields(client, fewer))
        XCTAssertTrue(Correlator.sameEndToEndFields([], [("via", "1.1 envoy")]))
    }
}
