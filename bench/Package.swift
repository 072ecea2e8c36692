// swift-tools-version: 6.1
import PackageDescription

// Benchmarks and experiments for the CPU convolution kernels; not part of the product.
//   cd bench && swift build -c release && .build/release/opsbench
let package = Package(
    name: "StrataBench",
    dependencies: [.package(name: "Strata", path: "..")],
    targets: [
        .systemLibrary(name: "BenchBLAS", path: "Sources/BenchBLAS", pkgConfig: "openblas"),
        .executableTarget(
            name: "opsbench",
            dependencies: [.product(name: "GPUTensor", package: "Strata")],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
        .executableTarget(
            name: "convexp",
            dependencies: ["BenchBLAS"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
    ],
    swiftLanguageModes: [.v5]
)
