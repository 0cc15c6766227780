import Foundation
import GRDB
import Outbox
import OutboxKafka
import OutboxSQLite
import OutboxTesting
import Testing

@Suite("CLI")
struct CommandLineTests {
    /// Bad input gets one sentence on standard error and a non-zero exit.
    @Test(arguments: [
        (["status", "--store", ""], "empty"),
        (["status", "--store", "no-scheme"], "no scheme"),
        (["status", "--store", "ftp://host/file"], "Unknown store scheme"),
        (["status", "--store", "sqlite:///no/such/folder/outbox.sqlite"], "There is no outbox"),
        (["migrate", "--store", "sqlite:///no/such/folder/outbox.sqlite"], "check that the folder exists"),
        (["status", "--store", "sqlite:///tmp"], "is a folder"),
        (["migrate", "--store", "sqlite:///etc/passwd/outbox.sqlite"], "check that the folder exists and is writable"),
        (["status", "--store", "mysql://"], "The MySQL URL names no host"),
        (["status", "--store", "mysql://u@h/db?ssl-mode=maybe"], "ssl-mode must be"),
        (["status", "--store", "mysql://u:pw@127.0.0.1:1/db"], "Cannot connect to MySQL at 127.0.0.1:1"),
        (["status", "--store", "postgres://u@127.0.0.1:1/db?ssl-mode=require"], "unknown option \"ssl-mode\"; the one understood is sslmode"),
        (["relay", "--output", "-", "--metrics-address", "localhost"], "--metrics-address: The listen address 'localhost' has no port"),
        (["relay", "--output", "-", "--metrics-address", "127.0.0.1:99999"], "port that is not a number from 0 to 65535"),
        (["relay", "--output", "-", "--backlog-gauge-seconds", "0"], "--backlog-gauge-seconds must be between"),
        (["status", "--store", "mongodb://"], "The MongoDB URL names no host"),
        (["status", "--store", "mongodb://h/a.b"], "database name in the URL is not valid"),
        (["status", "--store", "mongodb://127.0.0.1:1/db?serverSelectionTimeoutMS=300"], "Cannot connect to MongoDB at 127.0.0.1:1"),
        (["bench", "--scenarios", "drain,fly"], "Unknown scenario"),
        (["bench", "--batches-in-flight", "0"], "--batches-in-flight must be between 1 and 64"),
        (["chaos", "--seconds", "1"], "--seconds"),
        (["kafka-probe", "--batch", "0"], "--batch must be between 1 and 10000"),
        (["migrate", "--partitions", "0"], "--partitions"),
        (["relay", "--batch-size", "0"], "--batch-size"),
        (["status", "--log-level", "loud"], "Unknown log level"),
        (["dead-letters", "retry"], "--all"),
        (["demo", "--relays", "99"], "--relays"),
        (["nonsense"], "Unexpected argument"),
    ])
    func badInputIsOneClearSentence(arguments: [String], expected: String) async throws {
        let result = try await OutboxProcess.run(arguments)
        #expect(result.status != 0)
        let firstLine = result.error.split(separator: "\n").first.map(String.init) ?? ""
        #expect(firstLine.contains(expected), "stderr was: \(result.error)")
        #expect(!result.error.contains("Fatal error") && !result.error.contains("Stack dump"))
    }

    @Test func passwordsInStoreURLsAreNeverPrinted() async throws {
        for url in ["postgres://app:s3cr3t-pw@127.0.0.1:1/shop", "postgres://app:s3cr3t-pw@127.0.0.1:55432/nodb?sslmode=disable", "mysql://root:s3cr3t-pw@localhost/shop", "mysql://root:s3cr3t-pw@127.0.0.1:1/shop",
                    "mongodb://app:s3cr3t-pw@127.0.0.1:1/shop?serverSelectionTimeoutMS=300", "mongodb://app:s3cr3t-pw@", "bogus://u:s3cr3t-pw@x"] {
            let result = try await OutboxProcess.run(["status", "--store", url])
            #expect(result.status != 0)
            #expect(!result.error.contains("s3cr3t-pw") && !result.output.contains("s3cr3t-pw"), "\(url) leaked into: \(result.error)")
        }
    }

