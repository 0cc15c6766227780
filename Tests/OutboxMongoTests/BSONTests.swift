import Foundation
@testable import OutboxMongo
import Testing

@Suite("BSON")
struct BSONTests {
    @Test func everyTypeRoundTrips() throws {
        let document: BSONDocument = [
            "double": .double(-1.5), "string": "'; DROP TABLE x; -- 😀𝄞", "document": ["nested": ["deeper": 1]],
            "array": [1, "two", nil, [3]], "binary": .bytes(Array(0...255)), "uuid": .uuid(UUID()), "objectID": .objectID(Array(0..<12)),
            "true": true, "false": false, "date": .dateTime(1_700_000_000_000), "null": nil, "int32": .int32(-7),
            "timestamp": .timestamp(42), "int64": .int64(.min), "empty": "",
        ]
        let decoded = try BSONDocument(bson: try document.encoded())
        #expect(decoded == document)
        #expect(decoded.fields.map(\.name) == document.fields.map(\.name), "field order is kept")
    }

    /// Truncated or corrupted bytes are an error, never a crash or an out-of-bounds read.
    @Test func damagedBytesAreRejected() throws {
        let bytes = try (["key": "value", "list": [1, 2, 3], "blob": .bytes([1, 2, 3])] as BSONDocument).encoded()
        for length in 0..<bytes.count {
            #expect(throws: BSONError.self) { _ = try BSONDocument(bson: bytes.prefix(length)) }
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            var damaged = bytes
            damaged[Int.random(in: 0..<damaged.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            _ = try? BSONDocument(bson: damaged)
        }
        #expect(throws: BSONError.self) { _ = try (["bad\u{0}name": 1] as BSONDocument).encoded() }
    }

    /// A document nested 200,000 deep (1.6 MB, under the 16 MB limit) is refused with a sentence;
    /// the decoder does not recurse until the stack runs out.
    @Test func deepNestingIsRefusedNotRecursed() throws {
        func nested(_ levels: Int) -> [UInt8] {
            var prefix: [UInt8] = [], suffix: [UInt8] = []
            var length = 5  // the innermost, empty document
            var lengths: [Int] = []
            for _ in 0..<levels {
                length += 8  // length, type 0x03, name "a\0", terminator
                lengths.append(length)
            }
            for length in lengths.reversed() {
                withUnsafeBytes(of: Int32(length).littleEndian) { prefix.append(contentsOf: $0) }
                prefix.append(contentsOf: [0x03, 0x61, 0x00])
                suffix.append(0x00)
            }
            return prefix + [5, 0, 0, 0, 0] + suffix
        }
        let error = #expect(throws: BSONError.self) { _ = try BSONDocument(bson: nested(200_000)) }
        #expect(error?.description.contains("nested deeper than 100") == true)
        #expect(throws: Never.self) { _ = try BSONDocument(bson: nested(99)) }
    }

    @Test func standaloneServersAreToldApart() {
        #expect(MongoClient.supportsTransactions(hello: ["isWritablePrimary": true, "setName": "rs0"]))
        #expect(MongoClient.supportsTransactions(hello: ["isWritablePrimary": true, "msg": "isdbgrid"]))
        #expect(!MongoClient.supportsTransactions(hello: ["isWritablePrimary": true, "maxWireVersion": .int32(17)]))
    }
}
