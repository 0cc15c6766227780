import Foundation
import Outbox
import OutboxSQLite

/// Where the outbox lives, parsed from a store URL (`--store` or `OUTBOX_STORE_URL`).
///
/// `sqlite:///absolute/path.sqlite`, `sqlite://relative.sqlite` and `sqlite:relative.sqlite` are
/// understood today; `postgres://`, `mysql://` and `mongodb://` are recognised and named as not
/// built into this version yet.
struct StoreLocation: CustomStringConvertible {
    enum Kind { case sqlite(path: String) }

    let kind: Kind

    static let environmentVariable = "OUTBOX_STORE_URL"
    static let defaultURL = "sqlite://outbox.sqlite"

    /// The URL from the option, else the environment, else the default.
    static func resolve(_ option: String?) throws -> StoreLocation {
        try StoreLocation(url: option ?? ProcessInfo.processInfo.environment[environmentVariable] ?? defaultURL)
    }

    init(url: String) throws {
        let trimmed = url.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else {
            throw OutboxError(code: .invalidConfiguration, operation: "parse store URL",
                              message: "The store URL is empty; use for example sqlite:///var/lib/app/outbox.sqlite.")
        }
        guard let colon = trimmed.firstIndex(of: ":") else {
            throw OutboxError(code: .invalidConfiguration, operation: "parse store URL",
                              message: "The store URL has no scheme; use for example sqlite:///var/lib/app/outbox.sqlite.")
        }
        let scheme = trimmed[..<colon].lowercased()
        var rest = String(trimmed[trimmed.index(after: colon)...])
        switch scheme {
        case "sqlite", "sqlite3", "file":
            if rest.hasPrefix("//") { rest.removeFirst(2) }
            if let query = rest.firstIndex(of: "?") { rest = String(rest[..<query]) }
            rest = rest.removingPercentEncoding ?? rest
            guard !rest.isEmpty, rest != "/" else {
                throw OutboxError(code: .invalidConfiguration, operation: "parse store URL",
                                  message: "The SQLite URL names no file; use for example sqlite:///var/lib/app/outbox.sqlite.")
            }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: rest, isDirectory: &isDirectory), isDirectory.boolValue {
                throw OutboxError(code: .invalidConfiguration, operation: "parse store URL",
                                  message: "The SQLite path \(rest) is a folder; name a file inside it, such as \(rest)/outbox.sqlite.")
            }
            kind = .sqlite(path: rest)
        case "postgres", "postgresql", "mysql", "mariadb", "mongodb", "mongodb+srv":
            throw OutboxError(code: .invalidConfiguration, operation: "parse store URL",
                              message: "The \(scheme) store is not built into this version of outbox yet; use a sqlite:// URL.")
        default:
            throw OutboxError(code: .invalidConfiguration, operation: "parse store URL",
                              message: "Unknown store scheme '\(scheme)'; use sqlite:///path/to/outbox.sqlite.")
        }
    }

    var description: String {
        switch kind {
        case .sqlite(let path): "sqlite://\(path)"
        }
    }

    /// Opens the store (without migrating it). Only `migrate` may create it: for every other
    /// command a missing file is a mistyped path, not a wish for an empty outbox.
    func open(partitionCount: Int = 32, creating: Bool = false) throws -> any OutboxStore {
        switch kind {
        case .sqlite(let path):
            if !creating && !FileManager.default.fileExists(atPath: path) {
                throw OutboxError(code: .invalidConfiguration, operation: "open store",
                                  message: "There is no outbox at \(path); check the path, or create it with `outbox migrate --store \(self)`.")
            }
            return try SQLiteOutboxStore(path: path, configuration: .init(partitionCount: partitionCount))
        }
    }
}
