import CNATS
import Outbox

/// The C client's status codes in words, and the errors that name what to fix.
///
/// Only status texts and server error codes reach a message: never the client's "last error"
/// detail, which can repeat a URL with its password.
enum NATSStatusText {
    static func text(_ status: natsStatus) -> String {
        natsStatus_GetText(status).map { String(cString: $0) } ?? "status \(status.rawValue)"
    }

    /// Throws an invalid-configuration error unless `status` is OK.
    static func check(_ status: natsStatus, doing what: String) throws {
        guard status != NATS_OK else { return }
        throw OutboxError(code: .invalidConfiguration, operation: "configure NATS",
                          message: "Could not \(what): \(text(status)).")
    }

    /// The error for a failed first connection.
    static func connectError(_ status: natsStatus, servers: String, timeout: Duration) -> OutboxError {
        switch status {
        case NATS_CONNECTION_AUTH_FAILED, NATS_NOT_PERMITTED:
            return OutboxError(code: .invalidConfiguration, operation: "connect",
                               message: "NATS at \(servers) refused the login; check the user and password, token or credentials file.")
        case NATS_SECURE_CONNECTION_REQUIRED:
            return OutboxError(code: .invalidConfiguration, operation: "connect",
                               message: "NATS at \(servers) requires TLS; use tls://host:port (and the trusted certificates).")
        case NATS_SSL_ERROR:
            return OutboxError(code: .invalidConfiguration, operation: "connect",
                               message: "The TLS handshake with NATS at \(servers) failed; check the certificates and the host name.")
        default:
            return OutboxError(code: .publisherUnavailable, operation: "connect",
                               message: "No NATS server answered at \(servers) within \(timeout) (\(text(status))); check the URL and that the server is up.",
                               isRetriable: true)
        }
    }

    /// The outcome of a message the client could not send.
    static func sendOutcome(_ status: natsStatus, maximumPayload: Int64) -> OutboxPublishOutcome {
        switch status {
        case NATS_MAX_PAYLOAD:
            return .failed("The message is larger than the NATS server accepts (max_payload \(maximumPayload) bytes, headers included)",
                           isRetriable: false)
        case NATS_INSUFFICIENT_BUFFER, NATS_CONNECTION_DISCONNECTED, NATS_CONNECTION_CLOSED, NATS_IO_ERROR,
             NATS_STALE_CONNECTION, NATS_NOT_YET_CONNECTED, NATS_TIMEOUT, NATS_NO_SERVER:
            return .unavailable("The NATS connection is down (\(text(status)))")
        default:
            return .failed("The NATS client could not send the message (\(text(status)))", isRetriable: true)
        }
    }

    /// The outcome of a JetStream acknowledgement that reports a failure.
    static func acknowledgementOutcome(status: natsStatus, code: Int, serverText: String?, subject: String,
                                       timeout: Duration) -> OutboxPublishOutcome {
        switch code {
        case 10054:  // JSStreamMessageExceedsMaximumErr
            return .failed("The message is larger than the JetStream stream's maximum message size", isRetriable: false)
        case 10059:  // JSStreamNotFoundErr
            return .unavailable("No JetStream stream stores subject \(subject)")
        case 10023, 10028, 10047, 10077:  // resources exhausted, store failed
            return .failed("JetStream could not store the message (error \(code))", isRetriable: true)
        case 0:
            break
        default:
            return .failed("JetStream refused the message (error \(code)\(serverText.map { ": \($0)" } ?? ""))", isRetriable: true)
        }
        switch status {
        case NATS_TIMEOUT:
            return .unavailable("No JetStream acknowledgement within \(timeout)")
        case NATS_NO_RESPONDERS:
            return .unavailable("No JetStream stream answered for subject \(subject) (the stream is missing or the server is restarting)")
        case NATS_CONNECTION_CLOSED, NATS_CONNECTION_DISCONNECTED, NATS_IO_ERROR, NATS_STALE_CONNECTION:
            return .unavailable("The NATS connection broke before the acknowledgement (\(text(status)))")
        default:
            return .failed("JetStream did not acknowledge the message (\(text(status)))", isRetriable: true)
        }
    }
}
