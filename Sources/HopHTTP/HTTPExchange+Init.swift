import HopFlows

extension HTTPExchange {
    /// An exchange built by hand (tests, synthetic inputs to the correlator).
    public init(_ connection: Connection, sequence: Int, request: HTTPRequest?, response: HTTPResponse?,
                flags: HTTPExchangeFlags = [], pipelinePosition: Int = 0) {
        self.connection = connection
        self.sequence = sequence
        self.request = request
        self.response = response
        self.flags = flags
        self.pipelinePosition = pipelinePosition
    }
}
