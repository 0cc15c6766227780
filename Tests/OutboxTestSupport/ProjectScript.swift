public import Foundation
import OutboxTesting

/// Runs the project's own scripts (`scripts/…`) from tests: starting, restarting and stopping
/// test servers.
public enum ProjectScript {
    /// Runs `scripts/<name>` from the package root and returns its standard output, trimmed.
    ///
    /// A script may leave a server running, so two things are avoided: pipes (the server keeps
    /// the write end and the output never ends; the output goes to a file) and `system()`, whose
    /// child inherits every descriptor of the test process — a server started that way held the
    /// pipes of `outbox` processes the tests were running at the same time, and their output
    /// never ended. `Process` closes the descriptors its child does not need. The end is watched
    /// with `waitpid` as well: `Process` did not always report it.
    ///
    /// - Throws: ``ConformanceFailure`` when the script exits with a non-zero status.
    public static func run(_ name: String, arguments: [String] = [], environment: [String: String] = [:]) async throws -> String {
        let outputURL = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-script-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outputURL) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "scripts/\(name)")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: outputURL)
        process.standardError = FileHandle.nullDevice
        try process.run()
        let status = try await waitForExit(of: process)
        guard status == 0 else { throw ConformanceFailure("scripts/\(name) failed with status \(status)") }
        let data = FileManager.default.contents(atPath: outputURL.path) ?? Data()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The exit status of a started process (128 + the signal when one ended it).
    public static func waitForExit(of process: Process) async throws -> Int32 {
        while true {
            if let status = exitStatus(of: process) { return status }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The exit status (128 + the signal when one ended it) if the process has ended, else `nil`.
    ///
    /// Asks `waitpid` as well as `Process`, which did not always report the end in a test process
    /// that had started many children. Once this has returned a status, `Process` may never learn
    /// of the end: keep the answer.
    public static func exitStatus(of process: Process) -> Int32? {
        let pid = process.processIdentifier
        var raw: Int32 = 0
        if waitpid(pid, &raw, WNOHANG) == pid {
            // Exited normally: the code is in bits 8–15; killed by a signal: 128 + signal.
            return raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// How many running processes have `text` in their command line (from /proc).
    public static func processCount(matching text: String) async throws -> Int {
        let own = ProcessInfo.processInfo.processIdentifier
        var count = 0
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc") {
            guard let pid = Int32(entry), pid != own,
                  let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let commandLine = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            if commandLine.contains(text) { count += 1 }
        }
        return count
    }
}
