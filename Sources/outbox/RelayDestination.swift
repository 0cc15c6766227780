import ArgumentParser
import Foundation
import Logging
import Outbox
import OutboxAMQP
import OutboxKafka
import OutboxNATS
import ServiceLifecycle

/// Where `outbox relay` publishes: exactly one of Kafka, NATS JetStream, RabbitMQ or a JSON-lines
/// file, with `-X key=value` settings for the broker chosen.
struct RelayDestinationOptions: ParsableArguments {
    @Option(help: "Kafka bootstrap servers, host:port[,host:port…] (env: OUTBOX_KAFKA_BROKERS).")
    var kafkaBrokers: String?

    @Option(name: .customLong("nats-url"),
            help: "NATS servers with JetStream, nats://[user:password@]host:port[,…] (tls:// for TLS) (env: OUTBOX_NATS_URL). The topic is the subject; a stream must store it.")
    var natsURL: String?

    @Option(name: .customLong("amqp-url"),
            help: "RabbitMQ, amqp://user:password@host:port/vhost (amqps:// for TLS) (env: OUTBOX_AMQP_URL). The topic is the exchange, the key the routing key.")
    var amqpURL: String?

    @Option(name: .customShort("X"), help: ArgumentHelp(
        "A setting of the chosen broker, key=value (repeatable). Kafka: any librdkafka property, as kcat -X. NATS: subject.prefix, ack.timeout.ms, max.in.flight, tls.ca, tls.cert, tls.key, credentials. AMQP: exchange.prefix, ack.timeout.ms, max.in.flight, heartbeat.s, tls.ca, tls.cert, tls.key, tls.verify-hostname.",
        valueName: "key=value"))
    var settings: [String] = []

    @Option(help: "Instead of a broker: a JSON-lines file path to publish to, or - for standard output (the relay deletes what it writes there).")
    var output: String?

    /// The NATS settings `-X` accepts.
    static let natsSettingNames = ["subject.prefix", "ack.timeout.ms", "max.in.flight", "tls.ca", "tls.cert", "tls.key", "credentials"]
    /// The AMQP settings `-X` accepts.
    static let amqpSettingNames = ["exchange.prefix", "ack.timeout.ms", "max.in.flight", "heartbeat.s", "tls.ca", "tls.cert", "tls.key", "tls.verify-hostname"]

    var resolvedKafkaBrokers: String? { Self.nonEmpty(kafkaBrokers ?? ProcessInfo.processInfo.environment["OUTBOX_KAFKA_BROKERS"]) }
    var resolvedNATSURL: String? { Self.nonEmpty(natsURL ?? ProcessInfo.processInfo.environment["OUTBOX_NATS_URL"]) }
    var resolvedAMQPURL: String? { Self.nonEmpty(amqpURL ?? ProcessInfo.processInfo.environment["OUTBOX_AMQP_URL"]) }

    private static func nonEmpty(_ text: String?) -> String? { text.flatMap { $0.isEmpty ? nil : $0 } }

    /// Checks the destination options; the relay command calls it after its own checks, so a
    /// mistake in those is named first.
    func check() throws {
        // Explicit options decide; the environment only fills in when no destination was given.
        let explicit = [kafkaBrokers != nil, natsURL != nil, amqpURL != nil, output != nil].filter { $0 }.count
        if explicit > 1 {
            throw ValidationError("Choose one destination: --kafka-brokers, --nats-url, --amqp-url or --output, not several.")
        }
        // A relay acknowledges (deletes) what it publishes: with no destination chosen, messages
        // must not quietly go to standard output and vanish from the outbox.
        if chosen == nil {
            if !settings.isEmpty { throw ValidationError("-X settings are for a broker; give --kafka-brokers, --nats-url or --amqp-url too.") }
            throw ValidationError("Give the relay a destination: --kafka-brokers host:port (or OUTBOX_KAFKA_BROKERS), --nats-url nats://host:port (or OUTBOX_NATS_URL), --amqp-url amqp://host:port (or OUTBOX_AMQP_URL), or --output FILE (- for standard output).")
        }
        let parsed = try parsedSettings()
        switch chosen {
        case .kafka(let brokers):
            if brokers.split(separator: ",").contains(where: { !$0.contains(":") }) {
                throw ValidationError("--kafka-brokers must be host:port[,host:port…], e.g. localhost:9092.")
            }
        case .nats:
            _ = try natsConfiguration(parsed)
        case .amqp:
            _ = try amqpConfiguration(parsed)
        case .output:
            if !settings.isEmpty { throw ValidationError("-X settings are for a broker, not for --output.") }
        case nil:
            break
        }
    }

    enum Destination {
        case kafka(String)
        case nats(String)
        case amqp(String)
        case output(String)
    }

