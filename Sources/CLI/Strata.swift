import ArgumentParser

@main
struct Strata: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "Train convolutional networks that reuse what was already trained.",
        subcommands: [Train.self, Grow.self, Search.self, SearchTrial.self, Eval.self, Models.self, SelfTest.self, Bench.self, Info.self])
}
