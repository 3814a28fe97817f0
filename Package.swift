// swift-tools-version: 6.0
import Foundation
import PackageDescription

// MARK: - Implementation details

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    // Hot loops run on unsafe pointers; exclusivity checks there cost without protecting anything.
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

/// oneDNN is compiled in where its headers are (`scripts/install-deps.sh` installs Debian's
/// `libdnnl-dev` on x86-64 Linux); `FEDSWIFT_NO_ONEDNN=1` builds the OpenBLAS-only engine.
let withOneDNN =
    FileManager.default.fileExists(atPath: "/usr/include/oneapi/dnnl/dnnl.h")
    && ProcessInfo.processInfo.environment["FEDSWIFT_NO_ONEDNN"] == nil

let oneDNNTargets: [Target] =
    withOneDNN
    ? [
        .target(
            name: "CDNNL",
            linkerSettings: [.linkedLibrary("dnnl"), .linkedLibrary("gomp")]
        )
    ] : []

// MARK: - Public API

let package = Package(
    name: "FedSwift",
    products: [
        .library(name: "FedTensor", targets: ["FedTensor"]),
        .library(name: "FedNN", targets: ["FedNN"]),
        .library(name: "FedData", targets: ["FedData"]),
        .library(name: "FedCompress", targets: ["FedCompress"]),
        .library(name: "FedCore", targets: ["FedCore"]),
        .library(name: "FedEngine", targets: ["FedEngine"]),
        .library(name: "FedSim", targets: ["FedSim"]),
        .library(name: "FedFlower", targets: ["FedFlower"]),
        .executable(name: "fedswift", targets: ["fedswift"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        // Already in the graph through the TLS stack; FedNet hashes client tokens with it.
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        // Already in the graph through gRPC: FedNet logs with swift-log and serves its metrics
        // endpoint with NIO's HTTP/1.1; swift-prometheus keeps and formats the metrics.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // FedFlower speaks Flower's Fleet API (protobuf over HTTP/1.1 and HTTPS).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "pkg-config"])]
        ),
        .systemLibrary(
            name: "CZlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(
            name: "FedTensor",
            dependencies: [.target(name: "CBLAS", condition: .when(platforms: [.linux]))]
                + (withOneDNN ? [.target(name: "CDNNL", condition: .when(platforms: [.linux]))] : []),
            swiftSettings: swiftSettings
        ),
        .target(name: "FedNN", dependencies: ["FedTensor"], swiftSettings: swiftSettings),
        .target(name: "FedData", dependencies: ["FedTensor", "CZlib"], swiftSettings: swiftSettings),
        .target(name: "FedCompress", dependencies: ["FedTensor", "CZlib"], swiftSettings: swiftSettings),
        .target(name: "FedCore", dependencies: ["FedTensor", "FedNN", "FedData"], swiftSettings: swiftSettings),
        // The federated protocol for any client pool: config, round engine, local update, receive path.
        .target(
            name: "FedEngine",
            dependencies: [
                "FedTensor", "FedNN", "FedData", "FedCore", "FedCompress", "CZlib",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // The networked runtime: the wire contract (generated from Protos/), the coordinator's
        // client pool and service, and the client's session. The only module that depends on gRPC.
        .target(
            name: "FedNet",
            dependencies: [
                "FedTensor", "FedNN", "FedData", "FedCore", "FedCompress", "FedEngine",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            exclude: ["Generated/README.md"],
            swiftSettings: swiftSettings
        ),
        // A native Flower SuperNode: Flower's Fleet API over HTTP (messages generated from
        // Protos/flwr/), its content-addressed objects and .npy arrays, the node's signed identity,
        // and a ClientApp that trains with the engine's local update.
        .target(
            name: "FedFlower",
            dependencies: [
                "FedTensor", "FedNN", "FedData", "FedCore", "FedEngine",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Generated/README.md"],
            swiftSettings: swiftSettings
        ),
        // The simulator: virtual clients on a virtual clock behind the engine.
        .target(
            name: "FedSim",
            dependencies: ["FedTensor", "FedNN", "FedData", "FedCore", "FedCompress", "FedEngine"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fedswift",
            dependencies: [
                "FedTensor", "FedNN", "FedData", "FedCore", "FedEngine", "FedSim", "FedCompress", "FedNet", "FedFlower",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Shared by the test targets: temporary directories, approximate comparison.
        .target(name: "FedTestSupport", swiftSettings: swiftSettings),
        .testTarget(
            name: "FedTensorTests", dependencies: ["FedTensor", "FedTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "FedNNTests",
            dependencies: ["FedNN", "FedTensor", "FedTestSupport"],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FedDataTests", dependencies: ["FedData", "FedTensor", "FedTestSupport"], swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FedCompressTests", dependencies: ["FedCompress", "FedTensor"], swiftSettings: swiftSettings),
        .testTarget(
            name: "FedSimTests",
            dependencies: [
                "FedSim", "FedEngine", "FedCompress", "FedCore", "FedNN", "FedData", "FedTensor", "FedTestSupport",
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "FedEngineTests",
            dependencies: ["FedEngine", "FedCore", "FedCompress", "FedNN", "FedTensor", "FedTestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "FedNetTests",
            dependencies: [
                "FedNet", "FedSim", "FedEngine", "FedCore", "FedCompress", "FedData", "FedNN", "FedTensor",
                "FedTestSupport",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "FedFlowerTests",
            dependencies: [
                "FedFlower", "FedEngine", "FedData", "FedNN", "FedTensor", "FedTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "FedCoreTests", dependencies: ["FedCore", "FedNN", "FedData", "FedTensor"],
            swiftSettings: swiftSettings),
    ] + oneDNNTargets
)
