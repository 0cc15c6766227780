import Foundation

/// How a ``NATSPublisher`` reaches NATS JetStream. Every value has a default except the servers.
public struct NATSPublisherConfiguration: Sendable {
    /// Server URLs, `nats://[user:password@]host:port[,nats://…]` (`tls://` for TLS).
    public var servers: String
    /// Prefixed to every message's topic to make its subject (`orders` → `prefix` + `orders`);
    /// empty by default, so the topic is the subject. The stream that stores the subject must
    /// exist: streams are the operator's to create, with their own retention and replicas.
    public var subjectPrefix: String
    /// How long one message may wait for its JetStream acknowledgement; after that it is reported
    /// unavailable (no attempt counted) and published again later. Default 10 s.
    public var acknowledgementTimeout: Duration
    /// Messages sent and not yet acknowledged, at most (per publisher). Default 4,096.
    public var maximumInFlight: Int
    /// On start, wait this long for a server to answer, and fail with a clear error if none does.
    /// Default 10 s.
    public var connectTimeout: Duration
    /// TLS: a file of trusted CA certificates (PEM); setting it requires TLS.
    public var trustedCertificatesFile: String?
    /// TLS client authentication: certificate chain and private key files (PEM).
    public var clientCertificateFile: String?
    /// The private key of ``clientCertificateFile``.
    public var clientKeyFile: String?
    /// A NATS credentials file (JWT and seed), for servers that use decentralized authentication.
    public var credentialsFile: String?
    /// The connection's name, as the server's monitoring shows it.
    public var connectionName: String

    /// Creates a configuration.
    public init(
        servers: String,
        subjectPrefix: String = "",
        acknowledgementTimeout: Duration = .seconds(10),
        maximumInFlight: Int = 4096,
        connectTimeout: Duration = .seconds(10),
        trustedCertificatesFile: String? = nil,
        clientCertificateFile: String? = nil,
        clientKeyFile: String? = nil,
        credentialsFile: String? = nil,
        connectionName: String = "swift-outbox relay"
    ) {
        self.servers = servers
        self.subjectPrefix = subjectPrefix
        self.acknowledgementTimeout = acknowledgementTimeout
        self.maximumInFlight = maximumInFlight
        self.connectTimeout = connectTimeout
        self.trustedCertificatesFile = trustedCertificatesFile
        self.clientCertificateFile = clientCertificateFile
        self.clientKeyFile = clientKeyFile
        self.credentialsFile = credentialsFile
        self.connectionName = connectionName
    }

    /// The server list with every password replaced by `***`, for logs and errors.
    public var redactedServers: String {
        servers.split(separator: ",").map { server -> String in
            let text = String(server).trimmingCharacters(in: .whitespaces)
            guard let scheme = text.range(of: "://"), let at = text.range(of: "@", options: .backwards),
                  at.lowerBound > scheme.upperBound else { return text }
            let credentials = text[scheme.upperBound..<at.lowerBound]
            guard let colon = credentials.firstIndex(of: ":") else { return text }
            return String(text[..<scheme.upperBound]) + credentials[..<colon] + ":***" + text[at.lowerBound...]
        }.joined(separator: ",")
    }

    /// The configuration's mistakes, in one sentence each; empty when it can be used.
    func problems() -> [String] {
        var problems: [String] = []
        let servers = servers.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if servers.isEmpty || servers.contains(where: \.isEmpty) {
            problems.append("Give the NATS servers as nats://host:port[,nats://host:port…].")
        }
        for server in servers where !server.isEmpty {
            guard let url = URLComponents(string: server.contains("://") ? server : "nats://\(server)"),
                  ["nats", "tls"].contains(url.scheme ?? ""), url.host?.isEmpty == false else {
                problems.append("\(redactedServers) is not a NATS server list; use nats://host:port (tls://host:port for TLS).")
                break
            }
        }
        if subjectPrefix.contains(where: { $0 == " " || $0 == "*" || $0 == ">" || $0.isNewline }) {
            problems.append("The NATS subject prefix may not contain spaces, '*' or '>'.")
        }
        if maximumInFlight < 1 { problems.append("The NATS publisher's maximum in flight must be at least 1.") }
        if acknowledgementTimeout < .milliseconds(1) { problems.append("The NATS acknowledgement timeout must be positive.") }
        if (clientCertificateFile == nil) != (clientKeyFile == nil) {
            problems.append("Give both the NATS client certificate and its key, or neither.")
        }
        return problems
    }
}
