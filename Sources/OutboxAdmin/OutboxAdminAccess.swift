import Foundation
import HTTPTypes
import Hummingbird
public import Outbox

/// Who may use the admin page, and how requests prove it.
///
/// - On a loopback address no token is needed; beyond loopback one is required (the server
///   refuses to start without it). With a token, every request carries it: the bearer header
///   (`Authorization: Bearer …`, for scripts) or the cookie the page sets after `/?token=…`
///   (`HttpOnly`, `SameSite=Strict`).
/// - Actions are POSTs with a JSON body and the `X-Outbox-Admin: 1` header, and their `Origin`
///   (when the browser sends one) must be this server: a page on another site cannot set that
///   header without a CORS preflight, which this server never answers, and cannot post JSON.
/// - The `Host` header must name this server (on loopback: `localhost`, `127.0.0.1`, `[::1]`), so
///   a DNS-rebinding page cannot reach a loopback admin through a name of its own.
public struct OutboxAdminAccess: Sendable {
    /// The token, or `nil` for none (loopback only).
    public let token: String?
    /// The address the server listens on.
    public let address: OutboxListenAddress

    /// The header actions must carry.
    static let actionHeader = HTTPField.Name("X-Outbox-Admin")!
    /// The cookie holding the token in the browser.
    static let cookieName = "outbox_admin_token"

    /// Checks the combination.
    ///
    /// - Throws: ``OutboxError`` (`.invalidConfiguration`) in one sentence: a token is required
    ///   beyond loopback, and must be 16 to 256 letters, digits, `-`, `_`, `.` or `~`.
    public init(token: String?, address: OutboxListenAddress) throws {
        func invalid(_ text: String) -> OutboxError {
            OutboxError(code: .invalidConfiguration, operation: "start admin", message: text)
        }
        if let token {
            guard (16...256).contains(token.utf8.count),
                  token.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.~".unicodeScalars.contains($0)) })
            else {
                throw invalid("The admin token must be 16 to 256 letters, digits, '-', '_', '.' or '~'.")
            }
        } else if !address.isLoopback {
            throw invalid("Listening on \(address), beyond this machine, needs a token: set --token or OUTBOX_ADMIN_TOKEN (16 or more characters).")
        }
        self.token = token
        self.address = address
    }

    /// Whether the request proves the token (always true without one).
    func isAuthorized(_ request: Request) -> Bool {
        guard let token else { return true }
        if let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer "),
           Self.constantTimeEqual(String(authorization.dropFirst(7)), token) {
            return true
        }
        if let cookie = request.cookies[Self.cookieName], Self.constantTimeEqual(cookie.value, token) {
            return true
        }
        return false
    }

    /// Whether the `Host` header names this server.
    func isExpectedHost(_ request: Request) -> Bool {
        guard let host = request.head.authority else { return false }
        let name: Substring
        if host.hasPrefix("["), let end = host.firstIndex(of: "]") {
            name = host[host.index(after: host.startIndex)..<end]
        } else {
            name = host.split(separator: ":", maxSplits: 1).first ?? ""
        }
        if address.isLoopback {
            return ["localhost", "127.0.0.1", "::1", address.host].contains(String(name).lowercased())
        }
        // Beyond loopback the token guards every request; any name the operator reaches us by is fine.
        return true
    }

    /// Whether a POST is a deliberate action of this page, not a cross-site request.
    func isSameOriginAction(_ request: Request) -> Bool {
        guard request.headers[Self.actionHeader] == "1" else { return false }
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else { return false }
        if let origin = request.headers[.origin], let host = request.head.authority {
            return origin == "http://\(host)" || origin == "https://\(host)"
        }
        return true
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8), right = Array(b.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}
