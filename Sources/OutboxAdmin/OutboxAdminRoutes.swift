import Foundation
import Hummingbird
import Logging
import Outbox

/// The page, its assets and the JSON API.
struct OutboxAdminRoutes: Sendable {
    let store: any OutboxStore
    let sampler: OutboxAdminSampler
    let logger: Logger

    /// The most sequences one action takes (a page shows far fewer).
    static let maximumActionSize = 10_000

    func add(to router: Router<some RequestContext>) {
        router.get("/") { _, _ in Self.asset(OutboxAdminAssets.page, type: "text/html; charset=utf-8") }
        router.get("/admin.js") { _, _ in Self.asset(OutboxAdminAssets.script, type: "text/javascript; charset=utf-8") }
        router.get("/admin.css") { _, _ in Self.asset(OutboxAdminAssets.style, type: "text/css; charset=utf-8") }
        router.get("/api/overview") { _, _ in
            guard let overview = sampler.overview() else {
                return OutboxAdminGuard<BasicRequestContext>.text(.serviceUnavailable, "The store has not been read yet; try again in a moment.")
            }
            return try Self.json(overview)
        }
        router.get("/api/dead-letters") { request, _ in
            let after = request.uri.queryParameters["after"].flatMap { Int64($0) }
            let limit = request.uri.queryParameters["limit"].flatMap { Int($0) } ?? 50
            guard (1...500).contains(limit) else {
                return OutboxAdminGuard<BasicRequestContext>.text(.badRequest, "limit must be between 1 and 500.")
            }
            return try await Self.answering {
                try Self.json(try await store.deadLetters(limit: limit, afterSequence: after).map(AdminDeadLetter.init))
            }
        }
        router.post("/api/dead-letters/retry") { request, context in
            try await act(on: request, context: context) { try await store.retryDeadLetters(sequences: $0, now: Date()) }
        }
        router.post("/api/dead-letters/discard") { request, context in
            try await act(on: request, context: context) { try await store.discardDeadLetters(sequences: $0) }
        }
    }

    private func act(on request: Request, context: some RequestContext,
                     _ action: @Sendable ([Int64]) async throws -> Int) async throws -> Response {
        let body = try await request.body.collect(upTo: 1_000_000)
        guard let parsed = try? JSONDecoder().decode(AdminDeadLetterAction.self, from: Data(buffer: body)),
              (1...Self.maximumActionSize).contains(parsed.sequences.count)
        else {
            return OutboxAdminGuard<BasicRequestContext>.text(.badRequest, "Send {\"sequences\": [...]} with 1 to \(Self.maximumActionSize) dead-letter sequences.")
        }
        let found: Int
        do {
            found = try await action(parsed.sequences)
        } catch {
            return Self.storeError(error)
        }
        logger.notice("Outbox admin action", metadata: [
            "outbox.action": "\(request.uri.path.split(separator: "/").last ?? "")", "outbox.requested": "\(parsed.sequences.count)",
            "outbox.found": "\(found)",
        ])
        await sampler.sample()
        return try Self.json(AdminActionResult(requested: parsed.sequences.count, found: found))
    }

    /// Runs a store read, answering a store failure in one sentence (503) instead of a bare 500.
    static func answering(_ body: () async throws -> Response) async throws -> Response {
        do { return try await body() } catch { return storeError(error) }
    }

    static func storeError(_ error: any Error) -> Response {
        // A store that answered with a refusal (a dead letter it will not send back): the same
        // request will not succeed later, so it is a conflict with the reason, not "unavailable".
        if let refusal = error as? OutboxError, refusal.code == .invalidMessage {
            return OutboxAdminGuard<BasicRequestContext>.text(.conflict, refusal.message)
        }
        return OutboxAdminGuard<BasicRequestContext>.text(.serviceUnavailable, "The store did not answer: \(error)")
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}
