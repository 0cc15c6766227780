import Outbox
import Testing

/// The one URL reader every server store uses: what it takes apart, what it refuses, what it shows.
@Suite struct ConnectionURLTests {
    private func parse(_ text: String) throws -> OutboxConnectionURL {
        try OutboxConnectionURL(text, store: "Test", schemes: ["test", "test+srv"], example: "test://user@host/database")
    }

    @Test func partsAreDecodedOnce() throws {
        let url = try parse("TEST://us%40er:p%2541ss%40x@h1:1,h2,[::1]:3/shop%20db?a=1&b=x%26y&empty")
        #expect(url.scheme == "test")
        #expect(url.username == "us@er" && url.password == "p%41ss@x")
        #expect(url.hosts == [.init(name: "h1", port: 1), .init(name: "h2", port: nil), .init(name: "[::1]", port: 3)])
        #expect(url.database == "shop db")
        #expect(url.option("A") == "1" && url.option("b") == "x&y" && url.option("empty") == "")
    }

    @Test func descriptionShowsNoSecret() throws {
        let url = try parse("test://app:hunter2@h/db?replicaSet=rs0&tlsCertificateKeyFilePassword=keypass&authMechanismProperties=TOKEN:t0k&apiSecret=s3")
        #expect(url.description == "test://app@h/db?replicaSet=rs0&tlsCertificateKeyFilePassword=***&authMechanismProperties=***&apiSecret=***")
        for secret in ["hunter2", "keypass", "t0k", "s3"] { #expect(!url.description.contains(secret)) }
    }

    @Test(arguments: [
        ("", "malformed"), ("other://h/db", "malformed"), ("test://", "names no host"), ("test://u@/db", "names no host"),
        ("test://h:0/db", "port"), ("test://h:99999/db", "port"), ("test://h:x/db", "port"), ("test://h1,,h2/db", "names no host"),
    ])
    func badURLsAreOneSentence(text: String, expected: String) throws {
        let error = #expect(throws: OutboxError.self) { try parse(text) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.description.contains(expected) == true, "\(error?.description ?? "")")
    }
}
