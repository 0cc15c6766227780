import Foundation

/// The figures of one bench run, each beside the raw limit it is judged against.
struct BenchReport: Encodable {
    struct Figure: Encodable {
        /// Scenario and measurement, e.g. `drain`, `scale 2 relays`.
        let name: String
        let value: Double
        let unit: String
        /// The raw limit this figure is compared with, when there is one.
        let limit: String?
        let ratio: Double?
    }

    let store: String
    let messages: Int
    let payloadBytes: Int
    let keys: Int
    let batchSize: Int
    let batchesInFlight: Int
    let startedAt: Date
    var figures: [Figure] = []

    /// Records a figure and prints it as a table row at once (long runs show progress this way).
    mutating func add(_ name: String, _ value: Double, _ unit: String, against limit: (name: String, value: Double)? = nil) {
        let ratio = limit.map { $0.value > 0 ? value / $0.value : 0 }
        figures.append(Figure(name: name, value: value, unit: unit, limit: limit?.name, ratio: ratio))
        let ratioText = ratio.map { String(format: "%.2f× ", $0) + limit!.name } ?? ""
        let number = String(format: "%12.1f", value)
        print("  " + name.padding(toLength: 36, withPad: " ", startingAt: 0) + number + " " + unit.padding(toLength: 7, withPad: " ", startingAt: 0) + " " + ratioText)
    }

    func write(json path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try encoder.encode(self).write(to: URL(fileURLWithPath: path))
    }
}
