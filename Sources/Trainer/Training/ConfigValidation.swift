#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// One validator for a run's configuration, whichever way it arrived: command-line flags, a
// `--config` file, a run directory's config.json on `--resume`, or a checkpoint's metadata.
// Every check runs before anything large is allocated, and every message names the flag or the
// field, so the same mistake reads the same way from every door:
//
//     --batch-size must be at least 2 (batch norm needs two images), got 0
//     bs0.json: batchSize must be at least 2 (batch norm needs two images), got 0

/// One thing wrong with a configuration: the JSON field, the flag that sets it, and the problem
/// (written to follow either name).
public struct ConfigIssue: Equatable, Sendable, CustomStringConvertible {
    /// The field's path in config.json (`batchSize`, `optimizer.learningRate`, `model.cnn.kernel`).
    public var field: String
    /// The command-line flag that sets it, when there is one (`--batch-size`).
    public var flag: String?
    /// "must be at least 2 (batch norm needs two images), got 0".
    public var problem: String

    public init(field: String, flag: String?, _ problem: String) {
        self.field = field
        self.flag = flag
        self.problem = problem
    }

    public var description: String { "\(field) \(problem)" }
}

/// Where a configuration came from, which decides how an issue is named.
public enum ConfigSource: Equatable, Sendable {
    /// Command-line flags: issues name the flag (a usage error, exit status 64).
    case flags
    /// A JSON file (`--config`, a run directory's config.json): issues name the file and field.
    case file(String)
    /// The metadata of a checkpoint: issues name the file, the metadata key and the field.
    case checkpoint(String, key: String)
    /// Not known where it came from (a library caller): issues name the field.
    case unnamed
}

/// A configuration that must not run. Its description is one line: the first issue, named
/// after `source`, and how many more there are.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    public var source: ConfigSource
    public var issues: [ConfigIssue]

    public init(source: ConfigSource, issues: [ConfigIssue]) {
        precondition(!issues.isEmpty, "ConfigError without an issue")
        self.source = source
        self.issues = issues
    }

    /// The same issues from another source (a caller that knows the file relabels them).
    public func from(_ source: ConfigSource) -> ConfigError { ConfigError(source: source, issues: issues) }

    public var description: String {
        let first = ConfigError.render(issues[0], source: source)
        return issues.count == 1 ? first : first + " (and \(issues.count - 1) more)"
    }

    /// Every issue, one per line (for a caller that wants them all).
    public var allDescriptions: [String] { issues.map { ConfigError.render($0, source: source) } }

    static func render(_ issue: ConfigIssue, source: ConfigSource) -> String {
        switch source {
        case .flags: return "\(issue.flag ?? issue.field) \(issue.problem)"
        case .file(let path): return "\(path): \(issue.field) \(issue.problem)"
        case .checkpoint(let path, let key): return "\(path): metadata \(key): \(issue.field) \(issue.problem)"
        case .unnamed: return "run configuration: \(issue.field) \(issue.problem)"
        }
    }
}

/// What the data of a run looks like, for the checks that need it (batch vs set size, image
/// shape vs model input).
public struct DataFacts: Equatable, Sendable {
    public var trainCount: Int
    public var validationCount: Int?
    public var testCount: Int?
    public var imageShape: ImageShape
    public var classes: Int

    public init(trainCount: Int, validationCount: Int? = nil, testCount: Int? = nil, imageShape: ImageShape, classes: Int) {
        self.trainCount = trainCount
        self.validationCount = validationCount
        self.testCount = testCount
        self.imageShape = imageShape
        self.classes = classes
    }

    public init(_ data: RunData) {
        self.init(trainCount: data.train.count, validationCount: data.validation?.count, testCount: data.test?.count,
                  imageShape: ImageShape(channels: data.train.channels, height: data.train.height, width: data.train.width),
                  classes: data.train.classes)
    }
}