    @Test func storeURLComesFromTheEnvironment() async throws {
        let folder = try TemporaryFolder()
        let url = "sqlite://\(folder.path("env.sqlite"))"
        let migrated = try await OutboxProcess.run(["migrate", "--partitions", "8"], environment: ["OUTBOX_STORE_URL": url])
        #expect(migrated.status == 0, "\(migrated.error)")
        #expect(migrated.output.contains("8 partitions"))
        let status = try await OutboxProcess.run(["status", "--json"], environment: ["OUTBOX_STORE_URL": url])
        #expect(status.status == 0)
        #expect(status.output.contains("\"partition_count\" : 8"))
    }

    @Test func damagedOrForeignDatabaseIsNamed() async throws {
        let folder = try TemporaryFolder()
        _ = FileManager.default.createFile(atPath: folder.path("garbage.sqlite"), contents: Data(repeating: 0x42, count: 8192))
        let garbage = try await OutboxProcess.run(["status", "--store", "sqlite://\(folder.path("garbage.sqlite"))"])
        #expect(garbage.status != 0)
        #expect(garbage.error.contains("not an SQLite database"), "\(garbage.error)")

        let foreign = try SQLiteOutboxStore(path: folder.path("foreign.sqlite"))
        try await foreign.writer.write { db in try db.execute(sql: "CREATE TABLE outbox_messages (x INTEGER)") }
        let migrate = try await OutboxProcess.run(["migrate", "--store", "sqlite://\(folder.path("foreign.sqlite"))"])
        #expect(migrate.status != 0)
        #expect(migrate.error.contains("did not create"), "\(migrate.error)")
    }

    @Test func deadLettersCanBeListedRetriedAndDiscarded() async throws {
        let folder = try TemporaryFolder()
        let store = try SQLiteOutboxStore(path: folder.path("dead.sqlite"))
        try await store.migrate()
        let hostile = "'; DROP TABLE outbox_messages; --"
        try await store.writer.write { db in
            try store.enqueue((0..<3).map { OutboxMessage(topic: "orders", key: "\(hostile)\($0)", text: "secret payload \($0)") }, in: db)
        }
        let grant = try await store.heartbeat(OutboxHeartbeat(relayID: "test", leaseDuration: .seconds(30)))
        let claimed = try await store.claim(partitions: grant.owned.sorted(), limit: 10, now: Date())
        _ = try await store.acknowledge(OutboxAcknowledgement(relayID: "test", deadLetters: claimed.map {
            .init(sequence: $0.sequence, partition: $0.partition, error: "broker rejected: record too large")
        }))
        try await store.resign(relayID: "test")
        let url = "sqlite://\(folder.path("dead.sqlite"))"

        let list = try await OutboxProcess.run(["dead-letters", "list", "--store", url])
        #expect(list.status == 0)
        #expect(list.output.split(separator: "\n").count == 3)
        #expect(list.output.contains("broker rejected: record too large"))
        #expect(!list.output.contains("secret payload"), "payloads are never shown")

        let retry = try await OutboxProcess.run(["dead-letters", "retry", "--store", url, "\(claimed[0].sequence)"])
        #expect(retry.output.contains("Retried 1 dead letter."))
        let discard = try await OutboxProcess.run(["dead-letters", "discard", "--store", url, "--all"])
        #expect(discard.output.contains("Discarded 2 dead letters."))
        let status = try await store.status(now: Date())
        #expect(status.pending == 1 && status.dead == 0)
    }

