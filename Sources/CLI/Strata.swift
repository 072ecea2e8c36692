import ArgumentParser
import Trainer
#if canImport(Glibc)
import Glibc
#endif

@main
struct Strata: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "Train convolutional networks that reuse what was already trained.",
        discussion: """
        Exit status: 0 on success; 64 for a usage error (a flag, its value or a combination of flags that cannot work, \
        said in one line naming the flag); 1 for a runtime error (a file that cannot be read or written, a corrupt \
        dataset, checkpoint or config file, a run that fails), said in one line naming the file, the offset, the \
        tensor or the field. Strata never ends on a signal for bad input.

        Outputs: no command replaces a file or folder a user has there (a search or hpo --output must be empty, \
        absent or the same study) unless given --overwrite, which says in one line what it removes. File arguments \
        (--space, --config, --model-spec, checkpoints) must be regular files. --threads and --workers take at most \
        4x the machine's cores. With --resume or --config, a flag the run would not use is refused, never ignored.
        """,
        version: "strata " + TrainerVersion.string,
        subcommands: [Train.self, Grow.self, Search.self, SearchTrial.self, SearchWorker.self, HPOCommand.self, Eval.self, Predict.self, ReuseReportCommand.self, Prune.self, Models.self, SelfTest.self, Bench.self, Info.self,
                      DataCommand.self])

    /// Parses and runs a command; every error ends with one line on stderr and exit status 64
    /// (usage) or 1 (runtime). Help and version go to stdout as the parser writes them.
    static func main() {
        let arguments = joinNegativeValues(Array(CommandLine.arguments.dropFirst()))
        do {
            var command = try parseAsRoot(arguments)
            // Long commands stop at a safe point on SIGINT/SIGTERM (see `Interruption`).
            if command is Train || command is Grow || command is Search || command is HPOCommand { Interruption.install() }
            try command.run()
        } catch let error as InterruptedError {
            printError("strata: " + error.description)
            Glibc.exit(error.exitCode)
        } catch {
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }   // --help, --version
            if error is ExitCode { Glibc.exit(code.rawValue) }   // already reported (orExit)
            var lines = message(for: error).split(whereSeparator: \.isNewline).map { $0.trimmingPrefix(" ") }
            if let hint = FlagSuggestions.suggestion(for: String(lines.first ?? ""), arguments: arguments) {
                lines[0] += ". " + hint
            }
            printError("strata: error: " + lines.filter { !$0.isEmpty }.joined(separator: "; "))
            Glibc.exit(code.rawValue)
        }
    }

    /// `--epochs -1` -> `--epochs=-1`: the parser reads a value starting with '-' as a flag and
    /// would say "Missing value for '--epochs'"; joined, the value reaches the validator, which
    /// says what is wrong with it. Strata has no short flags, so a negative number after a long
    /// option can only be that option's value.
    static func joinNegativeValues(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if a == "--" { out += arguments[i...]; break }
            if a.hasPrefix("--"), !a.contains("="), i + 1 < arguments.count,
               arguments[i + 1].hasPrefix("-"), Double(arguments[i + 1]) != nil {
                out.append(a + "=" + arguments[i + 1])
                i += 2
                continue
            }
            out.append(a)
            i += 1
        }
        return out
    }
}

private extension Substring {
    func trimmingPrefix(_ c: Character) -> Substring {
        var s = self
        while s.first == c { s = s.dropFirst() }
        return s
    }
}
