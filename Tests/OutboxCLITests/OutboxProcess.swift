import Foundation
import OutboxTestSupport
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
        // The test command exports the servers' URLs for the suites; a child `outbox` must see only
        // what its test gives it (a broker URL in its environment would be its destination).
        for variable in ["OUTBOX_STORE_URL", "OUTBOX_KAFKA_BROKERS", "OUTBOX_NATS_URL", "OUTBOX_AMQP_URL"] { merged.removeValue(forKey: variable) }
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
        while true {
            if let exitStatus { return exitStatus }
            if ContinuousClock.now > deadline {
                signal(SIGKILL)
                throw ProcessTimeout(arguments: process.arguments ?? [])
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Whether the process is still running.
    var isRunning: Bool { exitStatus == nil }

    private var reapedStatus: Int32?

    /// The exit status once the process has ended, else `nil`; see ``ProjectScript/exitStatus(of:)``.
    var exitStatus: Int32? {
        if reapedStatus == nil { reapedStatus = ProjectScript.exitStatus(of: process) }
        return reapedStatus
    }
}

extension OutboxProcess {
    /// Runs a long command with its output in files rather than pipes, and watches for its end
    /// with `waitpid` as well as `Process`: the chaos command starts servers and processes of its
    /// own, and in a test process that had run several of them `Process` never reported the end
    /// of `outbox chaos` (it stayed a zombie until the timeout).
    static func runLong(_ arguments: [String], timeout: Duration) async throws -> (status: Int32, output: String, error: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-run-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outputURL = folder.appendingPathComponent("stdout"), errorURL = folder.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        for variable in ["OUTBOX_STORE_URL", "OUTBOX_KAFKA_BROKERS", "OUTBOX_NATS_URL", "OUTBOX_AMQP_URL"] { environment.removeValue(forKey: variable) }
        process.environment = environment
        process.standardOutput = try FileHandle(forWritingTo: outputURL)
        process.standardError = try FileHandle(forWritingTo: errorURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + timeout
        var status: Int32?
        while status == nil {
            status = ProjectScript.exitStatus(of: process)
            if status == nil && ContinuousClock.now > deadline {
                kill(process.processIdentifier, SIGKILL)
                throw ProcessTimeout(arguments: arguments)
            }
            if status == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let output = (try? String(contentsOf: outputURL, encoding: .utf8)) ?? ""
        let error = (try? String(contentsOf: errorURL, encoding: .utf8)) ?? ""
        return (status!, output, error)
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
