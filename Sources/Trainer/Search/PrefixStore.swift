/// Frozen prefixes stored by content: `prefixes/<key>.safetensors` holds the first k conv layers
/// of a donor's best checkpoint, under a key made of what determines those weights and what they
/// expect (the prefix's model spec, the data and split, the normalisation, and the donor's
/// recipe). Every trial that freezes the same prefix reads the same file, and the file outlives
/// the donor's run directory.
public struct PrefixStore {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    struct Key: Codable {
        var model: String
        var filters: [Int]
        var kernel: Int
        var padding: String
        var data: DataConfig
        var splitSeed: UInt64
        /// Per-channel statistics of the training split: fixed by `data` and `splitSeed`.
        var normalization: String
        var donor: TrialConfig
    }

    public static func key(donor: TrialConfig, layers: Int, data: DataConfig) -> String {
        let k = Key(model: donor.model, filters: Array(repeating: donor.filters, count: layers), kernel: donor.kernel,
                    padding: "same", data: data, splitSeed: donor.seed, normalization: "train-split channel mean/std",
                    donor: donor)
        return fnv1a64Hex(SearchJSON.canonical(k))
    }

    public func path(for key: String) -> String { directory + "/\(key).safetensors" }

    /// Stores the first `layers` conv layers of `checkpoint` under `key` (once) and returns the path.
    public func store(key: String, layers: Int, from checkpoint: String) throws -> String {
        let target = path(for: key)
        if FileSystem.kind(of: target) == .file { return target }
        let file = try SafeTensors.read(from: checkpoint)
        // cnn names: conv i is `features.{3i}` (ModelSpec.CNNOptions).
        let names = Set((0..<layers).flatMap { ["features.\(3 * $0).weight", "features.\(3 * $0).bias"] })
        var prefix = SafeTensors(tensors: file.tensors.filter { names.contains($0.name) },
                                 metadata: ["strata-prefix": SearchJSON.canonical(["key": key, "source": checkpoint])])
        guard prefix.tensors.count == names.count else {
            throw SearchError("\(checkpoint) lacks some of \(names.sorted().joined(separator: ", "))")
        }
        prefix.tensors.sort { $0.name < $1.name }
        try prefix.write(to: target)
        return target
    }
}
