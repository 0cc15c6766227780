public import Outbox

/// A `mysql://user:password@host:port/database?ssl-mode=…&ssl-ca=…&ssl-cert=…&ssl-key=…` URL
/// (`mariadb://` works too), parsed and redacted like every store's URL (``OutboxConnectionURL``).
///
/// `ssl-mode` may be `DISABLED` (the default), `REQUIRED` or `VERIFY_IDENTITY`; any other option
/// is refused, so a misspelt TLS setting cannot pass unnoticed.
public struct MySQLConnectionURL: OutboxStoreURL {
    /// The connection settings the URL names (the password included; never printed).
    public var configuration: MySQLConfiguration
    private let url: OutboxConnectionURL

    /// Parses a URL.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration`, in one sentence that never
    ///   repeats the password.
    public init(_ text: String) throws {
        let url = try OutboxConnectionURL(text, store: "MySQL", schemes: ["mysql", "mariadb"], example: "mysql://user:password@host:3306/database")
        guard url.hosts.count == 1 else { throw url.invalid("The MySQL URL names several hosts; name one.") }
        guard let user = url.username else { throw url.invalid("The MySQL URL names no user; use mysql://user@host:3306/database.") }
        guard !url.database.isEmpty, !url.database.contains("/") else {
            throw url.invalid("The MySQL URL names no database; add it after the host, as in …@host:3306/database.")
        }
        var tls = MySQLConfiguration.TLS()
        for option in url.options {
            switch option.name.lowercased() {
            case "ssl-mode", "sslmode":
                guard let mode = MySQLConfiguration.TLSMode(rawValue: option.value.uppercased()) else {
                    throw url.invalid("ssl-mode must be DISABLED, REQUIRED or VERIFY_IDENTITY.")
                }
                tls.mode = mode
            case "ssl-ca": tls.certificateAuthorityFile = option.value
            case "ssl-cert": tls.certificateFile = option.value
            case "ssl-key": tls.keyFile = option.value
            default:
                throw url.invalid("The MySQL URL has an unknown option \"\(option.name)\"; use ssl-mode, ssl-ca, ssl-cert or ssl-key.")
            }
        }
        self.url = url
        configuration = MySQLConfiguration(host: url.hosts[0].name, port: url.hosts[0].port ?? 3306, username: user, password: url.password,
                                           database: url.database, tls: tls)
    }

    /// The URL without its password.
    public var description: String { url.description }

    /// Connects once and disconnects, so a wrong host, port, user, password or database fails now,
    /// in one sentence, instead of as a pool that keeps retrying.
    ///
    /// - Throws: ``OutboxError`` naming what to fix; never the password.
    public func checkConnection(timeout: Duration) async throws {
        let configuration = self.configuration
        try await OutboxStoreSupport.checkConnection(
            store: "MySQL", address: "\(configuration.host):\(configuration.port)", timeout: timeout,
            map: { MySQLStoreErrors.map($0, operation: "connect") }
        ) {
            let connection = try await MySQLConnection.connect(configuration)
            await connection.close()
        }
    }
}
