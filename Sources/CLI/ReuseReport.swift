import ArgumentParser
import GPUTensor
import Trainer

struct ReuseReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reuse-report",
        abstract: "Parameter-reusability analysis: swap one tensor of one layer from source models into a target, evaluate without retraining, relate the change to the tensors' RMSE.",
        discussion: """
        For every convolution and batch-norm layer that target and source have with the same shape, and every kind \
        (W and B of convolutions; RM, RV, RW, RB: running mean, running variance, weight and bias of batch norms), \
        the target's test accuracy and loss with that one tensor replaced by the source's, next to its own. \
        Writes report.json, report.txt, heatmap.svg and rmse-vs-drop.svg into --output.

        Verdicts: a swap is reusable when it costs at most --tolerance points of accuracy; the source is a \
        reusable network for the target when at least 75% of its swaps are reusable.

        Example:
          strata reuse-report --target runs/A1 --source runs/B1 --source runs/A2 \\
              --cumulative --output runs/reuse-A1
        """)

    @Option(help: "The model analysed: a run directory (its best checkpoint) or a .safetensors file.")
    var target: String

    @Option(help: "A model whose tensors are swapped in (repeat for several).")
    var source: [String] = []

    @Option(help: "Dataset directory whose test set is evaluated (default: the target's own).")
    var data: String?

    @Option(help: "Kinds to swap, from W,B,RM,RV,RW,RB.")
    var kinds: String = "W,B,RM,RV,RW,RB"

    @Flag(help: "Also swap layers 1..i together for every i (the longest reusable prefix).")
    var cumulative = false

    @Option(help: "Accuracy drop, in percentage points, up to which a swap counts as reusable.")
    var tolerance: Double = 1

    @Option(help: "Evaluate on a seeded sample of this many test images (default: all).")
    var testLimit: Int?

    @Option(help: "Evaluation batch size.")
    var batchSize: Int = 500

    @Option(help: "Directory for report.json, report.txt and the figures.")
    var output: String

    @Option(help: "The heatmap's colour scale in accuracy points, MIN,MAX, e.g. --color-scale=-5,5 (the = keeps -5 from reading as a flag), the same for every report drawn with it (default: up to each report's largest change).")
    var colorScale: String?

    @Flag(help: "Replace a report already in --output.")
    var overwrite = false

    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        guard !source.isEmpty else { throw ValidationError("--source: give at least one source model") }
        guard tolerance >= 0 && tolerance.isFinite else { throw ValidationError("--tolerance must be a number of points >= 0") }
        if let t = testLimit, t < 1 { throw ValidationError("--test-limit must be at least 1") }
        if let c = colorScale { do { _ = try Trainer.ReuseReport.parseColorScale(c) } catch { throw ValidationError("\(error)") } }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        do { _ = try ParameterKind.parseList(kinds) } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        let backend = try orExit { try deviceOptions.makeBackend() }
        let progress = ProgressDisplay()
        // The report's four files may share a folder with others; only they would be replaced.
        try orExit {
            if let notice = try OutputPolicy(overwrite: overwrite).prepareFolder(output, for: .reuseReport).notice { print(notice) }
        }
        let report = try orExit { () throws -> Trainer.ReuseReport in
            var job = ReuseReportJob(target: target, sources: source, dataPath: data,
                                     options: .init(kinds: try ParameterKind.parseList(kinds), cumulative: cumulative,
                                                    tolerance: tolerance / 100),
                                     testLimit: testLimit, batchSize: batchSize, output: output, overwrite: overwrite)
            job.colorScale = try colorScale.map(Trainer.ReuseReport.parseColorScale)
            return try job.run(backend: backend) { done, total, what in
                progress.batch(prefix: "reuse-report", done: done, total: total, fields: { what })
            }
        }
        progress.line(report.text)
        if let warning = report.chanceWarning { printError("warning: \(warning)") }
        print("wrote \(output)/report.json, report.txt, heatmap.svg, rmse-vs-drop.svg")
    }
}
