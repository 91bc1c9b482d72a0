import HopFlows

extension HTTPExchange {
    /// An exchange built by hand (tests, synthetic inputs to the correlator).
    public init(_ connection: Connection, sequence: Int, request: HTTPRequest?, response: HTTPResponse?,
                flags: HTTPExchangeFlags = [], pipelinePosition: Int = 0) {
        self.init(connection: connection, sequence: sequence, request: request, response: response,
                  flags: flags, pipelinePosition: pipelinePosition)
    }
}
