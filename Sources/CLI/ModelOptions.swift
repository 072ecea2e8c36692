import ArgumentParser
import Trainer

/// Flags that choose and shape a model; shared by train, grow and bench train.
struct ModelOptions: ParsableArguments {
    @Option(help: "resnet20|32|44|56|110, vgg11|13|16|19, or cnn.")
    var model: String = "cnn"

    @Option(help: "cnn: filters of each conv layer (1-3 values), e.g. 32,64.")
    var filters: String = "32,64"

    @Option(help: "cnn: filter size.")
    var kernel: Int = 3

    @Option(help: "cnn: units of each hidden dense layer (1-3 values), e.g. 128.")
    var hidden: String = "128"

    @Option(help: "cnn/vgg: dropout after hidden dense layers.")
    var dropout: Float = 0

    @Option(help: "resnet: shortcut option A (zero-padded identity) or B (1x1 projection).")
    var shortcut: String = "A"

    @Option(help: "vgg: classifier head, paper (two 4096-unit layers) or single (512->classes).")
    var head: String = "paper"

    @Option(help: "Blocks per stage, e.g. 1,3,3,3 (default: the family's own partition).")
    var partition: String?

    @Option(help: "A model spec JSON file (e.g. a pruned proxy from `strata prune --output`); replaces the model flags.")
    var modelSpec: String?

    /// The model's name for run directories and logs: `--model`, or the spec file's name.
    var name: String {
        guard let modelSpec else { return model }
        let file = modelSpec.split(separator: "/").last.map(String.init) ?? modelSpec
        return file.hasSuffix(".json") ? String(file.dropLast(5)) : file
    }

    func spec(input: ImageShape, classes: Int) throws -> ModelSpec {
        if let modelSpec {
            let spec: ModelSpec
            do { spec = try RunDirectory(path: ".").readJSON(ModelSpec.self, from: modelSpec) } catch let e as RunDirectoryError {
                throw InputFileError(path: modelSpec, flag: "--model-spec", reason: e.reason)
            }
            guard spec.input == input && spec.classes == classes else {
                throw ValidationError("--model-spec \(modelSpec) is for \(spec.input) images in \(spec.classes) classes; the data has \(input) in \(classes)")
            }
            do { _ = try Model(spec: spec) } catch let e as ModelSpecError {
                throw ValidationError("--model-spec \(modelSpec): \(e.message)")
            }
            return spec
        }
        var spec: ModelSpec
        do { spec = try ModelZoo.spec(model, input: input, classes: classes) } catch let e as ModelSpecError {
            throw ValidationError("--model \(model): \(e.message)")
        }
        if spec.family == .cnn {
            let f = try ints(filters, flag: "--filters"), h = try ints(hidden, flag: "--hidden", allowEmpty: true)
            guard (1...3).contains(f.count) else { throw ValidationError("--filters takes 1 to 3 values") }
            spec.cnn = CNNOptions(filters: f, kernel: kernel, hidden: h, dropout: dropout)
        }
        if spec.family == .resnet {
            guard let s = ResidualShortcut(rawValue: shortcut.uppercased()) ?? ResidualShortcut(rawValue: shortcut.lowercased()) else {
                throw ValidationError("--shortcut must be A or B")
            }
            spec.resnet?.shortcut = s
        }
        if spec.family == .vgg {
            guard let h = VGGOptions.Head(rawValue: head) else { throw ValidationError("--head must be paper or single") }
            spec.vgg?.head = h
            spec.vgg?.dropout = dropout
        }
        if let partition { spec.partition = try ints(partition, flag: "--partition") }
        return spec
    }
}

func ints(_ text: String, flag: String, allowEmpty: Bool = false) throws -> [Int] {
    if allowEmpty && (text.isEmpty || text == "none") { return [] }
    let parts = text.split(separator: ",", omittingEmptySubsequences: false)
    let values = parts.compactMap { Int($0.trimmingCharacters(in: " ")) }
    guard values.count == parts.count, values.allSatisfy({ $0 > 0 }) else {
        throw ValidationError("\(flag) takes positive whole numbers separated by commas, not '\(text)'")
    }
    return values
}

extension Substring {
    func trimmingCharacters(in set: Character) -> Substring {
        var s = self
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return s
    }
}
