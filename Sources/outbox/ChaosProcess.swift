import Foundation

/// A child process of `outbox chaos`: this same executable with other arguments (or another
/// program, such as a broker's server), its output appended to a log file.
final class ChaosProcess: @unchecked Sendable {
    // @unchecked: driven by the chaos command's one task.
    let name: String
    private let executable: URL
    private let arguments: [String]
    private let logPath: String
    private(set) var process: Process?
    private(set) var input: Pipe?

    init(name: String, executable: URL = ChaosProcess.executable, arguments: [String], logPath: String) {
        self.name = name
        self.executable = executable
        self.arguments = arguments
        self.logPath = logPath
    }

    /// This executable, as the kernel knows it.
    static var executable: URL { URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath() }

    /// Starts (or restarts) the process.
    func start(withInput: Bool = false) throws {
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        guard let log = FileHandle(forWritingAtPath: logPath) else {
            throw ChaosFailure("Cannot write the log \(logPath).")
        }
        log.seekToEndOfFile()
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        // libmongoc (loaded by every `outbox` process) keeps diagnostic counters in
        // /dev/shm/mongoc-<pid> and removes the file at a clean exit. The chaos run SIGKILLs its
        // children, so their files would stay, and a later process given the same pid would start
        // with a libmongoc warning on stderr. The counters are for mongoc's own diagnostics only.
        var environment = ProcessInfo.processInfo.environment
        environment["MONGOC_DISABLE_SHM"] = "1"
        process.environment = environment
        process.standardOutput = log
        process.standardError = log
        if withInput {
            let pipe = Pipe()
            process.standardInput = pipe
            input = pipe
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
        self.process = process
    }

    var isRunning: Bool { process?.isRunning ?? false }

    func send(_ signal: Int32) {
        if let process, process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Writes one command line to the process's standard input.
    func command(_ line: String) {
        input?.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    /// Sends SIGTERM and waits up to `grace`; then SIGKILL.
    func stop(grace: Duration = .seconds(20)) async {
        send(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        send(SIGKILL)
        while isRunning { try? await Task.sleep(for: .milliseconds(20)) }
    }

    /// SIGKILL, as a crash would; returns when the process is gone.
    func crash() async {
        send(SIGKILL)
        while isRunning { try? await Task.sleep(for: .milliseconds(10)) }
    }
}

/// Runs a shell command (the database restart), output appended to `logPath`.
///
/// Through `system()`: Foundation's `Process` never saw a script end when a server it started
/// outlived it.
func runShell(_ command: String, logPath: String) async -> Int32 {
    let escaped = logPath.replacingOccurrences(of: "'", with: "'\\''")
    return await Task.detached { system("(\(command)) >> '\(escaped)' 2>&1") }.value
}

/// A chaos run that could not even be set up.
struct ChaosFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The processes a chaos run started, to SIGKILL those still running when the run ends early.
final class ChaosChildren: @unchecked Sendable {
    // @unchecked: used by the chaos command's one task only.
    private var processes: [ChaosProcess] = []

    func add(_ process: ChaosProcess) { processes.append(process) }

    func killAll() async {
        for process in processes where process.isRunning { await process.crash() }
    }
}
