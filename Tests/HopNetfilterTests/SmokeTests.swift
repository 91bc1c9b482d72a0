import XCTest
@testable import HopNetfilter

final class SmokeTests: XCTestCase {
    func testPrint() throws {
        for n in InterceptConfig.presetNames {
            let r = RuleSet.preset(n)!
            print("=== \(n) listing\n" + r.render(.listing))
            print("=== \(n) save\n" + r.render(.save))
        }
        let r = RuleSet.preset("istio-2018")!
        let app = PacketContext.locallyGenerated(from: IPAddress("198.18.0.2")!, port: 40000, to: IPAddress("198.18.0.9")!, port: 80, uid: nil, gid: nil)
        let e = r.evaluate(app)
        print(e.sentence)
        print(e.ownerSummary)
        for b in e.branches { for s in b.steps { print("  ", s) } ; print("  --") }
        let inb = PacketContext.arriving(on: "eth0", from: IPAddress("198.18.0.1")!, port: 5555, to: IPAddress("198.18.0.2")!, port: 80)
        print(r.evaluate(inb).sentence)
        let c = RuleSet.preset("istio-current")!
        print(c.evaluate(app).ownerSummary)
        let lo = PacketContext.locallyGenerated(from: IPAddress("198.18.0.2")!, port: 40000, to: IPAddress("198.18.0.2")!, port: 80, uid: nil, gid: nil, hostAddresses: [IPAddress("198.18.0.2")!])
        print(c.evaluate(lo).ownerSummary)
        print(c.evaluate(lo).sentence)
    }
}
