import HopNetfilter

/// Rule text (iptables-save or `iptables -S`) → rule set; what parses must render and parse
/// back to the same set (the round trip `RuleSet.render` states), and a SYN built from the
/// bytes is evaluated against it in every hook.
enum NetfilterFuzz {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        for defaultTable in [TableName.nat, .mangle] {
            guard let set = try? RuleSet.parse(text, defaultTable: defaultTable) else { continue }
            let saved = set.render(.save)
            let again = try? RuleSet.parse(saved, defaultTable: defaultTable)
            promise(again == set, "parse(render(.save)) differs:\n\(text)\n---\n\(saved)")
            if set.tables.count == 1 {
                let listing = set.render(.listing, counters: true)
                let back = try? RuleSet.parse(listing, defaultTable: set.tables[0].name)
                promise(back == set, "parse(render(.listing)) differs:\n\(text)\n---\n\(listing)")
            }
            evaluate(set, bytes)
        }
    }

    static func evaluate(_ set: RuleSet, _ bytes: UnsafeRawBufferPointer) {
        var cuts = Cuts(seed: bytes)
        let source = IPAddress.v4(UInt32(truncatingIfNeeded: cuts.next(Int(UInt32.max))))
        let destination = IPAddress.v4(0x7f00_0001 &+ UInt32(cuts.next(3)))
        let options = EvaluationOptions(maxSteps: 10_000)
        for hook in [Hook.prerouting, .output] {
            let packet = PacketContext(
                hook: hook, inInterface: hook == .prerouting ? "eth0" : nil, outInterface: hook == .output ? "lo" : nil,
                source: source, sourcePort: UInt16(cuts.next(65535)), destination: destination,
                destinationPort: UInt16(cuts.next(65535)), uid: UInt32(cuts.next(2000)), gid: UInt32(cuts.next(2000)),
                mark: UInt32(cuts.next(0xffff)))
            let result = set.evaluate(packet, tables: [.mangle, .nat], options: options)
            promise(!result.branches.isEmpty, "evaluation without a branch")
        }
    }
}
