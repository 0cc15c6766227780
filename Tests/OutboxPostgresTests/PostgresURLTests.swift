import OutboxPostgres
import Testing

@Suite("PostgreSQL URL")
struct PostgresURLTests {
    /// A user and password are percent-decoded exactly once: "%2541" is the literal "%41", not "A".
    @Test func userAndPasswordAreDecodedOnce() throws {
        let url = try PostgresConnectionURL("postgres://us%40er:p%2541ss%40x@db.example:5433/shop?sslmode=require")
        #expect(url.username == "us@er")
        #expect(url.password == "p%41ss@x")
        #expect(!url.description.contains("p%41ss") && !url.description.contains("p%2541ss"))
    }
}
