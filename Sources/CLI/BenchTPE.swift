import ArgumentParser
import Trainer

/// `strata bench tpe`: the samplers on standard test functions, for comparison with Optuna
/// (bench/hpo/tpe-vs-optuna.sh and cmaes-vs-optuna.sh run both with the same budget and seeds).
struct BenchTPE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tpe",
        abstract: "Best values of the TPE, random and CMA-ES samplers on branin, hartmann6 and a mixed space.")

    @Option(help: "Test functions, comma-separated (branin, hartmann6, mixed).")
    var functions: String = "branin,hartmann6,mixed"

    @Option(help: "Samplers, comma-separated (tpe, random, cmaes).")
    var samplers: String = "tpe,random"

    @Option(help: "Trials per run.")
    var trials: Int = 50

    @Option(help: "Seeds (runs) per function and sampler.")
    var seeds: Int = 10

    @Flag(help: "One JSON line per run: {function, sampler, seed, best}.")
    var json = false

    func validate() throws {
        guard trials >= 1 && seeds >= 1 else { throw ValidationError("--trials and --seeds must be at least 1") }
        for s in samplerList where !["tpe", "random", "cmaes"].contains(s) {
            throw ValidationError("--samplers: '\(s)' is not tpe, random or cmaes")
        }
    }

    func run() throws {
        for name in functions.split(separator: ",").map(String.init) {
            let f = try orExit { try HPOTestFunction.named(name) }
            for sampler in samplerList {
                var bests: [Double] = []
                for seed in 0..<seeds {
                    let s: HPOSampler = switch sampler {
                    case "tpe": TPESampler(seed: UInt64(seed))
                    case "cmaes": CMAESSampler(seed: UInt64(seed))
                    default: UniformSampler(seed: UInt64(seed))
                    }
                    let best = f.minimise(with: s, trials: trials).best
                    bests.append(best)
                    if json { print("{\"function\": \"\(name)\", \"sampler\": \"\(sampler)\", \"seed\": \(seed), \"best\": \(best)}") }
                }
                if !json {
                    let sorted = bests.sorted()
                    print("\(name) \(sampler): median best \(sorted[sorted.count / 2]), mean \(bests.reduce(0, +) / Double(bests.count)) "
                          + "over \(plural(seeds, "seed")) of \(plural(trials, "trial")) (optimum \(f.optimum))")
                }
            }
        }
    }

    var samplerList: [String] { samplers.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
}
