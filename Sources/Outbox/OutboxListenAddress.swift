/// Where a server of the outbox listens (the metrics endpoint, the admin page), read from
/// `host:port` text such as `127.0.0.1:9464`, `[::1]:9464` or `0.0.0.0:9464`.
public struct OutboxListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// The host name or address to bind.
    public var host: String
    /// The TCP port (0: any free port).
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Reads `host:port`.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration`, in one sentence naming what to fix.
    public init(parsing text: String) throws {
        func invalid(_ why: String) -> OutboxError {
            OutboxError(code: .invalidConfiguration, operation: "read listen address",
                        message: "The listen address \(OutboxListenAddress.quoted(text)) \(why); write host:port, e.g. 127.0.0.1:9464.")
        }
        guard let colon = text.lastIndex(of: ":") else { throw invalid("has no port") }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw invalid("has no host") }
        guard host.allSatisfy({ $0.isLetter || $0.isNumber || ".-:_".contains($0) }) else { throw invalid("has a host that is not a name or an address") }
        guard let port = Int(portText), (0...65_535).contains(port) else { throw invalid("has a port that is not a number from 0 to 65535") }
        self.init(host: host, port: port)
    }

    /// Whether only this machine can connect (a loopback address or `localhost`).
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The text as given, shortened and with control characters shown escaped, for an error sentence.
    private static func quoted(_ text: String) -> String {
        let short = text.count > 80 ? String(text.prefix(80)) + "…" : text
        return "'" + short.unicodeScalars.map { $0.properties.generalCategory == .control ? $0.escaped(asASCII: true) : String($0) }.joined() + "'"
    }
}
