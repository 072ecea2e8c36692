// swift-tools-version: 6.1
import PackageDescription

// Strata: a Swift training backend for CNNs that reuse what was already trained.
// `swift build` is CPU-only (oneDNN). The GPU backend comes with the `CUDA` trait.
let package = Package(
    name: "Strata",
    products: [
        .library(name: "GPUTensor", targets: ["GPUTensor"]),
        .library(name: "Trainer", targets: ["Trainer"]),
        .executable(name: "strata", targets: ["CLI"]),
    ],
    // `swift build --traits CUDA` adds CUDABackend (headers of cudart, cuBLAS, cuDNN and NVRTC
    // found through pkg-config `ccuda`, see scripts/install-cuda.sh; the libraries themselves are
    // opened at run time); without the trait nothing CUDA is needed.
    traits: [
        .trait(name: "CUDA", description: "The CUDA backend (needs scripts/install-cuda.sh and PKG_CONFIG_PATH)"),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // oneDNN's C API headers (Debian's libdnnl-dev, which ships no pkg-config file). The
        // library itself is opened at run time by CDNNLLoader, which defines the functions.
        .systemLibrary(
            name: "CDNNL",
            providers: [.apt(["libdnnl-dev"])]
        ),
        .target(name: "CDNNLLoader", dependencies: ["CDNNL"]),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // Dataset downloads (`strata data fetch`): HTTP(S) with Range resume, through libcurl.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // Image-folder datasets: PNG through libpng's simplified API, JPEG through TurboJPEG
        // (both report errors by return value, so no setjmp/longjmp crosses Swift frames).
        .systemLibrary(
            name: "CPNG",
            pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]
        ),
        .systemLibrary(
            name: "CTurboJPEG",
            pkgConfig: "libturbojpeg",
            providers: [.apt(["libturbojpeg0-dev"])]
        ),
        .systemLibrary(
            name: "CCuda",
            pkgConfig: "ccuda"
        ),
        // Defines the CUDA functions Strata calls as forwarders into libraries opened with dlopen
        // on first use, so a CUDA build starts (and runs on the CPU) where they are missing.
        .target(
            name: "CCudaLoader",
            dependencies: [.target(name: "CCuda", condition: .when(traits: ["CUDA"]))],
            cSettings: [.define("STRATA_CUDA", .when(traits: ["CUDA"]))],
            linkerSettings: [.linkedLibrary("dl", .when(traits: ["CUDA"]))]
        ),
        .target(
            name: "GPUTensor",
            dependencies: [
                "CDNNL",
                "CDNNLLoader",
                .target(name: "CCuda", condition: .when(traits: ["CUDA"])),
                .target(name: "CCudaLoader", condition: .when(traits: ["CUDA"])),
            ]
        ),
        .target(
            name: "Trainer",
            dependencies: ["GPUTensor", "CZlib", "CCurl", "CPNG", "CTurboJPEG"]
        ),
        .executableTarget(
            name: "CLI",
            dependencies: [
                "GPUTensor", "Trainer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "GPUTensorTests", dependencies: ["GPUTensor"]),
        .testTarget(name: "TrainerTests", dependencies: ["Trainer", "GPUTensor"]),
    ],
    // Swift 5 mode: kernels hand raw pointers to worker threads, which strict Sendable
    // checking would reject; thread safety is by construction (disjoint ranges per thread).
    swiftLanguageModes: [.v5]
)