public enum ConfigValidation {
    // Bounds far above any sensible run, low enough that the arithmetic of parameter counts,
    // FLOPs and buffer sizes cannot overflow before the memory check speaks.
    public static let maxBatch = 1 << 20
    public static let maxEpochs = 1_000_000
    public static let maxChannels = 1 << 14
    public static let maxUnits = 1 << 20
    /// Conv layers, dense layers, VGG groups and convs per group.
    public static let maxLayers = 64
    public static let maxImageSide = 1 << 12
    public static let maxClasses = 1 << 20

    // MARK: Entry points

    /// Throws a `ConfigError` naming the first problem of `config` (and of its combination with
    /// `data` and `normalization`, when given).
    public static func check(_ config: TrainConfig, data: DataFacts? = nil,
                             normalization: (mean: [Float], std: [Float])? = nil,
                             memoryLimit: Double? = ConfigValidation.physicalMemory,
                             source: ConfigSource) throws {
        var found = issues(config, data: data, memoryLimit: memoryLimit)
        if let normalization { found += normalizationIssues(mean: normalization.mean, std: normalization.std,
                                                            channels: config.model.input.channels) }
        if !found.isEmpty { throw ConfigError(source: source, issues: found) }
    }

    public static func check(_ config: GrowConfig, data: DataFacts? = nil,
                             memoryLimit: Double? = ConfigValidation.physicalMemory, source: ConfigSource) throws {
        let found = issues(config, data: data, memoryLimit: memoryLimit)
        if !found.isEmpty { throw ConfigError(source: source, issues: found) }
    }

    /// Normalisation statistics saved with a checkpoint: one finite mean and one finite, positive
    /// std per channel.
    public static func checkNormalization(mean: [Float], std: [Float], channels: Int, source: ConfigSource) throws {
        let found = normalizationIssues(mean: mean, std: std, channels: channels)
        if !found.isEmpty { throw ConfigError(source: source, issues: found) }
    }

