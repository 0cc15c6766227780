import Foundation
import Outbox

/// How an ``AMQPPublisher`` reaches RabbitMQ. Every value has a default except the URL.
public struct AMQPPublisherConfiguration: Sendable {
    /// `amqp://user:password@host:port/vhost` (`amqps://` for TLS); the default port is 5672
    /// (5671 for TLS), the default virtual host `/`, written `%2f` in a URL.
    public var url: String
    /// Prefixed to every message's topic to name its exchange (`orders` → prefix + `orders`);
    /// empty by default, so the topic is the exchange. Exchanges, queues and bindings are the
    /// operator's to declare.
    public var exchangePrefix: String
    /// How long one message may wait for its publisher confirm; after that it is reported
    /// unavailable (no attempt counted) and published again later. Default 10 s.
    public var acknowledgementTimeout: Duration
    /// Messages sent and not yet confirmed, at most. Default 4,096.
    public var maximumInFlight: Int
    /// On start, wait this long for the broker to answer. Default 10 s.
    public var connectTimeout: Duration
    /// AMQP heartbeat, in seconds (0: none). Default 10: a dead connection is noticed within ~20 s.
    public var heartbeatSeconds: Int
    /// TLS: a file of trusted CA certificates (PEM). With `amqps://` and no file, the system's
    /// trust store is not used by the C client: give the file.
    public var trustedCertificatesFile: String?
    /// TLS client authentication: certificate (PEM).
    public var clientCertificateFile: String?
    /// The private key of ``clientCertificateFile``.
    public var clientKeyFile: String?
    /// TLS: check that the server's certificate names the host. Default `true`.
    public var verifiesHostname: Bool

    /// Creates a configuration.
    public init(
        url: String,
        exchangePrefix: String = "",
        acknowledgementTimeout: Duration = .seconds(10),
        maximumInFlight: Int = 4096,
        connectTimeout: Duration = .seconds(10),
        heartbeatSeconds: Int = 10,
        trustedCertificatesFile: String? = nil,
        clientCertificateFile: String? = nil,
        clientKeyFile: String? = nil,
        verifiesHostname: Bool = true
    ) {
        self.url = url
        self.exchangePrefix = exchangePrefix
        self.acknowledgementTimeout = acknowledgementTimeout
        self.maximumInFlight = maximumInFlight
        self.connectTimeout = connectTimeout
        self.heartbeatSeconds = heartbeatSeconds
        self.trustedCertificatesFile = trustedCertificatesFile
        self.clientCertificateFile = clientCertificateFile
        self.clientKeyFile = clientKeyFile
        self.verifiesHostname = verifiesHostname
    }

    /// The URL with its password replaced by `***`, for logs and errors.
    public var redactedURL: String {
        guard let scheme = url.range(of: "://"), let at = url.range(of: "@", options: .backwards),
              at.lowerBound > scheme.upperBound else { return url }
        let credentials = url[scheme.upperBound..<at.lowerBound]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<scheme.upperBound]) + credentials[..<colon] + ":***" + url[at.lowerBound...]
    }

    /// The parts of the URL.
    struct Endpoint: Sendable {
        var host: String
        var port: Int
        var user: String
        var password: String
        var virtualHost: String
        var usesTLS: Bool
    }

    /// Parses the URL.
    ///
    /// - Throws: ``OutboxError`` (`.invalidConfiguration`) in one sentence without the password.
    func endpoint() throws -> Endpoint {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              scheme == "amqp" || scheme == "amqps", let host = components.host, !host.isEmpty else {
            throw OutboxError(code: .invalidConfiguration, operation: "configure AMQP",
                              message: "\(redactedURL) is not an AMQP URL; use amqp://user:password@host:port/vhost (amqps:// for TLS).")
        }
        let tls = scheme == "amqps"
        let path = components.percentEncodedPath
        let virtualHost: String
        if path.isEmpty || path == "/" {
            virtualHost = "/"
        } else {
            virtualHost = String(path.dropFirst()).removingPercentEncoding ?? String(path.dropFirst())
        }
        return Endpoint(host: host, port: components.port ?? (tls ? 5671 : 5672),
                        user: components.user?.removingPercentEncoding ?? "guest",
                        password: components.password?.removingPercentEncoding ?? "guest",
                        virtualHost: virtualHost, usesTLS: tls)
    }

    /// The configuration's mistakes, in one sentence each; empty when it can be used.
    func problems() -> [String] {
        var problems: [String] = []
        do { _ = try endpoint() } catch let error as OutboxError { problems.append(error.message) } catch {}
        if exchangePrefix.utf8.count > 200 { problems.append("The AMQP exchange prefix is longer than 200 bytes.") }
        if maximumInFlight < 1 { problems.append("The AMQP publisher's maximum in flight must be at least 1.") }
        if acknowledgementTimeout < .milliseconds(1) { problems.append("The AMQP acknowledgement timeout must be positive.") }
        if heartbeatSeconds < 0 { problems.append("The AMQP heartbeat cannot be negative.") }
        if (clientCertificateFile == nil) != (clientKeyFile == nil) {
            problems.append("Give both the AMQP client certificate and its key, or neither.")
        }
        return problems
    }
}
