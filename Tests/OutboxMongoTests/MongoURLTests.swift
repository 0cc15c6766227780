import OutboxMongo
import Testing

@Suite("MongoDB URL")
struct MongoURLTests {
    /// The description (what logs and errors show) carries no password and no secret option value.
    @Test func secretsStayOutOfTheDescription() throws {
        let configuration = try MongoConnectionURL("""
            mongodb://app:hunter2@h1:27017,h2:27017/shop?replicaSet=rs0&tls=true&tlsCertificateKeyFilePassword=keypass\
            &authMechanismProperties=AWS_SESSION_TOKEN:sessiontoken&sslClientCertificateKeyPassword=oldkeypass&appName=shop
            """).configuration
        let shown = configuration.description
        for secret in ["hunter2", "keypass", "sessiontoken", "oldkeypass"] {
            #expect(!shown.contains(secret), "\(secret) in \(shown)")
        }
        #expect(shown.contains("replicaSet=rs0") && shown.contains("appName=shop") && shown.contains("tlsCertificateKeyFilePassword=***"))
    }
}
