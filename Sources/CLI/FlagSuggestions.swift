import ArgumentParser

/// "Did you mean" for flags the parser cannot guess: flags Strata renamed, and the names users
/// bring from PyTorch scripts, Optuna and Ray Tune. The parser already suggests near spellings
/// (`--epoch` -> `--epochs`); this adds the ones that are far in spelling but near in meaning.
enum FlagSuggestions {
    /// Per flag, the Strata flags it may mean, most likely first; only those the command has are
    /// suggested, so one table serves every command.
    static let renamed: [String: [String]] = [
        "--epochs": ["--max-epochs", "--steps"],
        "--max-epochs": ["--epochs"],
        "--learning-rate": ["--lr"],
        "--n-trials": ["--trials"], "--num-trials": ["--trials"], "--num-samples": ["--trials"],
        "--max-trials": ["--trials"],
        "--num-workers": ["--workers"], "--n-jobs": ["--workers"], "--jobs": ["--workers"],
        "--num-threads": ["--threads"], "--cpus": ["--threads"],
        "--out": ["--output"], "--output-dir": ["--output"], "--out-dir": ["--output"], "--logdir": ["--output"],
        "--dataset": ["--data"], "--data-dir": ["--data"], "--data-path": ["--data"],
        "--gpu": ["--device cuda"], "--cuda": ["--device cuda"], "--cpu": ["--device cpu"],
        "--resume-from": ["--resume"], "--checkpoint-dir": ["--resume"],
        "--config-file": ["--config"],
        "--search-space": ["--space"], "--param-space": ["--space"],
        "--scheduler": ["--pruner", "--schedule"], "--lr-schedule": ["--schedule"],
        "--wd": ["--weight-decay"], "--bs": ["--batch-size"], "--batch": ["--batch-size"],
        "--model-path": ["--checkpoint"], "--ckpt": ["--checkpoint"],
        "--dry_run": ["--dry-run"],
    ]

    /// The subcommand an argument list names (`bench train` -> BenchTrain), deepest first match.
    static func command(for arguments: [String]) -> ParsableCommand.Type {
        var command: ParsableCommand.Type = Strata.self
        for argument in arguments where !argument.hasPrefix("-") {
            guard let next = command.configuration.subcommands.first(where: { name(of: $0) == argument }) else { break }
            command = next
        }
        return command
    }

    static func name(of command: ParsableCommand.Type) -> String {
        command.configuration.commandName ?? command._commandName
    }

    /// The long flags a command's help lists.
    static func flags(of command: ParsableCommand.Type) -> Set<String> {
        let help = Strata.helpMessage(for: command, columns: 400)
        var flags = Set<String>()
        var i = help.startIndex
        while let r = help.range(of: "--", range: i..<help.endIndex) {
            var j = r.upperBound
            while j < help.endIndex, help[j].isLetter || help[j].isNumber || help[j] == "-" { j = help.index(after: j) }
            let flag = String(help[r.lowerBound..<j])
            if flag.count > 2 { flags.insert(flag) }
            i = j
        }
        return flags
    }

    /// A suggestion for a parser message `Unknown option '--x'` that has none, else nil.
    static func suggestion(for message: String, arguments: [String]) -> String? {
        guard message.hasPrefix("Unknown option '--"), !message.contains("Did you mean"),
              let end = message.dropFirst("Unknown option '".count).firstIndex(of: "'") else { return nil }
        let flag = String(message[message.index(message.startIndex, offsetBy: "Unknown option '".count)..<end])
        let known = flags(of: command(for: arguments))
        let options = (renamed[flag] ?? []) + (renamed[flag.replacingUnderscores()] ?? [])
            + [flag.replacingUnderscores()]
        guard let hit = options.first(where: { known.contains(String($0.split(separator: " ")[0])) && $0 != flag }) else {
            return nil
        }
        return "Did you mean '\(hit)'?"
    }
}

private extension String {
    /// `--batch_size` -> `--batch-size`: Python scripts spell flags with underscores.
    func replacingUnderscores() -> String { String(map { $0 == "_" ? "-" : $0 }) }
}
