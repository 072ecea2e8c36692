// swift-tools-version: 6.1
import PackageDescription

// Benchmarks for the CPU kernels; not part of the product.
//   cd bench && swift build -c release
//   .build/release/opsbench [repeats] [threads]    OpsBenchmark's table and JSON (wall clock)
//   .build/release/cputime [batch] [repeats]       one thread, minimum thread-CPU time per op:
//                                                  ratios that survive a machine shared with builds
//   .build/release/layertime [repeats]             the same for batch norm, ReLU, pooling, bias, add
// C experiments on alternative schemes: c/ (see NOTES.md).
let package = Package(
    name: "StrataBench",
    dependencies: [.package(name: "Strata", path: "..")],
    targets: [
        .executableTarget(
            name: "opsbench",
            dependencies: [.product(name: "GPUTensor", package: "Strata")],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
        .executableTarget(
            name: "cputime",
            dependencies: [.product(name: "GPUTensor", package: "Strata")],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
        .executableTarget(
            name: "layertime",
            dependencies: [.product(name: "GPUTensor", package: "Strata")],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
    ],
    swiftLanguageModes: [.v5]
)
