import ArgumentParser
import Foundation
import Logging
import OTel
import ServiceLifecycle

/// `--otlp-endpoint` / `--otlp-protocol`: publish spans exported over OTLP/HTTP (swift-otel).
struct RelayTracingOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Export a span per published message to this OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318 (traces go to /v1/traces; a URL with a path is used as it is). Default: no tracing.",
        valueName: "url"))
    var otlpEndpoint: String?

    @Option(help: "OTLP encoding: http/protobuf or http/json.")
    var otlpProtocol = "http/protobuf"

    /// Checks the options before anything starts.
    func check() throws {
        guard ["http/protobuf", "http/json"].contains(otlpProtocol) else {
            throw ValidationError("--otlp-protocol must be http/protobuf or http/json.")
        }
        guard let otlpEndpoint else { return }
        _ = try tracesURL(otlpEndpoint)
    }

    /// Bootstraps tracing (never metrics or logs: those have their own outputs) and returns the
    /// service that exports the spans; add it first to the group so it flushes last. `nil` without
    /// `--otlp-endpoint`.
    func bootstrap(serviceName: String) throws -> (any Service)? {
        guard let otlpEndpoint else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.endpoint = try tracesURL(otlpEndpoint)
        configuration.traces.otlpExporter.protocol = otlpProtocol == "http/json" ? .httpJSON : .httpProtobuf
        configuration.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
        return try OTel.bootstrap(configuration: configuration)
    }

    /// The traces URL: `/v1/traces` added to a URL without a path, as OTLP/HTTP base URLs are.
    private func tracesURL(_ text: String) throws -> String {
        guard let components = URLComponents(string: text), ["http", "https"].contains(components.scheme?.lowercased() ?? ""),
              let host = components.host, !host.isEmpty, components.user == nil
        else {
            throw ValidationError("--otlp-endpoint must be an http:// or https:// URL with a host and no user, e.g. http://127.0.0.1:4318.")
        }
        return components.path.isEmpty || components.path == "/" ? text.trimmingSuffix("/") + "/v1/traces" : text
    }
}

private extension String {
    func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
