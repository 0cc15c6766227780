public import Foundation
import Outbox

/// A BSON value: what a MongoDB document field holds.
///
/// Documents are encoded and decoded in Swift, on plain byte arrays; libbson only ever receives a
/// finished byte buffer (`bson_new_from_data`) and hands back its bytes (`bson_get_data`). That
/// keeps libbson's 128-byte-aligned `bson_t` out of Swift memory altogether.
public indirect enum BSONValue: Sendable, Hashable {
    case double(Double)
    case string(String)
    case document(BSONDocument)
    case array([BSONValue])
    case binary(subtype: UInt8, [UInt8])
    case objectID([UInt8])
    case bool(Bool)
    /// Milliseconds since 1970.
    case dateTime(Int64)
    case null
    case int32(Int32)
    case timestamp(UInt64)
    case int64(Int64)
    /// A type this library does not interpret (decimal128, regex, code, …), kept as raw bytes.
    case other(type: UInt8, [UInt8])

    /// The value as an integer, for any of the numeric types.
    public var int64Value: Int64? {
        switch self {
        case .int32(let value): Int64(value)
        case .int64(let value): value
        case .double(let value) where value.rounded() == value && abs(value) < 9.0e18: Int64(value)
        default: nil
        }
    }

    /// The string, if the value is one.
    public var stringValue: String? { if case .string(let value) = self { value } else { nil } }
    /// The bytes of a binary value.
    public var binaryValue: [UInt8]? { if case .binary(_, let bytes) = self { bytes } else { nil } }
    /// The document, if the value is one.
    public var documentValue: BSONDocument? { if case .document(let value) = self { value } else { nil } }
    /// The elements, if the value is an array.
    public var arrayValue: [BSONValue]? { if case .array(let value) = self { value } else { nil } }
    /// The boolean, if the value is one.
    public var boolValue: Bool? { if case .bool(let value) = self { value } else { nil } }
    /// Whether the value is BSON null.
    public var isNull: Bool { if case .null = self { true } else { false } }

    /// A UUID as BSON binary subtype 4.
    public static func uuid(_ uuid: UUID) -> BSONValue {
        .binary(subtype: 4, withUnsafeBytes(of: uuid.uuid) { Array($0) })
    }

    /// Generic binary data (subtype 0).
    public static func bytes(_ bytes: [UInt8]) -> BSONValue { .binary(subtype: 0, bytes) }
}

extension BSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    /// Integer literals are int64, so a field's type never depends on its value.
    public init(integerLiteral value: Int64) { self = .int64(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: BSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, BSONValue)...) { self = .document(BSONDocument(elements)) }
    public init(nilLiteral: ()) { self = .null }
}

/// A BSON document: fields in order (MongoDB commands care about the first field's name).
public struct BSONDocument: Sendable, Hashable, ExpressibleByDictionaryLiteral {
    /// The fields, in order.
    public var fields: [(name: String, value: BSONValue)]

    /// Creates a document from fields in order.
    public init(_ fields: [(String, BSONValue)] = []) {
        self.fields = fields.map { (name: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, BSONValue)...) { self.init(elements) }

    /// The value of the first field called `name`.
    public subscript(name: String) -> BSONValue? {
        get { fields.first { $0.name == name }?.value }
        set {
            if let index = fields.firstIndex(where: { $0.name == name }) {
                if let newValue { fields[index].value = newValue } else { fields.remove(at: index) }
            } else if let newValue {
                fields.append((name: name, value: newValue))
            }
        }
    }

    public static func == (lhs: BSONDocument, rhs: BSONDocument) -> Bool {
        lhs.fields.count == rhs.fields.count && zip(lhs.fields, rhs.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for field in fields {
            hasher.combine(field.name)
            hasher.combine(field.value)
        }
    }
}

/// A byte buffer that is not valid BSON.
public struct BSONError: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public var description: String
}

extension BSONValue {
    /// A message's state as the documents store it.
    static func state(_ state: OutboxRowState) -> BSONValue { .int64(Int64(state.rawValue)) }
}
