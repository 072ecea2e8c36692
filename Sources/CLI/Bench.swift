import ArgumentParser
import GPUTensor

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure kernels and training steps.",
        subcommands: [BenchOps.self, BenchTrain.self, BenchTPE.self, BenchGroups.self])
}

/// `strata bench ops`: GFLOP/s of sgemm (the machine's ceiling) and of ResNet-20's convolutions.
struct BenchOps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "GFLOP/s of sgemm 1024^3 and of each ResNet-20 convolution (batch 128, 32x32).")

    @OptionGroup var deviceOptions: DeviceOptions

    @Option(help: "Timed repetitions per op (the median is reported).")
    var repeats: Int = 5

    @Flag(help: "Print one JSON object: {sgemm_gflops, ops: [{name, gflops, ms}]}.")
    var json = false

    func run() throws {
        var reports: [(String, OpsReport)] = []
        for choice in deviceOptions.choices {
            let backend = try orExit { try BackendFactory.make(choice, threads: deviceOptions.threads,
                                                                         strictFP32: deviceOptions.strictFP32,
                                                                         precision: try deviceOptions.precisionValue, notice: printError) }
            if !json { print("bench ops on \(backend.name)") }
            let report = try orExit { try OpsBenchmark.run(on: backend, repeats: repeats) }
            reports.append((backend.device.description, report))
            if !json { print(report.table()) }
        }
        if json {
            if reports.count == 1 {
                print(reports[0].1.json())
            } else {
                print("{" + reports.map { "\"\($0.0)\": \($0.1.json())" }.joined(separator: ", ") + "}")
            }
        }
    }
}
