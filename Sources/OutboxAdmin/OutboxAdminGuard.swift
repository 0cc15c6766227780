import Foundation
import HTTPTypes
import Hummingbird

/// Applies ``OutboxAdminAccess`` to every request and adds the security headers to every answer.
struct OutboxAdminGuard<Context: RequestContext>: RouterMiddleware {
    let access: OutboxAdminAccess

    /// Nothing from elsewhere, no inline script or style, no framing: even text that escaped
    /// escaping could not run.
    static var securityHeaders: HTTPFields {
        [
            .contentSecurityPolicy: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            .xContentTypeOptions: "nosniff",
            HTTPField.Name("X-Frame-Options")!: "DENY",
            HTTPField.Name("Referrer-Policy")!: "no-referrer",
            .cacheControl: "no-store",
        ]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await decide(request, context: context, next: next)
        for field in Self.securityHeaders { response.headers[field.name] = field.value }
        return response
    }

    private func decide(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard access.isExpectedHost(request) else {
            return Self.text(.forbidden, "This admin page answers only to the address it listens on.")
        }
        // `/?token=…` logs the browser in: the token moves to a cookie and out of the address bar.
        if request.method == .get, request.uri.path == "/", let token = request.uri.queryParameters["token"], let expected = access.token {
            guard OutboxAdminAccess.constantTimeEqual(String(token), expected) else {
                return Self.text(.unauthorized, "The token is not this admin page's token.")
            }
            var response = Response(status: .seeOther, headers: [.location: "/"])
            response.setCookie(Cookie(name: OutboxAdminAccess.cookieName, value: expected, path: "/", httpOnly: true, sameSite: .strict))
            return response
        }
        guard access.isAuthorized(request) else {
            return Self.text(.unauthorized, "This admin page needs its token: open /?token=TOKEN, or send Authorization: Bearer TOKEN.")
        }
        if request.method != .get && request.method != .head {
            guard request.method == .post, access.isSameOriginAction(request) else {
                return Self.text(.forbidden, "Actions are POSTs with a JSON body and the X-Outbox-Admin: 1 header, from this page.")
            }
        }
        return try await next(request, context)
    }

    static func text(_ status: HTTPResponse.Status, _ sentence: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: sentence + "\n")))
    }
}
