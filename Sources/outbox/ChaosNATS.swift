import Foundation
import Outbox
import OutboxNATS

/// A real `nats-server` with JetStream, started by the chaos run on a free port with its data in
/// the run's folder, and a file-backed stream `CHAOS` on subject `chaos` (2-minute duplicate
/// window). Faults: the server restarted, SIGKILLed, or down for a few seconds.
final class ChaosNATS: ChaosBroker, @unchecked Sendable {
    // @unchecked: see ChaosBroker.
    let name = "NATS"
    private let server: ChaosProcess
    private let url: String
    private let port: Int
    static let stream = "CHAOS"

    init(folder: String) async throws {
        guard let program = Self.serverProgram() else {
            throw ChaosFailure("nats-server is not installed; install it (Debian: apt-get install nats-server) or run scripts/start-nats.sh once.")
        }
        port = try Self.freePort()
        url = "nats://127.0.0.1:\(port)"
        server = ChaosProcess(name: "nats-server", executable: program,
                              arguments: ["--addr", "127.0.0.1", "--port", "\(port)", "--jetstream", "--store_dir", "\(folder)/nats-data"],
                              logPath: "\(folder)/nats-server.log")
        try server.start()
        try await waitUntilUp(folder: folder)
        try NATSStreams(servers: url).createStream(Self.stream, subjects: ["chaos"], duplicateWindow: .seconds(120))
    }

    deinit { server.send(SIGKILL) }

    var processes: [ChaosProcess] { [server] }
    var relayArguments: [String] { ["--nats-url", url] }
    var faults: [String] { ["restart-server", "kill-server", "server-down"] }
    /// A fault takes 1–6 s; leave room for relay kills in between.
    var faultSpacing: Duration { .seconds(4) }

    func inject(_ fault: String, elapsed: @Sendable () -> String, progress: @Sendable (String) -> Void) async throws {
        switch fault {
        case "kill-server":
            await server.crash()
            progress("\(elapsed()) SIGKILLed nats-server")
            try await Task.sleep(for: .milliseconds(Int64.random(in: 200...1500)))
        case "server-down":
            await server.stop(grace: .seconds(10))
            let down = Int64.random(in: 2000...5000)
            progress("\(elapsed()) stopped nats-server for \(down) ms")
            try await Task.sleep(for: .milliseconds(down))
        default:
            await server.stop(grace: .seconds(10))
            progress("\(elapsed()) restarted nats-server")
        }
        try server.start()
        try await waitUntilUp(folder: nil)
    }

    func settle() async throws {
        if !server.isRunning {
            try server.start()
            try await waitUntilUp(folder: nil)
        }
    }

    func readBack(count: Int) async throws -> ChaosReadBack {
        let stored = try NATSStreams(servers: url).read(Self.stream)
        var ids: [UUID] = []
        var positions: [UUID: [String]] = [:]
        for message in stored {
            guard let id = message.headers["outbox-id"].flatMap(UUID.init(uuidString:)) else { continue }
            ids.append(id)
            positions[id, default: []].append("seq \(message.sequence)")
        }
        return ChaosReadBack(ids: ids, trimmed: 0, positions: positions)
    }

    func describeLoss(ledger: ChaosLedger, lostIDs: [UUID], readBack: ChaosReadBack, count: Int) async -> String {
        // The stream is read whole at the end: a second read would see the same.
        ChaosPostMortem(ledger: ledger, lostIDs: lostIDs, seen: readBack.positions, seenAgain: nil).text
    }

    func stop() async { await server.stop(grace: .seconds(5)) }

    /// Waits until the server takes connections and JetStream answers (it recovers its streams a
    /// moment after the port opens).
    private func waitUntilUp(folder: String?) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let streams = try? NATSStreams(servers: url, timeout: .milliseconds(500)),
               (try? streams.state(of: Self.stream)) != nil || folder != nil {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ChaosFailure("nats-server did not come up within 30 s; see its log\(folder.map { " in \($0)" } ?? "").")
    }

    private static func serverProgram() -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for folder in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin"] {
            let candidate = "\(folder)/nats-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return URL(fileURLWithPath: candidate) }
        }
        return nil
    }

    /// A port nothing listens on now: bound to 0, read back, released.
    private static func freePort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw ChaosFailure("Cannot open a socket to find a free port.") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic -> Bool in
                bind(socket, generic, length) == 0 && getsockname(socket, generic, &length) == 0
            }
        }
        guard bound else { throw ChaosFailure("Cannot find a free port for nats-server.") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
