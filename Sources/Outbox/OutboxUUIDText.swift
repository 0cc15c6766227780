package import Foundation

/// UUIDs to and from their 36-character text form without Foundation's formatter.
///
/// On Linux `UUID.uuidString` formats with `snprintf` and `UUID(uuidString:)` parses with `sscanf`;
/// on the relay's hot path (SQLite keeps ids as text, every Kafka message carries its id in a
/// header) the two cost about 4 % of a drain's CPU (`perf`, SQLite drain). These do the same with
/// a lookup table and produce identical text.
package enum OutboxUUIDText {
    private static let lowerDigits = Array("0123456789abcdef".utf8)
    private static let upperDigits = Array("0123456789ABCDEF".utf8)

    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lowercase unless `uppercase`.
    package static func string(_ id: UUID, uppercase: Bool = false) -> String {
        let digits = uppercase ? upperDigits : lowerDigits
        return withUnsafeBytes(of: id.uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { buffer in
                var position = 0
                for index in 0..<16 {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        buffer[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    buffer[position] = digits[Int(bytes[index] >> 4)]
                    buffer[position + 1] = digits[Int(bytes[index] & 0x0F)]
                    position += 2
                }
                return 36
            }
        }
    }

    /// Parses the 36-character form (either case); `nil` for anything else.
    package static func uuid(_ text: String) -> UUID? {
        var text = text
        return text.withUTF8 { utf8 -> UUID? in
            guard utf8.count == 36 else { return nil }
            var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            let parsed = withUnsafeMutableBytes(of: &bytes) { output -> Bool in
                var position = 0
                for index in 0..<16 {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        guard utf8[position] == UInt8(ascii: "-") else { return false }
                        position += 1
                    }
                    guard let high = nibble(utf8[position]), let low = nibble(utf8[position + 1]) else { return false }
                    output[index] = high << 4 | low
                    position += 2
                }
                return true
            }
            return parsed ? UUID(uuid: bytes) : nil
        }
    }

    private static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
