// swift-tools-version: 6.1
// The README's library examples as real code, one executable per store plus a Hummingbird
// application; `scripts/test.sh` builds and runs them. A new package depends on swift-outbox the
// same way, with `.package(url: "https://github.com/<owner>/swift-outbox", from: "…")` instead
// of the path below.
import Foundation
import PackageDescription

// A path dependency is named after its folder (the repository's clone); a URL dependency would
// be `package: "swift-outbox"`.
let outbox = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "swift-outbox-examples",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        .executableTarget(
            name: "SQLiteExample",
            dependencies: [
                .product(name: "Outbox", package: outbox),
                .product(name: "OutboxSQLite", package: outbox),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .executableTarget(
            name: "PostgresExample",
            dependencies: [
                .product(name: "Outbox", package: outbox),
                .product(name: "OutboxPostgres", package: outbox),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .executableTarget(
            name: "MySQLExample",
            dependencies: [
                .product(name: "Outbox", package: outbox),
                .product(name: "OutboxMySQL", package: outbox),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .executableTarget(
            name: "MongoExample",
            dependencies: [
                .product(name: "Outbox", package: outbox),
                .product(name: "OutboxMongo", package: outbox),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .executableTarget(
            name: "OrdersApp",
            dependencies: [
                .product(name: "Outbox", package: outbox),
                .product(name: "OutboxSQLite", package: outbox),
                .product(name: "OutboxPrometheus", package: outbox),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
    ]
)
