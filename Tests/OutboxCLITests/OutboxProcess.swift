import Foundation
import Testing

/// The built `outbox` executable, run as a child process the way a user or an operator would.
final class OutboxProcess: @unchecked Sendable {
    // @unchecked: `Process` is not Sendable; each instance is driven by one test at a time.
    let process = Process()
    let standardError = Pipe()
    let standardOutput = Pipe()

    /// The executable beside the test bundle (`swift build` puts both in the same folder).
    static var executable: URL {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var folder = bundle.deletingLastPathComponent()
        while folder.path != "/" {
            let candidate = folder.appendingPathComponent("outbox")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                return candidate
            }
            folder = folder.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: ".build/debug/outbox")
    }

    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = Self.executable
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        merged.removeValue(forKey: "OUTBOX_STORE_URL")
        merged.merge(environment) { $1 }
        process.environment = merged
        process.standardError = standardError
        process.standardOutput = standardOutput
        try process.run()
    }

    /// Runs to completion and returns the exit code, standard output and standard error.
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)) async throws
        -> (status: Int32, output: String, error: String)
    {
        let child = try OutboxProcess(arguments, environment: environment)
        let output = Task.detached { child.standardOutput.fileHandleForReading.readDataToEndOfFile() }
        let error = Task.detached { child.standardError.fileHandleForReading.readDataToEndOfFile() }
        let status = try await child.wait(timeout: timeout)
        return (status, String(decoding: await output.value, as: UTF8.self), String(decoding: await error.value, as: UTF8.self))
    }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits for the process to end; kills it and fails after `timeout`.
    func wait(timeout: Duration) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                signal(SIGKILL)
                throw ProcessTimeout(arguments: process.arguments ?? [])
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }
}

struct ProcessTimeout: Error, CustomStringConvertible {
    let arguments: [String]
    var description: String { "outbox \(arguments.joined(separator: " ")) did not finish in time" }
}

/// A temporary folder removed at the end of the test.
struct TemporaryFolder: ~Copyable {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-cli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    deinit { try? FileManager.default.removeItem(at: url) }
}
