// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets, one per reader of user files; not part of the product or its tests.
//   make fuzz                              each target for FUZZ_RUNS inputs from corpus/<reader>
//   cd fuzz && swift build -c release -Xswiftc -sanitize=fuzzer,address
//   .build/release/FuzzSafeTensors -runs=1000000 work/ corpus/safetensors
// Every target feeds arbitrary bytes to the reader and to what consumes its result; a crash,
// a trap, an out-of-memory or a hang is a bug (the readers must throw one-line errors).
let package = Package(
    name: "StrataFuzz",
    dependencies: [.package(name: "Strata", path: "..")],
    targets: [.target(name: "FuzzSupport")] + ["FuzzSafeTensors", "FuzzCIFAR10", "FuzzIDX", "FuzzConfigJSON",
        "FuzzCIFAR100", "FuzzNumPy", "FuzzImage", "FuzzTar", "FuzzDatasetCache",
        "FuzzSearchJournal", "FuzzHPOJournal", "FuzzHPOSpace", "FuzzStudyReport"].map {
        .executableTarget(name: $0, dependencies: ["FuzzSupport", .product(name: "Trainer", package: "Strata")])
    },
    swiftLanguageModes: [.v5]
)