    /// The destination the options choose: an explicit option first, then the environment
    /// (Kafka before NATS).
    var chosen: Destination? {
        if let kafkaBrokers = Self.nonEmpty(kafkaBrokers) { return .kafka(kafkaBrokers) }
        if let natsURL = Self.nonEmpty(natsURL) { return .nats(natsURL) }
        if let amqpURL = Self.nonEmpty(amqpURL) { return .amqp(amqpURL) }
        if let output { return .output(output) }
        if let brokers = resolvedKafkaBrokers { return .kafka(brokers) }
        if let url = resolvedNATSURL { return .nats(url) }
        if let url = resolvedAMQPURL { return .amqp(url) }
        return nil
    }

    func parsedSettings() throws -> [String: String] {
        var parsed: [String: String] = [:]
        for setting in settings {
            guard let equals = setting.firstIndex(of: "="), equals != setting.startIndex else {
                throw ValidationError("-X takes key=value, e.g. -X linger.ms=5.")
            }
            parsed[String(setting[..<equals])] = String(setting[setting.index(after: equals)...])
        }
        return parsed
    }

    /// A `-X` value that must be a positive whole number of `unit`.
    private static func positive(_ name: String, _ value: String, _ unit: String) throws -> Int {
        guard let number = Int(value), number > 0 else { throw ValidationError("-X \(name) takes a positive number of \(unit).") }
        return number
    }

    private func natsConfiguration(_ settings: [String: String]) throws -> NATSPublisherConfiguration {
        guard case .nats(let url) = chosen else { throw ValidationError("--nats-url is missing.") }
        var configuration = NATSPublisherConfiguration(servers: url)
        for (name, value) in settings {
            switch name {
            case "subject.prefix": configuration.subjectPrefix = value
            case "ack.timeout.ms": configuration.acknowledgementTimeout = .milliseconds(try Self.positive(name, value, "milliseconds"))
            case "max.in.flight": configuration.maximumInFlight = try Self.positive(name, value, "messages")
            case "tls.ca": configuration.trustedCertificatesFile = value
            case "tls.cert": configuration.clientCertificateFile = value
            case "tls.key": configuration.clientKeyFile = value
            case "credentials": configuration.credentialsFile = value
            default:
                throw ValidationError("-X \(name) is not a NATS setting; use one of \(Self.natsSettingNames.joined(separator: ", ")).")
            }
        }
        do {
            _ = try NATSPublisher(configuration: configuration, logger: Logger(label: "outbox"))
        } catch let error as OutboxError {
            throw ValidationError(error.message)
        }
        return configuration
    }

    private func amqpConfiguration(_ settings: [String: String]) throws -> AMQPPublisherConfiguration {
        guard case .amqp(let url) = chosen else { throw ValidationError("--amqp-url is missing.") }
        var configuration = AMQPPublisherConfiguration(url: url)
        for (name, value) in settings {
            switch name {
            case "exchange.prefix": configuration.exchangePrefix = value
            case "ack.timeout.ms": configuration.acknowledgementTimeout = .milliseconds(try Self.positive(name, value, "milliseconds"))
            case "max.in.flight": configuration.maximumInFlight = try Self.positive(name, value, "messages")
            case "heartbeat.s":
                guard let seconds = Int(value), seconds >= 0 else { throw ValidationError("-X heartbeat.s takes a number of seconds (0: none).") }
                configuration.heartbeatSeconds = seconds
            case "tls.ca": configuration.trustedCertificatesFile = value
            case "tls.cert": configuration.clientCertificateFile = value
            case "tls.key": configuration.clientKeyFile = value
            case "tls.verify-hostname":
                guard let verify = Bool(value) else { throw ValidationError("-X tls.verify-hostname takes true or false.") }
                configuration.verifiesHostname = verify
            default:
                throw ValidationError("-X \(name) is not an AMQP setting; use one of \(Self.amqpSettingNames.joined(separator: ", ")).")
            }
        }
        do {
            _ = try AMQPPublisher(configuration: configuration, logger: Logger(label: "outbox"))
        } catch let error as OutboxError {
            throw ValidationError(error.message)
        }
        return configuration
    }

    /// The publisher, the services it needs in the relay's group (listed before the relay), and
    /// its name for the log (no password).
    func makePublisher(logger: Logger) throws -> (publisher: any OutboxPublisher, services: [any Service], name: String) {
        switch chosen {
        case .kafka(let brokers):
            let kafka = try KafkaPublisher(
                configuration: KafkaPublisherConfiguration(bootstrapServers: brokers, properties: try parsedSettings()), logger: logger)
            return (kafka, [kafka], "kafka \(brokers)")
        case .nats:
            let configuration = try natsConfiguration(try parsedSettings())
            let nats = try NATSPublisher(configuration: configuration, logger: logger)
            return (nats, [nats], "nats \(configuration.redactedServers)")
        case .amqp:
            let configuration = try amqpConfiguration(try parsedSettings())
            let amqp = try AMQPPublisher(configuration: configuration, logger: logger)
            return (amqp, [amqp], "amqp \(configuration.redactedURL)")
        case .output(let output):
            let lines = output == "-" ? OutboxJSONLinesPublisher() : try OutboxJSONLinesPublisher(path: output)
            return (lines, [], lines.destination)
        case nil:
            throw ValidationError("Give the relay a destination.")
        }
    }
}