    /// The host's physical memory in bytes (nil when unknown); the default memory limit.
    public static var physicalMemory: Double? {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return nil }
        return Double(pages) * Double(size)
    }

    // MARK: TrainConfig

    public static func issues(_ c: TrainConfig, data: DataFacts? = nil, memoryLimit: Double? = nil) -> [ConfigIssue] {
        var out: [ConfigIssue] = []
        func add(_ field: String, _ flag: String?, _ problem: String) { out.append(ConfigIssue(field: field, flag: flag, problem)) }

        if c.epochs < 1 { add("epochs", "--epochs", "must be at least 1, got \(c.epochs)") }
        if c.epochs > maxEpochs { add("epochs", "--epochs", "must be at most \(maxEpochs), got \(c.epochs)") }
        if c.batchSize < 2 { add("batchSize", "--batch-size", "must be at least 2 (batch norm needs two images), got \(c.batchSize)") }
        if c.batchSize > maxBatch { add("batchSize", "--batch-size", "must be at most \(maxBatch), got \(c.batchSize)") }
        if c.evalBatchSize < 1 || c.evalBatchSize > maxBatch {
            add("evalBatchSize", "--batch-size", "must be in 1...\(maxBatch), got \(c.evalBatchSize)")
        }
        out += optimizerIssues(c.optimizer)
        out += scheduleIssues(c.schedule, epochs: c.epochs)
        out += dataIssues(c.data)
        let modelProblems = modelIssues(c.model)
        out += modelProblems
        if let r = c.reuse {
            if r.blocks < 1 { add("reuse.blocks", "--reuse-layers", "must be at least 1, got \(r.blocks)") }
            if r.cacheBudget < 0 { add("reuse.cacheBudget", "--cache-budget", "must be at least 0, got \(r.cacheBudget)") }
        }
        if let data {
            out += dataFactIssues(c, data)
        }
        // Building the model's structure allocates nothing, and the bounds above keep its
        // arithmetic in range; only then estimate the memory the run would take.
        if modelProblems.isEmpty {
            do {
                let model = try Model(spec: c.model)
                if let r = c.reuse, r.blocks > model.blocks.count {
                    let n = model.blocks.count
                    add("reuse.blocks", "--reuse-layers", "is \(r.blocks), more than the model's \(n) block\(n == 1 ? "" : "s")")
                }
                if let memoryLimit, c.batchSize <= maxBatch, c.evalBatchSize <= maxBatch {
                    out += memoryIssues(c, model: model, limit: memoryLimit)
                }
            } catch {
                add("model", "--model", "is not a valid model: \(error)")
            }
        }
        return out
    }

    static func optimizerIssues(_ o: OptimizerConfig) -> [ConfigIssue] {
        var out: [ConfigIssue] = []
        func add(_ field: String, _ flag: String?, _ problem: String) {
            out.append(ConfigIssue(field: "optimizer." + field, flag: flag, problem))
        }
        if !(o.learningRate.isFinite && o.learningRate > 0) {
            add("learningRate", "--lr", "must be a finite number greater than 0, got \(o.learningRate)")
        }
        if !(o.weightDecay.isFinite && o.weightDecay >= 0) {
            add("weightDecay", "--weight-decay", "must be at least 0 (and finite), got \(o.weightDecay)")
        }
        if !(o.momentum >= 0 && o.momentum < 1) { add("momentum", "--momentum", "must be in [0, 1), got \(o.momentum)") }
        if o.kind == .sgd && o.nesterov && o.momentum == 0 {
            add("nesterov", "--nesterov", "needs a momentum above 0 (PyTorch refuses it too)")
        }
        let rms = o.kind == .rmsprop
        if !(o.alpha >= 0 && o.alpha < 1) { add("alpha", rms ? "--rmsprop-alpha" : nil, "must be in [0, 1), got \(o.alpha)") }
        if !(o.epsilon.isFinite && o.epsilon > 0) {
            add("epsilon", rms ? "--rmsprop-eps" : nil, "must be a finite number greater than 0, got \(o.epsilon)")
        }
        if !(o.beta1 >= 0 && o.beta1 < 1) { add("beta1", nil, "must be in [0, 1), got \(o.beta1)") }
        if !(o.beta2 >= 0 && o.beta2 < 1) { add("beta2", nil, "must be in [0, 1), got \(o.beta2)") }
        return out
    }

    static func scheduleIssues(_ s: LearningRateSchedule, epochs: Int) -> [ConfigIssue] {
        var out: [ConfigIssue] = []
        if !(s.warmupEpochs.isFinite && s.warmupEpochs >= 0) {
            out.append(ConfigIssue(field: "schedule.warmupEpochs", flag: "--warmup", "must be at least 0 (and finite), got \(s.warmupEpochs)"))
        }
        switch s.kind {
        case .constant: break
        case .steps(let milestones, let gamma):
            if let m = milestones.first(where: { $0 < 1 }) {
                out.append(ConfigIssue(field: "schedule.steps.milestones", flag: "--schedule", "epochs must be at least 1, got \(m)"))
            }
            if !(gamma.isFinite && gamma > 0) {
                out.append(ConfigIssue(field: "schedule.steps.gamma", flag: "--schedule", "must be a finite number greater than 0, got \(gamma)"))
            }
        case .cosine(let span, let minimum):
            if span < 1 { out.append(ConfigIssue(field: "schedule.cosine.epochs", flag: "--epochs", "must be at least 1, got \(span)")) }
            if !(minimum.isFinite && minimum >= 0) {
                out.append(ConfigIssue(field: "schedule.cosine.minimum", flag: "--schedule", "must be at least 0 (and finite), got \(minimum)"))
            }
        }
        return out
    }

    static func dataIssues(_ d: DataConfig) -> [ConfigIssue] {
        var out: [ConfigIssue] = []
        if !(d.validationFraction >= 0 && d.validationFraction < 1) {
            out.append(ConfigIssue(field: "data.validationFraction", flag: "--validation-fraction", "must be in [0, 1), got \(d.validationFraction)"))
        }
        if let limit = d.trainLimit, limit < 2 {
            out.append(ConfigIssue(field: "data.trainLimit", flag: "--train-limit", "must be at least 2, got \(limit)"))
        }
        if let kind = d.kind, DatasetKind(rawValue: kind) == nil {
            out.append(ConfigIssue(field: "data.kind", flag: "--dataset-kind",
                                   "must be \(DatasetKind.allCases.map(\.rawValue).joined(separator: ", ")), got '\(kind)'"))
        }
        if let labels = d.labels, CIFAR100.Labels(rawValue: labels) == nil {
            out.append(ConfigIssue(field: "data.labels", flag: "--labels", "must be fine or coarse, got '\(labels)'"))
        }
        if let size = d.imageSize, size.count != 2 || !size.allSatisfy({ (1...4096).contains($0) }) {
            out.append(ConfigIssue(field: "data.imageSize", flag: "--image-size", "must be [height, width] with sides in 1...4096, got \(size)"))
        }
        if let filter = d.resizeFilter, ResizeFilter(rawValue: filter) == nil {
            out.append(ConfigIssue(field: "data.resizeFilter", flag: "--resize-filter",
                                   "must be \(ResizeFilter.allCases.map(\.rawValue).joined(separator: " or ")), got '\(filter)'"))
        }
        return out
    }

    static func modelIssues(_ m: ModelSpec) -> [ConfigIssue] {
        var out: [ConfigIssue] = []
        func add(_ field: String, _ flag: String?, _ problem: String) {
            out.append(ConfigIssue(field: "model." + field, flag: flag, problem))
        }
        let side = m.input
        for (name, v) in [("channels", side.channels), ("height", side.height), ("width", side.width)]
        where !(1...maxImageSide).contains(v) {
            add("input.\(name)", nil, "must be in 1...\(maxImageSide), got \(v)")
        }
        if !(2...maxClasses).contains(m.classes) { add("classes", nil, "must be in 2...\(maxClasses), got \(m.classes)") }
        let imageSide = min(side.height, side.width)
        switch m.family {
        case .cnn:
            guard let o = m.cnn else { add("cnn", "--model", "is missing for family cnn"); break }
            if o.filters.isEmpty { add("cnn.filters", "--filters", "must list at least one conv layer") }
            if o.filters.count > maxLayers || o.hidden.count > maxLayers {
                add("cnn", "--filters/--hidden", "may have at most \(maxLayers) conv and \(maxLayers) dense layers, got \(o.filters.count) and \(o.hidden.count)")
            }
            if let f = o.filters.first(where: { !(1...maxChannels).contains($0) }) {
                add("cnn.filters", "--filters", "must each be in 1...\(maxChannels), got \(f)")
            }
            if let h = o.hidden.first(where: { !(1...maxUnits).contains($0) }) {
                add("cnn.hidden", "--hidden", "must each be in 1...\(maxUnits), got \(h)")
            }
            if o.kernel < 1 { add("cnn.kernel", "--kernel", "must be at least 1, got \(o.kernel)") }
            else if o.kernel > imageSide {
                add("cnn.kernel", "--kernel", "\(o.kernel) is larger than the \(side.height)x\(side.width) images")
            }
            if !(o.dropout >= 0 && o.dropout < 1) { add("cnn.dropout", "--dropout", "must be in [0, 1), got \(o.dropout)") }
        case .resnet:
            guard let o = m.resnet else { add("resnet", "--model", "is missing for family resnet"); break }
            if o.depth < 8 || o.depth > 1202 || (o.depth - 2) % 6 != 0 {
                add("resnet.depth", "--model", "must be 6n+2 between 8 and 1202, got \(o.depth)")
            }
            if !(1...maxChannels / 4).contains(o.width) { add("resnet.width", nil, "must be in 1...\(maxChannels / 4), got \(o.width)") }
        case .vgg:
            guard let o = m.vgg else { add("vgg", "--model", "is missing for family vgg"); break }
            if o.groups.isEmpty || o.groups.contains(where: \.isEmpty) { add("vgg.groups", "--model", "must be non-empty lists of widths") }
            if o.groups.count > maxLayers || o.groups.contains(where: { $0.count > maxLayers }) {
                add("vgg.groups", "--model", "may have at most \(maxLayers) groups of at most \(maxLayers) convs")
            }
            if let w = o.groups.joined().first(where: { !(1...maxChannels).contains($0) }) {
                add("vgg.groups", "--model", "widths must each be in 1...\(maxChannels), got \(w)")
            }
            if !(1...maxUnits).contains(o.hidden) { add("vgg.hidden", nil, "must be in 1...\(maxUnits), got \(o.hidden)") }
            if !(o.dropout >= 0 && o.dropout < 1) { add("vgg.dropout", "--dropout", "must be in [0, 1), got \(o.dropout)") }
        }
        if let p = m.partition, let bad = p.first(where: { $0 < 1 }) {
            add("partition", "--partition", "takes positive block counts, got \(bad)")
        }
        if let k = m.activeStages, k < 1 { add("activeStages", nil, "must be at least 1, got \(k)") }
        return out
    }

    /// The configuration against the data it will train on, before any buffer is allocated.
    static func dataFactIssues(_ c: TrainConfig, _ d: DataFacts) -> [ConfigIssue] {
        var out: [ConfigIssue] = []
        if d.trainCount == 0 {
            if let v = d.validationCount, v > 0 {
                out.append(ConfigIssue(field: "data.validationFraction", flag: "--validation-fraction",
                                       "\(c.data.validationFraction) leaves no training images (all \(v) are held out for validation)"))
            } else {
                out.append(ConfigIssue(field: "data.path", flag: "--data", "has no training images"))
            }
            return out
        }
        if d.imageShape != c.model.input {
            out.append(ConfigIssue(field: "model.input", flag: "--data",
                                   "is \(c.model.input) but the dataset's images are \(d.imageShape)"))
        }
        if d.classes > c.model.classes {
            out.append(ConfigIssue(field: "model.classes", flag: "--data",
                                   "is \(c.model.classes) but the dataset has \(d.classes) classes"))
        }
        if c.data.dropLastBatch && c.batchSize > d.trainCount && c.batchSize >= 2 {
            let split = (d.validationCount ?? 0) > 0 ? " (after holding out \(d.validationCount!) for validation)" : ""
            out.append(ConfigIssue(field: "batchSize", flag: "--batch-size",
                                   "\(c.batchSize) is larger than the \(d.trainCount) training images\(split): not one batch per epoch"))
        }
        if c.data.validationFraction > 0, let v = d.validationCount, v == 0 {
            out.append(ConfigIssue(field: "data.validationFraction", flag: "--validation-fraction",
                                   "\(c.data.validationFraction) of \(d.trainCount) images leaves no validation image"))
        }
        if let t = d.testCount, t == 0 {
            out.append(ConfigIssue(field: "data.path", flag: "--data", "has an empty test set"))
        }
        return out
    }

    /// Parameters (value, gradient, optimizer state) and activations of the largest batch,
    /// against `limit` bytes.
    static func memoryIssues(_ c: TrainConfig, model: Model, limit: Double) -> [ConfigIssue] {
        let parameters = Double(model.parameterCount)
        let slots = Double(c.optimizer.stateSlots.count)
        let parameterBytes = parameters * 4 * (2 + slots)
        let perImage = activationEstimate(model) * 4
        let batch = Double(max(c.batchSize, c.evalBatchSize))
        let total = parameterBytes + batch * perImage
        guard total > limit else { return [] }
        let gib = { (x: Double) in formatGiB(x) }
        if parameterBytes > limit {
            return [ConfigIssue(field: "model", flag: "the model (--model, --filters, --hidden)",
                                "has \(Int(parameters)) parameters: about \(gib(parameterBytes)) with gradients and optimizer state, more than the \(gib(limit)) of memory")]
        }
        return [ConfigIssue(field: "batchSize", flag: "--batch-size",
                            "\(Int(batch)) needs about \(gib(total)) (\(gib(perImage)) of activations per image), more than the \(gib(limit)) of memory")]
    }

    /// Floats of activation and gradient buffers one image needs, roughly: every leaf layer keeps
    /// an output and an input gradient.
    static func activationEstimate(_ model: Model) -> Double {
        func leaves(_ l: any Layer) -> Int { l.children.isEmpty ? 1 : l.children.reduce(0) { $0 + leaves($1) } }
        var shape = model.inputShape
        var total = 0.0
        for layer in model.layers {
            let out = layer.outputShape(input: shape)
            let size = Double(max(shape.reduce(1, *), out.reduce(1, *)))
            total += 2 * size * Double(leaves(layer))
            shape = out
        }
        return total
    }

    static func formatGiB(_ bytes: Double) -> String {
        let g = bytes / Double(1 << 30)
        if g >= 100 { return "\(Int(g.rounded())) GiB" }
        return "\(Double(Int(g * 10)) / 10) GiB"
    }

    static func normalizationIssues(mean: [Float], std: [Float], channels: Int) -> [ConfigIssue] {
        var out: [ConfigIssue] = []
        if mean.count != channels {
            out.append(ConfigIssue(field: "normalizationMean", flag: nil, "has \(mean.count) values for \(channels) channels"))
        } else if let i = mean.firstIndex(where: { !$0.isFinite }) {
            out.append(ConfigIssue(field: "normalizationMean[\(i)]", flag: nil, "must be finite, got \(mean[i])"))
        }
        if std.count != channels {
            out.append(ConfigIssue(field: "normalizationStd", flag: nil, "has \(std.count) values for \(channels) channels"))
        } else if let i = std.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
            out.append(ConfigIssue(field: "normalizationStd[\(i)]", flag: nil, "must be a finite number greater than 0, got \(std[i])"))
        }
        return out
    }

    // MARK: GrowConfig

    public static func issues(_ g: GrowConfig, data: DataFacts? = nil, memoryLimit: Double? = nil) -> [ConfigIssue] {
        var out: [ConfigIssue] = []
        func add(_ field: String, _ flag: String?, _ problem: String) { out.append(ConfigIssue(field: field, flag: flag, problem)) }
        if g.window < 2 { add("window", "--window", "must be at least 2 epochs (a line needs two points), got \(g.window)") }
        if !(g.gamma > 0 && g.gamma <= 1) { add("gamma", "--gamma", "must be in (0, 1], got \(g.gamma)") }
        if g.lookaheadEpochs < 0 { add("lookaheadEpochs", "--lookahead-epochs", "must be at least 0, got \(g.lookaheadEpochs)") }
        if g.maxEpochs < 1 || g.maxEpochs > maxEpochs { add("maxEpochs", "--max-epochs", "must be in 1...\(maxEpochs), got \(g.maxEpochs)") }
        if let t = g.targetAccuracy, !(t > 0 && t <= 1) {
            add("targetAccuracy", "--target-accuracy", "must be in (0, 1] (a fraction: 0.9 for 90%), got \(t)")
        }
        if let m = g.maxEpochsPerStage, m < 1 { add("maxEpochsPerStage", nil, "must be at least 1, got \(m)") }
        if !(g.train.data.validationFraction > 0) {
            add("train.data.validationFraction", "--validation-fraction", "must be above 0: grow watches validation accuracy")
        }
        let trainIssues = issues(g.train, data: data, memoryLimit: memoryLimit).map {
            ConfigIssue(field: "train." + $0.field, flag: $0.flag, $0.problem)
        }
        out += trainIssues
        if trainIssues.isEmpty, let model = try? Model(spec: g.train.model), !(1...model.stages.count).contains(g.startStages) {
            add("startStages", "--start-stages", "must be in 1...\(model.stages.count) (the model's sub-networks), got \(g.startStages)")
        }
        return out
    }
}