    /// Keys, types, topics and reasons holding terminal escapes, newlines and tabs are printed
    /// escaped: they cannot forge lines or columns, or drive the terminal.
    @Test func hostileTextIsPrintedEscaped() async throws {
        let folder = try TemporaryFolder()
        let store = try SQLiteOutboxStore(path: folder.path("hostile.sqlite"))
        try await store.migrate()
        let escape = "\u{1B}[2J\u{1B}]0;owned\u{07}"
        try await store.writer.write { db in
            try store.enqueue(OutboxMessage(topic: "orders", key: "k\n1\tforged\(escape)", type: "T\r\u{202E}evil", text: "x"), in: db)
        }
        let grant = try await store.heartbeat(OutboxHeartbeat(relayID: "relay\n\(escape)", leaseDuration: .seconds(30)))
        let claimed = try await store.claim(partitions: grant.owned.sorted(), limit: 10, now: Date())
        _ = try await store.acknowledge(OutboxAcknowledgement(relayID: "relay\n\(escape)", deadLetters: claimed.map {
            .init(sequence: $0.sequence, partition: $0.partition, error: "rejected\n2\tfake line\(escape)")
        }))
        let url = "sqlite://\(folder.path("hostile.sqlite"))"
        let list = try await OutboxProcess.run(["dead-letters", "list", "--store", url])
        #expect(list.status == 0)
        #expect(list.output.split(separator: "\n").count == 1, "one dead letter, one line: \(list.output)")
        #expect(list.output.split(separator: "\t").count == 8, "eight columns")
        #expect(!list.output.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x0D || $0.value == 0x202E })
        #expect(list.output.contains("key=k\\n1\\tforged\\u{1b}[2J"), "\(list.output)")
        let status = try await OutboxProcess.run(["status", "--store", url])
        #expect(status.status == 0)
        #expect(!status.output.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 })
        #expect(status.output.contains("relay relay\\n\\u{1b}"), "\(status.output)")
    }

    /// Files the CLI creates hold payloads: they are readable by their owner only.
    @Test func filesTheCommandCreatesAreNotWorldReadable() async throws {
        let folder = try TemporaryFolder()
        let url = "sqlite://\(folder.path("private.sqlite"))"
        let migrate = try await OutboxProcess.run(["migrate", "--store", url])
        #expect(migrate.status == 0, "\(migrate.error)")
        let store = try SQLiteOutboxStore(path: folder.path("private.sqlite"))
        try await store.writer.write { db in try store.enqueue(OutboxMessage(topic: "t", text: "secret"), in: db) }
        let relay = try OutboxProcess(["relay", "--store", url, "--output", folder.path("out.jsonl")])
        try await waitUntil("the relay wrote the message") { (try? Data(contentsOf: URL(fileURLWithPath: folder.path("out.jsonl"))).count) ?? 0 > 0 }
        relay.signal(SIGTERM)
        _ = try await relay.wait(timeout: .seconds(20))
        for file in ["private.sqlite", "out.jsonl"] {
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: folder.path(file))[.posixPermissions] as? Int)
            #expect(mode & 0o077 == 0, "\(file) has mode \(String(mode, radix: 8))")
        }
    }

    @Test func demoOnKafkaVerifiesEveryMessage() async throws {
        let folder = try TemporaryFolder()
        let result = try await OutboxProcess.run(
            ["demo", "--messages", "3000", "--writers", "3", "--customers", "50", "--folder", folder.path("demo")], timeout: .seconds(180))
        #expect(result.status == 0, "\(result.output)\n\(result.error)")
        #expect(result.output.contains("Kafka (in-process mock cluster)"))
        #expect(result.output.contains("3000 committed, 3000 delivered, 0 lost"))
        #expect(result.output.contains("order violations  0"))
        #expect(result.output.contains("handled           3000 of 3000 orders, handled twice 0, not handled 0, order violations 0"), "\(result.output)")
        #expect(result.output.contains("the consumers handled each order exactly once, in per-customer order"))
        // Read the projection database the consumers wrote, as a user would.
        let projection = try SQLiteOutboxStore(path: folder.path("demo/projection.sqlite"))
        let (rows, distinct) = try await projection.writer.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM customer_orders") ?? 0,
             try Int.fetchOne(db, sql: "SELECT count(DISTINCT order_message) FROM customer_orders") ?? 0)
        }
        #expect(rows == 3000 && distinct == 3000)
    }

    @Test func demoOnJSONLinesVerifiesEveryMessage() async throws {
        let folder = try TemporaryFolder()
        let result = try await OutboxProcess.run(
            ["demo", "--sink", "jsonl", "--messages", "2000", "--relays", "3", "--folder", folder.path("demo")], timeout: .seconds(180))
        #expect(result.status == 0, "\(result.output)\n\(result.error)")
        #expect(result.output.contains("2000 committed, 2000 delivered, 0 lost"))
        let lines = try OutboxJSONLine.read(contentsOf: folder.path("demo/published.jsonl"))
        #expect(Set(lines.map(\.id)).count == 2000)
    }
}

