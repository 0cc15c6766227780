import Foundation
import OutboxTestSupport
import OutboxTesting

/// A headless Chromium session driven through chromedriver's W3C WebDriver protocol (JSON over
/// HTTP), enough for the admin page's browser test: open, find, read, click, run a script, take
/// a screenshot.
struct WebDriverSession: Sendable {
    let driver: String
    let id: String

    /// The W3C key of an element reference in answers.
    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    /// Starts a headless Chromium (`--no-sandbox`: the tests may run as root).
    static func start(driver: String) async throws -> WebDriverSession {
        let capabilities: [String: Any] = ["capabilities": ["alwaysMatch": [
            "browserName": "chrome",
            "goog:chromeOptions": [
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1800"],
            ],
        ]]]
        let answer = try await call(driver, "POST", "/session", capabilities)
        guard let value = answer as? [String: Any], let id = value["sessionId"] as? String else {
            throw ConformanceFailure("chromedriver started no session: \(String(describing: answer))")
        }
        return WebDriverSession(driver: driver, id: id)
    }

    func open(_ url: String) async throws { _ = try await command("POST", "/url", ["url": url]) }

    func quit() async { _ = try? await Self.call(driver, "DELETE", "/session/\(id)", nil) }

    /// The element's id, or `nil` when nothing matches.
    func find(_ css: String) async throws -> String? {
        do {
            let value = try await command("POST", "/element", ["using": "css selector", "value": css])
            return (value as? [String: Any])?[Self.elementKey] as? String
        } catch let error as WebDriverError where error.code == "no such element" {
            return nil
        }
    }

    /// The rendered text of the first element matching `css`, read in one step in the page (the
    /// page redraws its tables every two seconds; an element found first and read later may be gone).
    func text(_ css: String) async throws -> String? {
        try await run("const e = document.querySelector(arguments[0]); return e ? e.innerText : null", [css]) as? String
    }

    /// Clicks the first element matching `css` as a user would, finding it again if the page
    /// redrew it in between.
    func click(_ css: String) async throws {
        for attempt in 1...3 {
            guard let element = try await find(css) else { throw ConformanceFailure("nothing on the page matches \(css)") }
            do {
                _ = try await command("POST", "/element/\(element)/click", [:])
                return
            } catch let error as WebDriverError where error.code == "stale element reference" && attempt < 3 {
                continue
            }
        }
    }

    /// Runs `script` (a function body) in the page and returns its result.
    func run(_ script: String, _ arguments: [String] = []) async throws -> Any? {
        try await command("POST", "/execute/sync", ["script": script, "args": arguments])
    }

    /// The text of an open alert, confirm or prompt, or `nil` when none is open.
    func alertText() async throws -> String? {
        do {
            return try await command("GET", "/alert/text", nil) as? String
        } catch let error as WebDriverError where error.code == "no such alert" {
            return nil
        }
    }

    func acceptAlert() async throws { _ = try await command("POST", "/alert/accept", [:]) }

    /// A PNG of the whole window.
    func screenshot() async throws -> Data {
        guard let text = try await command("GET", "/screenshot", nil) as? String, let data = Data(base64Encoded: text) else {
            throw ConformanceFailure("chromedriver returned no screenshot")
        }
        return data
    }

    private func command(_ method: String, _ path: String, _ body: [String: Any]?) async throws -> Any? {
        try await Self.call(driver, method, "/session/\(id)\(path)", body)
    }

    /// One WebDriver call. Through curl, not URLSession: chromedriver writes its header lines without
    /// a space after the colon (`Content-Length:917`), which Foundation's HTTP client refuses
    /// ("Failed writing header").
    private static func call(_ driver: String, _ method: String, _ path: String, _ body: [String: Any]?) async throws -> Any? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        var arguments = ["-s", "-X", method, "--max-time", "60", "-w", "\n%{http_code}", driver + path]
        if let body {
            arguments += ["-H", "Content-Type: application/json", "--data-binary", String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)]
        }
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = await Task.detached { output.fileHandleForReading.readDataToEndOfFile() }.value
        _ = try await ProjectScript.waitForExit(of: process)
        let text = String(decoding: data, as: UTF8.self)
        guard let split = text.lastIndex(of: "\n"), let status = Int(text[text.index(after: split)...]) else {
            throw ConformanceFailure("chromedriver did not answer \(method) \(path)")
        }
        let json = try JSONSerialization.jsonObject(with: Data(text[..<split].utf8).isEmpty ? Data("{}".utf8) : Data(text[..<split].utf8)) as? [String: Any]
        let value = json?["value"]
        if status != 200 {
            let details = value as? [String: Any]
            throw WebDriverError(code: details?["error"] as? String ?? "unknown error", message: details?["message"] as? String ?? "")
        }
        // A new session answers its id beside the capabilities.
        if path == "/session", let value = value as? [String: Any] { return value }
        return value is NSNull ? nil : value
    }
}

struct WebDriverError: Error, CustomStringConvertible {
    let code: String
    let message: String
    var description: String { "WebDriver \(code): \(message.prefix(300))" }
}
