/// A database URL, read the same way for every server store:
/// `scheme://user:password@host:port[,host:port…]/database?name=value&…`.
///
/// The user and password are percent-decoded once (a literal `%41` is written `%2541`). The
/// password is kept only to connect: ``description`` leaves it out, and shows `***` for the value
/// of every option whose name speaks of a password, secret, token, key material or credential.
/// Each store's URL type (`PostgresConnectionURL`, `MySQLConnectionURL`, `MongoConnectionURL`)
/// parses with this and adds what its driver needs.
public struct OutboxConnectionURL: Sendable, CustomStringConvertible {
    /// One server of the URL.
    public struct Host: Sendable, Hashable, CustomStringConvertible {
        /// The host name or address.
        public var name: String
        /// The port, when the URL gives one.
        public var port: Int?

        /// Creates a host.
        public init(name: String, port: Int?) {
            self.name = name
            self.port = port
        }

        public var description: String { port.map { "\(name):\($0)" } ?? name }
    }

    /// One `name=value` option of the query string, in URL order.
    public struct Option: Sendable, Hashable {
        /// The option's name as written.
        public var name: String
        /// Its value, decoded.
        public var value: String
    }

    /// The scheme, lower-cased.
    public let scheme: String
    /// The user name, decoded.
    public let username: String?
    /// The password, decoded; never shown.
    public let password: String?
    /// The servers, in URL order (at least one).
    public let hosts: [Host]
    /// The path after the hosts, decoded (empty when the URL has none).
    public let database: String
    /// The query options, decoded.
    public let options: [Option]
    private let store: String

    /// Parses `text` as a URL of `store` (its name in sentences, e.g. "MySQL") with one of
    /// `schemes`; `example` is a URL to show in errors.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration`, in one sentence that never
    ///   repeats the password.
    public init(_ text: String, store: String, schemes: [String], example: String) throws {
        func invalid(_ message: String) -> OutboxError {
            OutboxError(code: .invalidConfiguration, operation: "parse \(store) URL", message: message)
        }
        self.store = store
        // Parsed by hand: a URL may list several hosts ("h1:27017,h2:27017"), which URLComponents rejects.
        guard let separator = text.range(of: "://"), schemes.contains(text[..<separator.lowerBound].lowercased()) else {
            throw invalid("The \(store) URL is malformed; use \(example).")
        }
        scheme = text[..<separator.lowerBound].lowercased()
        var rest = Substring(text[separator.upperBound...])
        var query = ""
        if let question = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: question)...])
            rest = rest[..<question]
        }
        var path = ""
        let slash = rest.lastIndex(of: "@").flatMap { rest[$0...].firstIndex(of: "/") } ?? rest.firstIndex(of: "/")
        if let slash {
            path = String(rest[rest.index(after: slash)...])
            rest = rest[..<slash]
        }
        var user: String?, password: String?
        if let at = rest.lastIndex(of: "@") {
            let info = rest[..<at]
            let parts = info.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            user = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            password = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : nil
            rest = rest[rest.index(after: at)...]
        }
        username = user?.isEmpty == true ? nil : user
        self.password = password
        var hosts: [Host] = []
        for part in rest.split(separator: ",", omittingEmptySubsequences: false) {
            var name = Substring(part), port: Int?
            if let colon = part.lastIndex(of: ":"), !part.hasSuffix("]") {
                name = part[..<colon]
                guard let number = Int(part[part.index(after: colon)...]), (1...65535).contains(number) else {
                    throw invalid("The \(store) URL's port must be between 1 and 65535.")
                }
                port = number
            }
            guard !name.isEmpty else { throw invalid("The \(store) URL names no host; use \(example).") }
            hosts.append(Host(name: String(name), port: port))
        }
        guard !hosts.isEmpty else { throw invalid("The \(store) URL names no host; use \(example).") }
        self.hosts = hosts
        database = path.removingPercentEncoding ?? path
        options = query.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in String(text).removingPercentEncoding ?? String(text) }
            return Option(name: decode(parts[0]), value: parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    /// The value of the option `name` (compared without case), if the URL has it.
    public func option(_ name: String) -> String? {
        options.last { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// The URL without its password or any secret option value.
    public var description: String {
        let user = username.map { "\($0)@" } ?? ""
        let shown = options.map { option -> String in
            let name = option.name.lowercased()
            let secret = ["password", "secret", "token", "authmechanismproperties", "credential"].contains { name.contains($0) }
            return "\(option.name)=\(secret ? "***" : option.value)"
        }
        return "\(scheme)://\(user)\(hosts.map(\.description).joined(separator: ","))/\(database)"
            + (shown.isEmpty ? "" : "?" + shown.joined(separator: "&"))
    }

    /// An error for a URL that parsed but says something `store` cannot use.
    public func invalid(_ message: String) -> OutboxError {
        OutboxError(code: .invalidConfiguration, operation: "parse \(store) URL", message: message)
    }
}

/// What every server store's URL type offers: the same parsing (``OutboxConnectionURL``), the
/// same redaction (``description`` never shows the password), and a connection check that fails
/// in one sentence naming what to fix.
public protocol OutboxStoreURL: Sendable, CustomStringConvertible {
    /// Parses a URL.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration`, in one sentence that never
    ///   repeats the password.
    init(_ text: String) throws

    /// Connects once and disconnects, so a wrong host, port, user, password or database fails
    /// now, in one sentence, instead of as a pool that keeps retrying.
    ///
    /// - Throws: ``OutboxError`` naming what to fix; never the password.
    func checkConnection(timeout: Duration) async throws
}

extension OutboxStoreURL {
    /// Connects once with a 10-second limit; see ``checkConnection(timeout:)``.
    public func checkConnection() async throws { try await checkConnection(timeout: .seconds(10)) }
}

extension OutboxStoreSupport {
    /// The connection check of every store: runs `connect` within `timeout`; a server that cannot
    /// be reached becomes one sentence naming `store` and `address`, other failures (a refused
    /// login, a missing database) are mapped by `map`.
    package static func checkConnection(store: String, address: String, timeout: Duration,
                                        map: (any Error) -> any Error,
                                        connect: @escaping @Sendable () async throws -> Void) async throws {
        do {
            try await OutboxStoreCallTimeout.run("connect", timeout: timeout, connect)
        } catch let error as OutboxError where error.operation == "connect" && error.code == .storeUnavailable && error.underlying == nil {
            throw OutboxError(code: .storeUnavailable, operation: "connect",
                              message: "\(store) at \(address) did not answer within \(timeout); check the host and port.", isRetriable: true)
        } catch {
            let mapped = map(error)
            if let outbox = mapped as? OutboxError, outbox.code == .storeUnavailable {
                throw OutboxError(code: .storeUnavailable, operation: "connect",
                                  message: "Cannot connect to \(store) at \(address); check the host and port and that the server is up.",
                                  isRetriable: true, underlying: outbox.underlying)
            }
            throw mapped
        }
    }
}
