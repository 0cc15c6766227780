import CNATS
import Foundation
import Outbox

/// One NATS connection and its JetStream context, made with the publisher's settings.
///
/// The C client reconnects by itself (forever, every 250 ms); its reconnect buffer is one byte,
/// which turns it off: a message published while the connection is down fails at once instead of
/// waiting in memory to be sent behind messages that may have been lost with the old connection.
final class NATSConnection: @unchecked Sendable {
    // @unchecked: the C client's connection and context are thread-safe; the pointers never change.
    let connection: OpaquePointer
    let jetStream: OpaquePointer
    /// Kept alive for the acknowledgement handler, which may run until the connection is closed.
    private let router: NATSAcknowledgementRouter

    /// Connects (blocking: call it on a thread of its own).
    ///
    /// - Throws: ``OutboxError`` naming what to fix; never the password.
    init(configuration: NATSPublisherConfiguration, router: NATSAcknowledgementRouter) throws {
        self.router = router
        let redacted = configuration.redactedServers
        var options: OpaquePointer?
        try NATSStatusText.check(natsOptions_Create(&options), doing: "create NATS options")
        defer { natsOptions_Destroy(options) }
        let servers = configuration.servers.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        var serverPointers = servers.map { strdup($0) }
        defer { serverPointers.forEach { free($0) } }
        try serverPointers.withUnsafeMutableBufferPointer { pointers in
            try pointers.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: pointers.count) { list in
                try NATSStatusText.check(natsOptions_SetServers(options, list, Int32(pointers.count)), doing: "use the NATS servers \(redacted)")
            }
        }
        natsOptions_SetName(options, configuration.connectionName)
        natsOptions_SetTimeout(options, configuration.connectTimeout.natsMilliseconds)
        natsOptions_SetMaxReconnect(options, -1)
        natsOptions_SetReconnectWait(options, 250)
        natsOptions_SetReconnectBufSize(options, 1)
        // A dead connection (a server that vanished without closing it) is noticed within ~6 s.
        natsOptions_SetPingInterval(options, 2000)
        natsOptions_SetMaxPingsOut(options, 3)
        if let file = configuration.trustedCertificatesFile {
            try NATSStatusText.check(natsOptions_SetSecure(options, true), doing: "turn on TLS")
            try NATSStatusText.check(natsOptions_LoadCATrustedCertificates(options, file), doing: "load the trusted certificates \(file)")
        }
        if let certificate = configuration.clientCertificateFile, let key = configuration.clientKeyFile {
            try NATSStatusText.check(natsOptions_LoadCertificatesChain(options, certificate, key), doing: "load the client certificate \(certificate)")
        }
        if let credentials = configuration.credentialsFile {
            try NATSStatusText.check(natsOptions_SetUserCredentialsFromFiles(options, credentials, nil), doing: "use the credentials file \(credentials)")
        }

        var connection: OpaquePointer?
        let status = natsConnection_Connect(&connection, options)
        guard status == NATS_OK, let connection else {
            throw NATSStatusText.connectError(status, servers: redacted, timeout: configuration.connectTimeout)
        }
        var jetStreamOptions = jsOptions()
        jsOptions_Init(&jetStreamOptions)
        jetStreamOptions.PublishAsync.AckHandler = { _, message, acknowledgement, failure, closure in
            guard let closure else { natsMsg_Destroy(message); return }
            Unmanaged<NATSAcknowledgementRouter>.fromOpaque(closure).takeUnretainedValue()
                .acknowledge(message, acknowledgement: acknowledgement, failure: failure)
        }
        jetStreamOptions.PublishAsync.AckHandlerClosure = Unmanaged.passUnretained(router).toOpaque()
        var jetStream: OpaquePointer?
        let contextStatus = natsConnection_JetStream(&jetStream, connection, &jetStreamOptions)
        guard contextStatus == NATS_OK, let jetStream else {
            natsConnection_Destroy(connection)
            throw OutboxError(code: .publisherUnavailable, operation: "connect",
                              message: "NATS at \(redacted) refused a JetStream context (\(NATSStatusText.text(contextStatus))).")
        }
        self.connection = connection
        self.jetStream = jetStream
    }

    /// The largest message the server takes, in bytes.
    var maximumPayload: Int64 { natsConnection_GetMaxPayload(connection) }

    /// Closes the connection and frees the client's objects (blocking).
    func close() {
        natsConnection_Close(connection)
        jsCtx_Destroy(jetStream)
        natsConnection_Destroy(connection)
    }
}

extension Duration {
    /// Whole milliseconds, as the C client takes them.
    var natsMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
