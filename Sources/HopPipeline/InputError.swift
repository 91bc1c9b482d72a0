/// An error a person can act on: one line for standard error (the command line exits with
/// status 2). The pipeline throws it for whatever the user gave that cannot be used: a
/// capture that does not open, a filter that does not compile, rules that cannot be read.
public struct InputError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
    public init(message: String) { self.message = message }
}
