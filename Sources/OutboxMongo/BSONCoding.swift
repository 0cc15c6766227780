/// Encodes and decodes BSON (bsonspec.org, version 1.1) on byte arrays.
///
/// Decoding checks every length against the buffer before reading, so a damaged or hostile
/// document is an error, never a crash.
extension BSONDocument {
    /// The document's BSON bytes.
    ///
    /// - Throws: ``BSONError`` for a field name containing NUL, which BSON cannot represent.
    public func encoded() throws -> [UInt8] {
        var bytes: [UInt8] = []
        try Self.encode(self, into: &bytes)
        return bytes
    }

    /// Decodes a whole document.
    public init(bson bytes: some Collection<UInt8>) throws {
        let array = Array(bytes)
        var reader = BSONReader(bytes: array, position: 0)
        self = try reader.document()
        guard reader.position == array.count else { throw BSONError(description: "Trailing bytes after a BSON document.") }
    }

    private static func encode(_ document: BSONDocument, into bytes: inout [UInt8]) throws {
        let start = bytes.count
        bytes.append(contentsOf: [0, 0, 0, 0])
        for field in document.fields {
            try encode(field.value, name: field.name, into: &bytes)
        }
        bytes.append(0)
        let length = Int32(bytes.count - start)
        withUnsafeBytes(of: length.littleEndian) { bytes.replaceSubrange(start..<start + 4, with: $0) }
    }

    private static func encode(_ value: BSONValue, name: String, into bytes: inout [UInt8]) throws {
        guard !name.utf8.contains(0) else { throw BSONError(description: "A BSON field name contains a NUL byte.") }
        func header(_ type: UInt8) {
            bytes.append(type)
            bytes.append(contentsOf: name.utf8)
            bytes.append(0)
        }
        func little<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        switch value {
        case .double(let double):
            header(0x01); little(double.bitPattern)
        case .string(let string):
            header(0x02); little(Int32(string.utf8.count + 1)); bytes.append(contentsOf: string.utf8); bytes.append(0)
        case .document(let document):
            header(0x03); try encode(document, into: &bytes)
        case .array(let elements):
            header(0x04)
            try encode(BSONDocument(elements.enumerated().map { (String($0.offset), $0.element) }), into: &bytes)
        case .binary(let subtype, let data):
            header(0x05); little(Int32(data.count)); bytes.append(subtype); bytes.append(contentsOf: data)
        case .objectID(let id):
            header(0x07); bytes.append(contentsOf: id.prefix(12)); bytes.append(contentsOf: Array(repeating: 0, count: max(0, 12 - id.count)))
        case .bool(let bool):
            header(0x08); bytes.append(bool ? 1 : 0)
        case .dateTime(let milliseconds):
            header(0x09); little(milliseconds)
        case .null:
            header(0x0A)
        case .int32(let int):
            header(0x10); little(int)
        case .timestamp(let timestamp):
            header(0x11); little(timestamp)
        case .int64(let int):
            header(0x12); little(int)
        case .other(let type, let raw):
            header(type); bytes.append(contentsOf: raw)
        }
    }
}

/// A bounds-checked cursor over BSON bytes.
struct BSONReader {
    let bytes: [UInt8]
    var position: Int
    /// Documents and arrays being read, one inside the other.
    private var depth = 0

    /// The deepest nesting read, as the MongoDB server allows: a document nested deeper is refused
    /// instead of recursing until the stack runs out.
    static let maximumDepth = 100

    init(bytes: [UInt8], position: Int) {
        self.bytes = bytes
        self.position = position
    }

    private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count - position else { throw BSONError(description: "A BSON value runs past the end of its document.") }
        defer { position += count }
        return bytes[position..<position + count]
    }

    private mutating func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let slice = try take(MemoryLayout<T>.size)
        return slice.reversed().reduce(T.zero) { ($0 << 8) | T(truncatingIfNeeded: $1) }
    }

    private mutating func cString() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0) else { throw BSONError(description: "A BSON name is not terminated.") }
        defer { position = end + 1 }
        return String(decoding: bytes[position..<end], as: UTF8.self)
    }

    private mutating func string() throws -> String {
        let length = Int(try integer(Int32.self))
        guard length >= 1 else { throw BSONError(description: "A BSON string has a negative length.") }
        let slice = try take(length)
        guard slice.last == 0 else { throw BSONError(description: "A BSON string is not terminated.") }
        return String(decoding: slice.dropLast(), as: UTF8.self)
    }

    mutating func document() throws -> BSONDocument {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else {
            throw BSONError(description: "A BSON document is nested deeper than \(Self.maximumDepth) levels.")
        }
        let start = position
        let length = Int(try integer(Int32.self))
        guard length >= 5, length <= bytes.count - start else { throw BSONError(description: "A BSON document has a wrong length.") }
        let end = start + length
        var fields: [(String, BSONValue)] = []
        while position < end - 1 {
            let type = try take(1).first!
            let name = try cString()
            fields.append((name, try value(type: type)))
        }
        guard position == end - 1, bytes[position] == 0 else { throw BSONError(description: "A BSON document is not terminated.") }
        position = end
        return BSONDocument(fields)
    }

    private mutating func value(type: UInt8) throws -> BSONValue {
        switch type {
        case 0x01: return .double(Double(bitPattern: try integer(UInt64.self)))
        case 0x02, 0x0D, 0x0E:
            let text = try string()
            return type == 0x02 ? .string(text) : .other(type: type, Array(text.utf8))
        case 0x03: return .document(try document())
        case 0x04: return .array(try document().fields.map(\.value))
        case 0x05:
            let length = Int(try integer(Int32.self))
            let subtype = try take(1).first!
            return .binary(subtype: subtype, Array(try take(length)))
        case 0x06, 0x0A, 0x7F, 0xFF: return type == 0x0A ? .null : .other(type: type, [])
        case 0x07: return .objectID(Array(try take(12)))
        case 0x08: return .bool(try take(1).first! != 0)
        case 0x09: return .dateTime(try integer(Int64.self))
        case 0x0B:
            let start = position
            _ = try cString(); _ = try cString()
            return .other(type: type, Array(bytes[start..<position]))
        case 0x0C:
            let start = position
            _ = try string(); _ = try take(12)
            return .other(type: type, Array(bytes[start..<position]))
        case 0x0F:
            let start = position
            let length = Int(try integer(Int32.self))
            position = start
            return .other(type: type, Array(try take(length)))
        case 0x10: return .int32(try integer(Int32.self))
        case 0x11: return .timestamp(try integer(UInt64.self))
        case 0x12: return .int64(try integer(Int64.self))
        case 0x13: return .other(type: type, Array(try take(16)))
        default: throw BSONError(description: "Unknown BSON type 0x\(String(type, radix: 16)).")
        }
    }
}
