import ArgumentParser
import GPUTensor
import Trainer

/// `strata bench groups`: G same-shaped seed-000 cnn trials fused into one trial group against
/// the same G trials trained one after another (images/s of training steps, synthetic data).
struct BenchGroups: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "groups",
        abstract: "Images/s of G cnn trials fused into one trial group vs one after another (synthetic data).")

    @OptionGroup var deviceOptions: DeviceOptions

    @Option(help: "cnn shapes, comma-separated, each <conv layers>x<filters>/<hidden units, '+'-separated>, e.g. 2x16/64+32.")
    var shapes: String = "2x16/64,3x32/128"

    @Option(help: "Group sizes G, comma-separated.")
    var members: String = "2,4"

    @Option(help: "Batch sizes, comma-separated.")
    var batchSizes: String = "10,40"

    @Option(help: "Timed steps per round (best of 3 interleaved rounds).")
    var steps: Int = 10

    @Option(help: inputShapeHelp)
    var input: String = "cifar"

    struct Shape { var layers: Int; var filters: Int; var hidden: [Int] }

    func parsedShapes() throws -> [Shape] {
        try shapes.split(separator: ",").map { text in
            let parts = text.split(separator: "/")
            let conv = parts.first?.split(separator: "x") ?? []
            guard parts.count == 2, conv.count == 2, let l = Int(conv[0]), let f = Int(conv[1]), l >= 1, f >= 1 else {
                throw ValidationError("--shapes: '\(text)' is not <layers>x<filters>/<hidden>")
            }
            let hidden = parts[1].split(separator: "+").compactMap { Int($0) }
            guard !hidden.isEmpty, hidden.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--shapes: '\(text)' has no hidden units") }
            return Shape(layers: l, filters: f, hidden: hidden)
        }
    }

    func numbers(_ text: String, _ flag: String) throws -> [Int] {
        try text.split(separator: ",").map {
            guard let v = Int($0), v >= 1 else { throw ValidationError("\(flag): '\($0)' is not a positive whole number") }
            return v
        }
    }

    func validate() throws {
        _ = try parsedShapes()
        _ = try numbers(members, "--members")
        guard try numbers(batchSizes, "--batch-sizes").allSatisfy({ $0 <= ConfigValidation.maxBatch }) else {
            throw ValidationError("--batch-sizes: at most \(ConfigValidation.maxBatch)")
        }
        guard steps >= 1 && steps <= 10_000 else { throw ValidationError("--steps must be in 1...10000, got \(steps)") }
    }

    func run() throws {
        let image = try parseInputShape(input)
        let batches = try numbers(batchSizes, "--batch-sizes")
        let backend = try orExit { try deviceOptions.makeBackend(batchSize: batches.max() ?? 40) }
        for s in try parsedShapes() {
            var spec = try orExit { try ModelZoo.spec("cnn", input: image, classes: 10) }
            spec.cnn = CNNOptions(filters: Array(repeating: s.filters, count: s.layers), kernel: 3, hidden: s.hidden)
            for g in try numbers(members, "--members") {
                for b in batches {
                    let r = try orExit { try GroupBenchmark.run(spec: spec, members: g, batch: b, steps: steps, backend: backend) }
                    print(r)
                }
            }
        }
    }
}
