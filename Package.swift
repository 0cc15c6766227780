// swift-tools-version: 6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "swift-outbox",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Outbox", targets: ["Outbox"]),
        .library(name: "OutboxTesting", targets: ["OutboxTesting"]),
        .library(name: "OutboxSQLite", targets: ["OutboxSQLite"]),
        .library(name: "OutboxKafka", targets: ["OutboxKafka"]),
        .library(name: "OutboxPostgres", targets: ["OutboxPostgres"]),
        .library(name: "OutboxMySQL", targets: ["OutboxMySQL"]),
        .library(name: "OutboxMongo", targets: ["OutboxMongo"]),
        .library(name: "OutboxNATS", targets: ["OutboxNATS"]),
        .library(name: "OutboxAMQP", targets: ["OutboxAMQP"]),
        .library(name: "OutboxPrometheus", targets: ["OutboxPrometheus"]),
        .library(name: "OutboxAdmin", targets: ["OutboxAdmin"]),
        .executable(name: "outbox", targets: ["outbox"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // OTLP over HTTP only: the gRPC exporter's dependencies would add minutes to every clean build.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        .target(
            name: "Outbox",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "OutboxTesting",
            dependencies: ["Outbox", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "OutboxSQLite",
            dependencies: ["Outbox", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "OutboxPostgres",
            dependencies: [
                "Outbox",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .systemLibrary(name: "CMariaDB", pkgConfig: "libmariadb", providers: [.apt(["libmariadb-dev"])]),
        .target(
            name: "OutboxMySQL",
            dependencies: [
                "Outbox", "CMariaDB",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .systemLibrary(name: "CMongoC", pkgConfig: "libmongoc-1.0", providers: [.apt(["libmongoc-dev"])]),
        .target(
            name: "OutboxMongo",
            dependencies: [
                "Outbox", "CMongoC",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .target(
            name: "OutboxKafka",
            dependencies: [
                "Outbox", "CRdKafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .systemLibrary(name: "CNATS", pkgConfig: "libnats", providers: [.apt(["libnats-dev"])]),
        .target(
            name: "OutboxNATS",
            dependencies: [
                "Outbox", "CNATS",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .systemLibrary(name: "CRabbitMQ", pkgConfig: "librabbitmq", providers: [.apt(["librabbitmq-dev"])]),
        .target(
            name: "OutboxAMQP",
            dependencies: [
                "Outbox", "CRabbitMQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // How the outbox's HTTP servers (metrics, admin) listen; not a product.
        .target(
            name: "OutboxHTTPServing",
            dependencies: [
                "Outbox",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "OutboxPrometheus",
            dependencies: [
                "Outbox", "OutboxHTTPServing",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "OutboxAdmin",
            dependencies: [
                "Outbox", "OutboxHTTPServing",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "outbox",
            dependencies: [
                "Outbox", "OutboxSQLite", "OutboxTesting", "OutboxKafka", "OutboxNATS", "OutboxAMQP", "OutboxPostgres", "OutboxMySQL", "OutboxMongo",
                "OutboxPrometheus", "OutboxAdmin",
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // What the project's own tests share (servers from the environment, the repository's
        // scripts); not a product: users get OutboxTesting.
        .target(
            name: "OutboxTestSupport",
            dependencies: ["OutboxTesting"],
            path: "Tests/OutboxTestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "OutboxTests",
            dependencies: [
                "Outbox", "OutboxTesting", .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"), .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "OutboxPostgresTests",
            dependencies: ["Outbox", "OutboxTesting", "OutboxTestSupport", "OutboxPostgres", .product(name: "PostgresNIO", package: "postgres-nio")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "OutboxMySQLTests",
            dependencies: ["Outbox", "OutboxTesting", "OutboxTestSupport", "OutboxMySQL", "OutboxAdmin"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "OutboxMongoTests",
            dependencies: ["Outbox", "OutboxTesting", "OutboxTestSupport", "OutboxMongo", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "OutboxAMQPTests",
            dependencies: ["Outbox", "OutboxTesting", "OutboxTestSupport", "OutboxAMQP", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "OutboxNATSTests",
            dependencies: ["Outbox", "OutboxTesting", "OutboxTestSupport", "OutboxNATS", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "OutboxKafkaTests",
            dependencies: [
                "Outbox", "OutboxTesting", "OutboxTestSupport", "OutboxKafka", "OutboxSQLite",
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Tracing", package: "swift-distributed-tracing"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "OutboxCLITests",
            dependencies: [
                "Outbox", "OutboxTesting", "OutboxTestSupport", "OutboxSQLite", "OutboxKafka", "OutboxNATS", "OutboxAMQP",
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "OutboxSQLiteTests",
            dependencies: ["Outbox", "OutboxTesting", "OutboxTestSupport", "OutboxSQLite", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strictSettings
        ),
    ]
)
