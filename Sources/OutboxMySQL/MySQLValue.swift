import Foundation

/// A value bound to a `?` placeholder or read from a result column.
///
/// Values always travel as prepared-statement parameters, never inside the SQL text.
public enum MySQLValue: Sendable, Hashable {
    /// SQL `NULL`.
    case null
    /// Any integer column (`TINYINT` … `BIGINT`).
    case integer(Int64)
    /// Text in the connection's character set (utf8mb4).
    case text(String)
    /// Binary data (`BLOB`, `VARBINARY`, `BINARY`), and columns of any other type as the server
    /// formats them.
    case bytes([UInt8])

    /// Binds a `String?` as text, `nil` as `NULL`.
    public static func text(_ value: String?) -> MySQLValue { value.map { .text($0) } ?? .null }
    /// Binds an integer.
    public static func int(_ value: some BinaryInteger) -> MySQLValue { .integer(Int64(value)) }

    /// The value as an integer, if it is one (or integer text).
    public var int64: Int64? {
        switch self {
        case .integer(let value): value
        case .text(let text): Int64(text)
        case .bytes(let bytes): Int64(String(decoding: bytes, as: UTF8.self))
        case .null: nil
        }
    }

    /// The value as text (bytes are decoded as UTF-8), `nil` for `NULL`.
    public var string: String? {
        switch self {
        case .text(let text): text
        case .bytes(let bytes): String(decoding: bytes, as: UTF8.self)
        case .integer(let value): String(value)
        case .null: nil
        }
    }

    /// The value's bytes, `nil` for `NULL`.
    public var bytesValue: [UInt8]? {
        switch self {
        case .bytes(let bytes): bytes
        case .text(let text): Array(text.utf8)
        case .integer(let value): Array(String(value).utf8)
        case .null: nil
        }
    }

    /// Whether the value is `NULL`.
    public var isNull: Bool { if case .null = self { true } else { false } }
}

extension MySQLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(nilLiteral: ()) { self = .null }
}

/// One row of a result.
public struct MySQLRow: Sendable, Hashable {
    /// The column values, in select-list order.
    public var values: [MySQLValue]

    /// Creates a row.
    public init(values: [MySQLValue]) { self.values = values }

    /// The value of the column at `index`.
    public subscript(index: Int) -> MySQLValue { values[index] }
}

/// What a statement returned.
public struct MySQLResult: Sendable {
    /// Column names of the result set (empty for statements without one).
    public var columns: [String]
    /// The rows, all read before the call returned.
    public var rows: [MySQLRow]
    /// Rows changed by an `INSERT`, `UPDATE` or `DELETE` (matched rows are not counted).
    public var affectedRows: Int
    /// The first `AUTO_INCREMENT` value an `INSERT` generated, or 0.
    public var lastInsertID: Int64
}