@Suite("CLI with Kafka")
struct KafkaCommandLineTests {
    /// `outbox bench --scenarios consume` reads a backlog larger than a mock partition keeps
    /// (5 MB). It used to put it on 6 partitions, the mock deleted the oldest messages, and both
    /// consumers waited minutes for messages that were gone.
    @Test func benchConsumesABacklogLargerThanAMockPartitionKeeps() async throws {
        let result = try await OutboxProcess.run(
            ["bench", "--scenarios", "consume", "--messages", "40000", "--payload-bytes", "1000", "--seconds", "1"], timeout: .seconds(200))
        #expect(result.status == 0, "\(result.output)\n\(result.error.suffix(2000))")
        #expect(result.output.contains("consume: inbox consumer 40000"), "\(result.output)")
        #expect(result.output.contains("× raw consumer"), "\(result.output)")
    }

    /// A standalone mock cluster, a relay process publishing to it, and a consumer reading back.
    @Test func relayPublishesFromSQLiteToAStandaloneMockKafka() async throws {
        let folder = try TemporaryFolder()
        let mock = try OutboxProcess(["mock-kafka", "--topic", "orders:4", "--bootstrap-file", folder.path("bootstrap.txt")])
        defer { mock.signal(SIGKILL) }
        let bootstrap = try await waitForFile(folder.path("bootstrap.txt"))
        let metadata = try runKcat(["-b", bootstrap, "-L", "-m", "10"])
        #expect(metadata.contains("3 brokers") && metadata.contains("topic \"orders\" with 4 partitions"), "kcat -L said: \(metadata)")

        let store = try SQLiteOutboxStore(path: folder.path("app.sqlite"))
        try await store.migrate()
        let messages = (0..<500).map { OutboxMessage(topic: "orders", key: "customer-\($0 % 7)", type: "OrderPlaced", text: "order \($0)") }
        try await store.writer.write { db in try store.enqueue(messages, in: db) }

        let relay = try OutboxProcess(["relay", "--store", "sqlite://\(folder.path("app.sqlite"))", "--kafka-brokers", bootstrap,
                                       "-X", "max.in.flight.requests.per.connection=1", "--log-level", "warning"])
        try await waitUntil("the relay drains the outbox") { try await store.status(now: Date()).pending == 0 }
        relay.signal(SIGTERM)
        #expect(try await relay.wait(timeout: .seconds(20)) == 0)

        let received = try await KafkaTopicReader(bootstrapServers: bootstrap).read(topic: "orders", count: 500, timeout: .seconds(30))
        #expect(Set(received.compactMap(\.outboxID)) == Set(messages.map(\.id)))
        for key in Set(messages.compactMap(\.key)) {
            let sent = messages.filter { $0.key == key }.map(\.id)
            let got = received.filter { $0.key == Array(key.utf8) }.sorted { $0.offset < $1.offset }.compactMap(\.outboxID)
            #expect(got == sent, "per-key order of \(key)")
        }
        mock.signal(SIGTERM)
        #expect(try await mock.wait(timeout: .seconds(10)) == 0)
        #expect(!FileManager.default.fileExists(atPath: folder.path("bootstrap.txt")), "the bootstrap file is removed on exit")
    }

