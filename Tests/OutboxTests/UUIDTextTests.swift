import Foundation
import Outbox
import Testing

@Suite struct UUIDTextTests {
    /// The fast formatter must give Foundation's exact text: keyless messages are partitioned by
    /// a hash of it, so any difference would move them to other partitions.
    @Test func formatsAndParsesLikeFoundation() {
        for _ in 0..<2_000 {
            let id = UUID()
            #expect(OutboxUUIDText.string(id, uppercase: true) == id.uuidString)
            #expect(OutboxUUIDText.string(id) == id.uuidString.lowercased())
            #expect(OutboxUUIDText.uuid(id.uuidString) == id)
            #expect(OutboxUUIDText.uuid(id.uuidString.lowercased()) == id)
        }
    }

    @Test func refusesMalformedText() {
        for text in ["", "not-a-uuid", "0123456789abcdef0123456789abcdef0123",
                     "01234567-89ab-cdef-0123-456789abcdeg", "01234567-89ab-cdef-0123+456789abcdef",
                     "01234567-89ab-cdef-0123-456789abcdef0", "0123456789-ab-cdef-0123-456789abcdef"] {
            #expect(OutboxUUIDText.uuid(text) == nil, "\(text)")
        }
    }
}
