import ArgumentParser
import GPUTensor
import Trainer
#if canImport(Glibc)
import Glibc
#endif

/// `--device`, `--threads`, `--strict-fp32` and `--precision`, shared by every command that computes.
struct DeviceOptions: ParsableArguments {
    @Option(help: "cpu, cuda, cuda:N or auto (CUDA when built with it and a GPU answers).")
    var device: String = "auto"

    @Option(help: "CPU threads (default: all online cores; at most 4x the cores).")
    var threads: Int?

    @Flag(name: .customLong("strict-fp32"), help: "On CUDA, full FP32 in GEMM and convolutions (default: TF32 tensor cores).")
    var strictFP32 = false

    @Option(help: "fp32, bf16 or fp16: the format of convolutions and GEMMs (weights, optimizer state and checkpoints stay FP32; fp16 uses dynamic loss scaling; bf16 on the CPU needs AVX-512 BF16). With --resume: the run's own.")
    var precision: String = "fp32"

    func validate() throws {
        _ = try precisionValue
        let parts = device.split(separator: ",")
        guard !parts.isEmpty, choices.count == parts.count else {
            throw ValidationError("--device must be cpu, cuda, cuda:N or auto (bench ops also takes a list: cpu,cuda), not '\(device)'")
        }
        try checkCPUBound(threads, flag: "--threads")
    }

    /// Several devices for comparisons: `--device cpu,cuda`.
    var choices: [DeviceChoice] { device.split(separator: ",").compactMap { DeviceChoice(parsing: String($0)) } }

    /// `--precision` parsed.
    var precisionValue: Precision {
        get throws {
            guard let p = Precision(parsing: precision) else {
                throw ValidationError("--precision must be fp32, bf16 or fp16, not '\(precision)'")
            }
            return p
        }
    }

    /// Whether `--precision` was given (a resumed run otherwise keeps its own).
    var precisionGiven: Bool { givenFlags().contains("precision") }

    /// The precision a command that continues `stored` (a resumed run's, a config file's) runs
    /// in: `stored` unless --precision was given; given and different, a resumed run refuses
    /// (`mode` names it) because its weights and loss scale belong to the stored one.
    func runPrecision(continuing stored: Precision?, refuseChangeWith mode: String? = nil) throws -> Precision {
        guard let stored else { return try precisionValue }
        guard precisionGiven else { return stored }
        let given = try precisionValue
        if given != stored, let mode {
            throw ValidationError("--precision \(given.rawValue) cannot be used with \(mode): it trains in \(stored.rawValue) "
                                  + "(a run keeps its precision; pass --precision \(stored.rawValue) or none)")
        }
        return given
    }

    /// `batchSize`: the training batch, for commands that train (it picks the CUDA layout).
    /// `precision`: the command's (default: `--precision`).
    func makeBackend(batchSize: Int? = nil, precision: Precision? = nil) throws -> Backend {
        guard choices.count == 1 else { throw ValidationError("--device takes one device for this command") }
        return try BackendFactory.make(choices[0], threads: threads, strictFP32: strictFP32, batchSize: batchSize,
                                       precision: try precision ?? precisionValue, notice: printError)
    }
}

func printError(_ line: String) {
    fputs(line + "\n", stderr)
}

/// Makes thrown library errors end the command with their message on one line: exit status 64
/// for a configuration that came from the flags (a usage error), 1 for everything else.
/// `configFile` names the file a configuration came from, for errors that do not know it.
func orExit<T>(configFile: String? = nil, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as ValidationError { throw error } catch let error as ExitCode {
        throw error
    } catch let error as InterruptedError {
        throw error   // Strata.main says how to resume and exits 130/143
    } catch var error as ConfigError {
        if let configFile, error.source == .unnamed { error = error.from(.file(configFile)) }
        printError("strata: error: \(error)")
        throw error.source == .flags ? ExitCode.validationFailure : ExitCode.failure
    } catch {
        printError("strata: error: \(oneLine(error))")
        throw ExitCode.failure
    }
}

/// An error's description on one line (a library message never spans lines; a system one might).
func oneLine(_ error: Error) -> String {
    let text = (error as? DecodingError).map { describe($0) } ?? "\(error)"
    return text.split(whereSeparator: \.isNewline).joined(separator: "; ")
}

/// CPU cores online.
func onlineCores() -> Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

/// `--threads` and `--workers` take at most 4x the machine's cores: a little oversubscription can
/// help a run that waits on memory, but beyond that each thread or worker only costs memory and
/// switching (1000 threads turn a 0.2 s job into minutes).
let cpuOversubscription = 4

func checkCPUBound(_ value: Int?, flag: String) throws {
    guard let value else { return }
    if value < 1 { throw ValidationError("\(flag) must be at least 1, got \(value)") }
    let cores = onlineCores(), limit = cores * cpuOversubscription
    if value > limit {
        throw ValidationError("\(flag) \(value) is more than this machine can use: at most \(limit) "
                              + "(\(cpuOversubscription)x its \(cores) cores)")
    }
}

/// The long flags given on the command line (`--lr 0.1`, `--lr=0.1` -> "lr"), for commands that
/// must tell a flag given from its default (with `--resume` or `--config`).
func givenFlags() -> Set<String> {
    var out = Set<String>()
    for a in CommandLine.arguments.dropFirst() {
        if a == "--" { break }
        guard a.hasPrefix("--"), a.count > 2 else { continue }
        out.insert(String(a.dropFirst(2).split(separator: "=", maxSplits: 1)[0]))
    }
    return out
}

/// Refuses, in one line naming the first, the flags given that `mode` (`--resume`, `--config`)
/// would not use: a flag is never silently ignored. `allowed` are the flags the mode applies.
func refuseUnusedFlags(with mode: String, allowed: Set<String>, why: String) throws {
    let unused = givenFlags().subtracting(allowed).subtracting(["help", "version"]).sorted()
    guard let first = unused.first else { return }
    let more = unused.count > 1 ? " (and " + unused.dropFirst().map { "--" + $0 }.joined(separator: ", ") + ")" : ""
    throw ValidationError("--\(first)\(more) cannot be used with \(mode): \(why)")
}
