import HopReport

// Encrypted downstream copies in the lab's truth checks. An encrypted turn (`ReportHop.tls`) has
// no method, target or status of its own: what the request was is read from the plaintext copy
// its chain pairs it with. The truth indexes it like any downstream copy: the n-th turn of a TLS
// client connection is the n-th request the sidecar logged on that connection.

extension ReportHop {
    /// An encrypted turn: a copy the truth counts though nothing of its request can be read.
    var isEncrypted: Bool { tls != nil }

    /// A downstream copy the truth indexes: a plaintext request or an encrypted turn.
    var isIndexedDownstream: Bool { isDownstream && (method != nil || isEncrypted) }
}

extension ReportChain {
    /// The request as hop `index` stands for it: its own method, target and status, or for an
    /// encrypted turn the chain's plaintext copy's (the last plaintext hop: the sidecar → app copy
    /// the correlator paired it with; nil when the chain has none).
    func request(ofHop index: Int) -> (method: String?, target: String?, status: Int?) {
        let h = hops[index]
        guard h.isEncrypted, let plain = hops.last(where: { !$0.isEncrypted && $0.method != nil }) else {
            return (h.method, h.target, h.status)
        }
        return (plain.method, plain.target, plain.status)
    }
}
