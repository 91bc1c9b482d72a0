/// HopNetfilter: a value model of iptables rules (nat and mangle first of all),
/// shared by the correlator's explanations and the rule installer.
///
/// - Parse: `RuleSet.parse(_:defaultTable:)` reads iptables-save text and
///   `iptables -S` listings; errors name the line.
/// - Render: `RuleSet.render(_:counters:)` prints what iptables-save (`.save`) or
///   `iptables -S` (`.listing`) prints. Parameters come out in iptables-save's order
///   (`-s -d -i -o -p -f`), matches in rule order, values normalised as iptables does
///   (`/32` added, networks masked, `--set-mark` as `--set-xmark`, `--syn` as
///   `--tcp-flags FIN,SYN,RST,ACK SYN`, implicit `-m tcp`). So
///   `parse(render(x)) == x`, and `render(parse(t)) == t` for text as iptables-save
///   prints it, minus its `#` comment lines, which the model does not keep. Chains keep
///   the order of the text (iptables-save sorts user chains by name; the presets do too).
/// - Evaluate: `RuleSet.evaluate(_:table:options:)` walks a connection's first packet
///   through a table from the hook's built-in chain, following jumps (call stack,
///   RETURN, goto, policy, loop and depth limits), and reports every rule looked at
///   and the verdict. An unknown owner is split into branches at each owner match.
/// - Presets: `InterceptConfig` generates istio-iptables-style rules; `istio-2018` is
///   exactly the seed article's, `istio-current` today's sidecar.
///
/// Documented policies:
/// - Matches hoptrace does not model (`-m conntrack`, `-m socket`, `-m addrtype`, a
///   known match with an option it does not model such as `--tcp-option`) are kept
///   verbatim, rendered back verbatim, listed by `RuleSet.warnings`, and by default
///   **assumed to match** (`UnknownMatchPolicy.assumeMatch`; `.assumeNoMatch` on
///   request). Each step that relied on the assumption carries a note.
/// - Targets it does not model are kept verbatim too. LOG, NFLOG, TRACE, CT and other
///   non-terminating ones let the packet continue; anything else (DNAT, SNAT,
///   MASQUERADE, REJECT, …) is assumed to end the table: `Verdict.unevaluated`.
/// - `-m owner` with no local socket (PREROUTING) matches only when every criterion
///   is negated, as in the kernel; `--suppl-groups` is kept but only the primary gid
///   is compared.
/// - A locally generated packet leaves on `lo` when its destination is 127.0.0.0/8,
///   ::1 or one of the host's own addresses (`PacketContext.locallyGenerated`).
public enum HopNetfilterOverview {}
