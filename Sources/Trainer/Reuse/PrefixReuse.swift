import GPUTensor

/// Layer reuse: the first `blocks` blocks of a trained model (conv weights and biases, batch norm
/// parameters and running statistics) are copied into a new, usually deeper, model, and either
/// kept frozen (no backward through them) or fine-tuned with the rest.
public struct ReuseConfig: Codable, Equatable, Sendable {
    public enum Mode: String, Codable, CaseIterable, Sendable {
        case freeze, finetune
    }

    /// A checkpoint file or a run directory (its best, else last, checkpoint).
    public var source: String
    public var blocks: Int
    public var mode: Mode
    /// Cache the frozen prefix's outputs across epochs when its input does not change.
    public var cache: Bool
    /// Host memory the activation cache may use, in bytes.
    public var cacheBudget: Int
    /// A file the complete cache is written to and read from, so that runs freezing the same
    /// prefix on the same data (the trials of a search) compute its outputs once: the first run
    /// writes it after its first epoch, later runs start with every image cached. Its header
    /// carries a fingerprint of everything the outputs depend on; a file that does not match is
    /// ignored (and replaced). Nil: the cache lives and dies with the run.
    public var cacheFile: String?

    public init(source: String, blocks: Int, mode: Mode = .freeze, cache: Bool = true,
                cacheBudget: Int = 4 << 30, cacheFile: String? = nil) {
        self.source = source
        self.blocks = blocks
        self.mode = mode
        self.cache = cache
        self.cacheBudget = cacheBudget
        self.cacheFile = cacheFile
    }
}

public enum PrefixReuse {
    /// Copies the state of the first `config.blocks` blocks of the checkpoint `config.source`
    /// into `model` and freezes them when asked. Returns the tensor names copied.
    /// A tensor missing from the source, or of another shape, is an error naming the first one.
    @discardableResult
    public static func apply(_ config: ReuseConfig, to model: Model) throws -> [String] {
        guard config.blocks >= 1, config.blocks <= model.blocks.count else {
            throw TrainingError("--reuse-layers \(config.blocks): the model has \(model.blocks.count) blocks "
                                + "(\(model.stages.map { "\($0.name): \($0.blocks.count)" }.joined(separator: ", ")))")
        }
        let path = RunDirectory.resolveCheckpoint(config.source)
        let file = try SafeTensors.read(from: path)
        let names = model.blocks[0..<config.blocks].flatMap { $0.stateDict.map(\.name) }
        try ModelState.load(model, from: file, path: path, only: Set(names))
        if config.mode == .freeze { model.freezePrefix(blocks: config.blocks) }
        return names
    }
}

extension RunDirectory {
    /// A run directory stands for its best checkpoint (or its last, when there is no best);
    /// any other path is taken as a checkpoint file.
    public static func resolveCheckpoint(_ path: String) -> String {
        let dir = RunDirectory(path: path)
        if dir.exists(dir.bestCheckpointPath) { return dir.bestCheckpointPath }
        if dir.exists(dir.lastCheckpointPath) { return dir.lastCheckpointPath }
        return path
    }
}
