import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Outbox
import OutboxSQLite
import OutboxTestSupport
import OutboxTesting
import Testing

/// `outbox admin` driven in headless Chromium (Debian's, through chromedriver, started by
/// `scripts/start-chromedriver.sh`) against a store with known content. Screenshots go to
/// `test-artifacts/admin-page/`.
@Suite("Admin page", .serialized)
struct AdminPageTests {
    static let port = 58_181
    static let token = "admin-test-token-0123456789"
    static let hostileKey = "<script>window.__pwned = 1</script>"
    static let hostileType = "<img src=x onerror=\"window.__pwned = 2\">"

    @Test func thePageShowsTheStoreRetriesADeadLetterAndShowsHostileTextAsText() async throws {
        let folder = try TemporaryFolder()
        let path = folder.path("admin.sqlite")
        let (store, normal, hostile) = try await Self.seed(path)
        let admin = try OutboxProcess(["admin", "--store", "sqlite://\(path)", "--listen", "127.0.0.1:\(Self.port)",
                                       "--token", Self.token, "--sample-seconds", "0.3"])
        defer { admin.signal(SIGKILL) }
        try await Self.waitForAdmin(admin)
        let driver = try await ProjectScript.run("start-chromedriver.sh")
        let browser = try await WebDriverSession.start(driver: driver)
        let artifacts = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("test-artifacts/admin-page")
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        do {
            let page = "http://127.0.0.1:\(Self.port)/"
            try await browser.open(page)
            #expect(try await browser.text("body")?.contains("needs its token") == true, "without the token the page is refused")
            try await browser.open(page + "?token=\(Self.token)")
            try await waitUntil("the page shows the store's counts") {
                try await browser.text("#count-dead") == "2"
            }
            let status = try await store.status(now: Date())
            #expect(try await browser.text("#count-pending") == "\(status.pending)")
            #expect(try await browser.text("#count-retrying") == "\(status.retrying)")
            #expect(try await browser.text("#count-dead") == "\(status.dead)")
            #expect(try await browser.text("#oldest-age")?.hasSuffix("min") == true, "the oldest message is about an hour old")
            try await waitUntil("both dead letters are listed") {
                try await browser.run("return document.querySelectorAll('#dead-letters tbody tr').length") as? Int == 2
            }
            let listed = try await browser.run(
                "return [...document.querySelectorAll('#leases tbody tr')].reduce((sum, row) => sum + Number(row.dataset.count), 0)") as? Int
            #expect(listed == status.partitionCount, "every partition is listed")
            #expect(try await browser.text("#leases tbody tr td") == "free", "no relay yet: every partition is free")

            // Hostile text is shown as text: nothing ran, no element was made of it.
            let hostileRow = "#dead-letters tr[data-sequence='\(hostile)']"
            #expect(try await browser.run("return document.querySelector(\"\(hostileRow) td.key\").textContent") as? String == Self.hostileKey)
            #expect(try await browser.text("\(hostileRow) td.payload")?.hasPrefix("<script>alert('payload')</script>") == true)
            #expect(try await browser.run("return typeof window.__pwned") as? String == "undefined", "the hostile key or type ran")
            #expect(try await browser.run("return document.querySelectorAll('#dead-letters script, #dead-letters img, #dead-letters b').length") as? Int == 0)
            #expect(try await browser.alertText() == nil, "the hostile payload opened an alert")
            try await browser.screenshot().write(to: artifacts.appendingPathComponent("1-overview.png"))

            // A relay joins; a dead letter retried from the page is published.
            let output = folder.path("published.jsonl")
            let relay = try OutboxProcess(["relay", "--store", "sqlite://\(path)", "--output", output, "--relay-id", "relay-on-page"])
            defer { relay.signal(SIGKILL) }
            try await waitUntil("the page lists the relay with its partitions") {
                let relayShown = try await browser.text("#relays tbody tr td")?.contains("relay-on-page") == true
                let leasesShown = try await browser.text("#leases tbody tr td") == "relay-on-page"
                return relayShown && leasesShown
            }
            #expect(try await browser.text("#leases tbody tr td:nth-child(2)") == "0–\(status.partitionCount - 1)")
            try await browser.click("#dead-letters tr[data-sequence='\(normal.sequence)'] input")
            try await browser.click("#retry-selected")
            try await waitUntil("the retried dead letter is published") {
                ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains(normal.message.id.uuidString.lowercased())
            }
            try await waitUntil("the page shows one dead letter left") {
                try await browser.text("#count-dead") == "1"
            }
            #expect(try await browser.text("#action-result") == "Retried 1 of 1.")
            try await browser.screenshot().write(to: artifacts.appendingPathComponent("2-after-retry.png"))

            // Discarding asks first.
            try await browser.click("\(hostileRow) input")
            try await browser.click("#discard-selected")
            #expect(try await browser.alertText()?.contains("Discard 1 dead letters") == true)
            try await browser.acceptAlert()
            try await waitUntil("the discarded dead letter is gone") {
                try await store.status(now: Date()).dead == 0
            }
            try await waitUntil("the page shows no dead letter") { try await browser.text("#count-dead") == "0" }
            try await browser.screenshot().write(to: artifacts.appendingPathComponent("3-after-discard.png"))
            relay.signal(SIGTERM)
            #expect(try await relay.wait(timeout: .seconds(30)) == 0)
        } catch {
            try? await browser.screenshot().write(to: artifacts.appendingPathComponent("failure.png"))
            await browser.quit()
            // Whether the page's server was still there tells a browser problem from a server one.
            if let status = admin.exitStatus {
                let log = String(decoding: admin.standardError.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                Issue.record("outbox admin had exited with status \(status); its log ends: \(log.suffix(2_000))")
            } else {
                let answer = try? await Self.request("http://127.0.0.1:\(Self.port)/admin.css", headers: ["Authorization": "Bearer \(Self.token)"])
                Issue.record("outbox admin was still running and answered \(answer.map { "HTTP \($0.status)" } ?? "nothing") after the failure")
            }
            throw error
        }
        await browser.quit()
        admin.signal(SIGTERM)
        #expect(try await admin.wait(timeout: .seconds(20)) == 0)
    }

    @Test func requestsWithoutTheTokenOrFromAnotherSiteAreRefused() async throws {
        let folder = try TemporaryFolder()
        let path = folder.path("guard.sqlite")
        let (store, normal, _) = try await Self.seed(path)
        let admin = try OutboxProcess(["admin", "--store", "sqlite://\(path)", "--listen", "127.0.0.1:\(Self.port + 1)", "--token", Self.token])
        defer { admin.signal(SIGKILL) }
        try await Self.waitForAdmin(admin, port: Self.port + 1)
        let base = "http://127.0.0.1:\(Self.port + 1)"
        let body = #"{"sequences": [\#(normal.sequence)]}"#
        let bearer = "Bearer \(Self.token)"
        #expect(try await Self.request(base + "/api/overview").status == 401)
        #expect(try await Self.request(base + "/api/overview", headers: ["Authorization": "Bearer wrong-token-0123456789"]).status == 401)
        #expect(try await Self.request(base + "/api/overview", headers: ["Authorization": bearer]).status == 200)
        #expect(try await Self.request(base + "/api/overview", headers: ["Authorization": bearer, "Host": "rebound.example:80"]).status == 403,
                "a name of another site (DNS rebinding) is refused")
        // A form post from another site: no custom header, no JSON.
        #expect(try await Self.request(base + "/api/dead-letters/retry", method: "POST", body: "sequences=1",
                                       headers: ["Authorization": bearer, "Content-Type": "application/x-www-form-urlencoded"]).status == 403)
        #expect(try await Self.request(base + "/api/dead-letters/retry", method: "POST", body: body,
                                       headers: ["Authorization": bearer, "Content-Type": "application/json", "X-Outbox-Admin": "1",
                                                 "Origin": "http://evil.example"]).status == 403)
        #expect(try await store.status(now: Date()).dead == 2, "no refused request changed anything")
        let garbage = try await Self.request(base + "/api/dead-letters/retry", method: "POST", body: "{\"sequences\": \"'; DROP TABLE x; --\"}",
                                             headers: ["Authorization": bearer, "Content-Type": "application/json", "X-Outbox-Admin": "1"])
        #expect(garbage.status == 400 && garbage.body.contains("Send {\"sequences\""))
        let retried = try await Self.request(base + "/api/dead-letters/retry", method: "POST", body: body,
                                             headers: ["Authorization": bearer, "Content-Type": "application/json", "X-Outbox-Admin": "1"])
        #expect(retried.status == 200 && retried.body.contains("\"found\":1"))
        #expect(try await store.status(now: Date()).dead == 1)

        let open = try await OutboxProcess.run(["admin", "--store", "sqlite://\(path)", "--listen", "0.0.0.0:\(Self.port + 2)"])
        #expect(open.status != 0 && open.error.contains("needs a token"), "\(open.error)")
        let weak = try await OutboxProcess.run(["admin", "--store", "sqlite://\(path)", "--listen", "0.0.0.0:\(Self.port + 2)", "--token", "short"])
        #expect(weak.status != 0 && weak.error.contains("16 to 256"), "\(weak.error)")
        let taken = try await OutboxProcess.run(["admin", "--store", "sqlite://\(path)", "--listen", "127.0.0.1:\(Self.port + 1)"])
        #expect(taken.status != 0 && taken.error.contains("could not listen on 127.0.0.1:\(Self.port + 1)"), "\(taken.error)")
    }

    /// Four messages waiting for a retry an hour from now (created an hour ago) and two dead letters,
    /// one of them hostile in every text field.
    static func seed(_ path: String) async throws -> (SQLiteOutboxStore, OutboxRecord, Int64) {
        let store = try SQLiteOutboxStore(path: path)
        try await store.migrate()
        let hostile = OutboxMessage(topic: "orders", key: hostileKey, type: hostileType, payload: Array("<script>alert('payload')</script>\u{1}".utf8),
                                    headers: [OutboxHeader("x-note", "<b>bold</b>")])
        let normal = OutboxMessage(topic: "orders", key: "customer-7", type: "OrderPlaced", text: "{\"order\": 7}")
        let waiting = (0..<4).map { OutboxMessage(topic: "orders", key: "w\($0)", type: nil, payload: Array("waiting".utf8),
                                                   createdAt: Date().addingTimeInterval(-3_600)) }
        try await store.writer.write { db in try store.enqueue([hostile, normal] + waiting, in: db) }
        let grant = try await store.heartbeat(OutboxHeartbeat(relayID: "seed", leaseDuration: .seconds(30)))
        let claimed = try await store.claim(partitions: grant.owned.sorted(), limit: 10, now: Date())
        _ = try await store.acknowledge(OutboxAcknowledgement(
            relayID: "seed",
            retries: claimed.dropFirst(2).map {
                .init(sequence: $0.sequence, partition: $0.partition, availableAt: Date().addingTimeInterval(3_600), error: "timeout")
            },
            deadLetters: claimed.prefix(2).map { .init(sequence: $0.sequence, partition: $0.partition, error: "rejected: <i>too large</i>") }))
        try await store.resign(relayID: "seed")
        return (store, claimed[1], claimed[0].sequence)
    }

    static func waitForAdmin(_ admin: OutboxProcess, port: Int = AdminPageTests.port) async throws {
        try await waitUntil("the admin page serves") {
            if let status = admin.exitStatus { throw ConformanceFailure("outbox admin exited with status \(status)") }
            return (try? await request("http://127.0.0.1:\(port)/admin.css", headers: ["Authorization": "Bearer \(token)"]).status) == 200
        }
    }

    static func request(_ url: String, method: String = "GET", body: String? = nil, headers: [String: String] = [:]) async throws
        -> (status: Int, body: String)
    {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.httpBody = body.map { Data($0.utf8) }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }
}
