import Foundation
import OutboxTesting

/// Runs the project's own scripts (`scripts/…`) from tests: starting, restarting and stopping
/// test servers.
public enum ProjectScript {
    /// Runs `scripts/<name>` from the package root and returns its standard output, trimmed.
    ///
    /// Through `/bin/sh` with the output in a file: Foundation's `Process` never saw a script end
    /// when a server it started outlived it.
    ///
    /// - Throws: ``ConformanceFailure`` when the script exits with a non-zero status.
    public static func run(_ name: String, arguments: [String] = [], environment: [String: String] = [:]) async throws -> String {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-script-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let assignments = environment.map { "\($0.key)='\($0.value)'" }.joined(separator: " ")
        let command = "\(assignments) scripts/\(name) \(arguments.joined(separator: " ")) > \(outputPath) 2>/dev/null"
        let status = await Task.detached { system(command) }.value
        guard status == 0 else { throw ConformanceFailure("scripts/\(name) failed with status \(status)") }
        let data = FileManager.default.contents(atPath: outputPath) ?? Data()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