    @Test func anUnreachableBrokerIsOneSentence() async throws {
        let folder = try TemporaryFolder()
        let store = try SQLiteOutboxStore(path: folder.path("app.sqlite"))
        try await store.migrate()
        let result = try await OutboxProcess.run(["relay", "--store", "sqlite://\(folder.path("app.sqlite"))",
                                                  "--kafka-brokers", "127.0.0.1:1"], timeout: .seconds(60))
        #expect(result.status != 0)
        #expect(result.error.contains("No Kafka broker answered at 127.0.0.1:1"), "\(result.error)")
    }

    @Test func badBrokerFlagsAreOneSentence() async throws {
        for (arguments, expected) in [
            (["relay", "--kafka-brokers", "nohostport"], "--kafka-brokers must be host:port"),
            (["relay", "-X", "linger.ms=1"], "give --kafka-brokers, --nats-url or --amqp-url too"),
            (["relay", "--amqp-url", "amqp://h:1", "--nats-url", "nats://h:1"], "not several"),
            (["relay", "--amqp-url", "http://u:hunter2@h:1"], "http://u:***@h:1 is not an AMQP URL"),
            (["relay", "--amqp-url", "amqp://h:1", "-X", "subject.prefix=a"], "-X subject.prefix is not an AMQP setting"),
            (["relay", "--amqp-url", "amqp://h:1", "-X", "tls.verify-hostname=maybe"], "takes true or false"),
            (["relay", "--kafka-brokers", "h:1", "-X", "novalue"], "-X takes key=value"),
            (["relay", "--kafka-brokers", "h:1", "--output", "x.jsonl"], "not several"),
            (["relay", "--kafka-brokers", "h:1", "--nats-url", "nats://h:1"], "not several"),
            (["relay", "--output", "x.jsonl", "-X", "linger.ms=1"], "not for --output"),
            (["relay", "--nats-url", "http://h:1"], "is not a NATS server list"),
            (["relay", "--nats-url", "nats://u:hunter2@h:1,ftp://x"], "nats://u:***@h:1"),
            (["relay", "--nats-url", "nats://h:1", "-X", "linger.ms=1"], "-X linger.ms is not a NATS setting"),
            (["relay", "--nats-url", "nats://h:1", "-X", "ack.timeout.ms=0"], "ack.timeout.ms takes a positive"),
            (["relay", "--nats-url", "nats://h:1", "-X", "subject.prefix=a b"], "may not contain spaces"),
            (["relay", "--nats-url", "nats://h:1", "-X", "tls.cert=c.pem"], "both the NATS client certificate and its key"),
            (["relay", "--store", "sqlite:///tmp/never-opened.sqlite"], "Give the relay a destination: --kafka-brokers"),
            (["mock-kafka", "--brokers", "0"], "--brokers"),
            (["mock-kafka", "--topic", "orders:zero"], "--topic"),
        ] {
            let result = try await OutboxProcess.run(arguments)
            #expect(result.status != 0)
            #expect(result.error.contains(expected), "\(arguments): \(result.error)")
            #expect(!result.error.contains("hunter2"), "a password reached the output: \(result.error)")
        }
    }

    @Test func anUnreachableNATSServerIsOneSentence() async throws {
        let folder = try TemporaryFolder()
        let store = try SQLiteOutboxStore(path: folder.path("app.sqlite"))
        try await store.migrate()
        let result = try await OutboxProcess.run(["relay", "--store", "sqlite://\(folder.path("app.sqlite"))",
                                                  "--nats-url", "nats://outbox:hunter2@127.0.0.1:1"], timeout: .seconds(60))
        #expect(result.status != 0)
        #expect(result.error.contains("No NATS server answered at nats://outbox:***@127.0.0.1:1"), "\(result.error)")
        #expect(!result.error.contains("hunter2"), "the password reached the output: \(result.error)")
    }

    /// kcat (installed by scripts/install-prerequisites.sh) as an independent Kafka client.
    private func runKcat(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/kcat")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    private func waitForFile(_ path: String) async throws -> String {
        var text = ""
        try await waitUntil("the mock cluster writes its bootstrap file", timeout: .seconds(20)) {
            text = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            return !text.isEmpty
        }
        return text
    }
}
