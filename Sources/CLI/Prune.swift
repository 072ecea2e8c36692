import ArgumentParser
import GPUTensor
import Trainer
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Structured Synflow pruning at initialisation: the spec of a narrower proxy model.",
        discussion: """
        Scores every output channel of the model's convolutions with Synflow at initialisation (absolute weights, \
        an input of ones, batch norm in inference mode with its initial statistics), removes the channels below \
        the --percentile-th percentile over the whole network, keeps at least --min-ratio of every layer, and \
        prints the widths, parameters and FLOPs before and after. ResNets narrow each block's inner convolution; \
        their blocks' output widths, tied across a stage by the identity shortcuts, are kept (--tied keep) or \
        pruned together, each stage's tied channels as one layer (--tied prune; with option A shortcuts no stage \
        ends narrower than the one before it).

        --output writes the proxy's model spec, which `strata train --model-spec FILE` trains.

        Example:
          strata prune --model resnet20 --output runs/resnet20-proxy.json
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: inputShapeHelp)
    var input: String = "3x32x32"

    @Option(help: "Classes of the output layer.")
    var classes: Int = 10

    @Option(help: "Channels scoring below this percentile of the whole network are removed.")
    var percentile: Double = 85

    @Option(help: "Fraction of every layer's channels kept at least.")
    var minRatio: Double = 0.15

    @Option(help: "ResNets: keep the stages' shortcut-tied output widths, or prune them together (keep|prune).")
    var tied: String = "keep"

    @Option(help: "Initialisation seed of the scored model (use the seed the proxy will be trained with).")
    var seed: UInt64 = 0

    @Flag(help: "Print one JSON object (layers, params_before/after, flops_before/after, spec).")
    var json = false

    @Option(help: "Write the pruned model spec (JSON) to this file.")
    var output: String?

    @Flag(help: "Replace --output when it exists.")
    var overwrite = false

    func validate() throws {
        guard (0...100).contains(percentile) else { throw ValidationError("--percentile must be in [0, 100], got \(percentile)") }
        guard minRatio > 0 && minRatio <= 1 else { throw ValidationError("--min-ratio must be in (0, 1], got \(minRatio)") }
        guard TiedChannels(rawValue: tied) != nil else { throw ValidationError("--tied must be keep or prune, not '\(tied)'") }
        guard classes >= 2 else { throw ValidationError("--classes must be at least 2") }
        _ = try inputShape()
    }

    func inputShape() throws -> ImageShape { try parseInputShape(input) }

    func run() throws {
        let notice = try orExit { try output.flatMap { try OutputPolicy(overwrite: overwrite).prepareFile($0) } }
        let spec = try modelOptions.spec(input: try inputShape(), classes: classes)
        let report = try orExit {
            try Pruning.prune(spec, seed: seed, percentile: percentile, minRatio: minRatio, tied: TiedChannels(rawValue: tied)!,
                              backend: CPUBackend())
        }
        if let output {
            if let notice { print(notice) }
            try orExit { try RunDirectory(path: ".").writeJSON(report.spec, to: output) }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.text, terminator: "")
            if let output { print("proxy spec written to \(output) (strata train --model-spec \(output))") }
        }
    }
}
