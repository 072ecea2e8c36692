/// The values a search draws trials from: per hyperparameter a grid of values and, for random
/// search, optionally a range; plus the settings every trial shares (epochs, optimizer, seed).
///
/// A space file (JSON):
/// ```
/// {"model": "cnn", "epochs": 10, "optimizer": "adam", "seed": 0,
///  "grid": {"conv_layers": [1,2,3], "filters": [18], "kernel": [3],
///           "hidden": [[500],[250,50]], "lr": [0.001], "batch_size": [40]},
///  "random": {"lr": {"log_uniform": [1e-4, 1e-2]}, "batch_size": {"choice": [10, 20]}}}
/// ```
/// Unknown keys are errors naming the key and the file.
public struct SearchSpace: Codable, Equatable, Sendable {
    /// A range for random search.
    public enum Range: Codable, Equatable, Sendable {
        /// Uniform in [low, high].
        case uniform(Double, Double)
        /// Uniform in log space, [low, high], both positive.
        case logUniform(Double, Double)
        /// A whole number uniform in [low, high].
        case intUniform(Int, Int)
    }

    public var name: String
    public var model: String
    public var convLayers: [Int]
    public var filters: [Int]
    public var kernel: [Int]
    public var hidden: [[Int]]
    public var lr: [Double]
    public var batchSize: [Int]
    /// Ranges that replace the grid of a parameter under random search (`lr`, `filters`, ...).
    public var ranges: [String: Range]
    public var epochs: Int
    public var optimizer: String
    public var seed: UInt64

    public init(name: String, model: String = "cnn", convLayers: [Int], filters: [Int], kernel: [Int] = [3],
                hidden: [[Int]], lr: [Double], batchSize: [Int], ranges: [String: Range] = [:], epochs: Int,
                optimizer: String = "adam", seed: UInt64 = 0) {
        self.name = name
        self.model = model
        self.convLayers = convLayers
        self.filters = filters
        self.kernel = kernel
        self.hidden = hidden
        self.lr = lr
        self.batchSize = batchSize
        self.ranges = ranges
        self.epochs = epochs
        self.optimizer = optimizer
        self.seed = seed
    }

    /// Hidden layers of the seed-000 spaces: the 7 non-empty descending subsets of {500, 250, 50}.
    public static let seed000Hidden: [[Int]] = [[500], [250], [50], [500, 250], [500, 50], [250, 50], [500, 250, 50]]

    /// conv {1,2,3} x lr {1e-2,1e-3,1e-4} x filters {18} x kernel 3 x hidden (7) x batch {10,20,30,40}: 252.
    public static func seed000Small(epochs: Int = 10) -> SearchSpace {
        SearchSpace(name: "seed000-small", convLayers: [1, 2, 3], filters: [18], hidden: seed000Hidden,
                    lr: [1e-2, 1e-3, 1e-4], batchSize: [10, 20, 30, 40], epochs: epochs)
    }

    /// conv {1,2,3} x lr {1e-2,1e-3,1e-4} x filters {18,32,48,64} x kernel 3 x hidden (7) x batch {20,30,40}: 756.
    public static func seed000Large(epochs: Int = 10) -> SearchSpace {
        SearchSpace(name: "seed000-large", convLayers: [1, 2, 3], filters: [18, 32, 48, 64], hidden: seed000Hidden,
                    lr: [1e-2, 1e-3, 1e-4], batchSize: [20, 30, 40], epochs: epochs)
    }

    public static let presetNames = ["seed000-small", "seed000-large"]

    /// A preset by name, or nil.
    public static func preset(_ name: String, epochs: Int? = nil) -> SearchSpace? {
        switch name {
        case "seed000-small": return seed000Small(epochs: epochs ?? 10)
        case "seed000-large": return seed000Large(epochs: epochs ?? 10)
        default: return nil
        }
    }

    /// Every grid point, conv layers outermost (so that shallow trials, the donors, come first),
    /// then filters, kernel, hidden, lr, batch size.
    public var gridPoints: [TrialConfig] {
        var out: [TrialConfig] = []
        for c in convLayers { for f in filters { for k in kernel { for h in hidden { for l in lr { for b in batchSize {
            out.append(TrialConfig(model: model, convLayers: c, filters: f, kernel: k, hidden: h, lr: l, batchSize: b,
                                   epochs: epochs, optimizer: optimizer, seed: seed))
        } } } } } }
        return out
    }

    /// Checks values a trial could not run with; the message names the parameter and `file`.
    public func validate(file: String) throws {
        func fail(_ m: String) -> SearchError { SearchError("\(file): \(m)") }
        let lists: [(String, Int)] = [("conv_layers", convLayers.count), ("filters", filters.count), ("kernel", kernel.count),
                                      ("hidden", hidden.count), ("lr", lr.count), ("batch_size", batchSize.count)]
        for (key, n) in lists where n == 0 && ranges[key] == nil { throw fail("grid '\(key)' has no values") }
        guard model == "cnn" else { throw fail("model '\(model)': the search covers the cnn family only") }
        guard convLayers.allSatisfy({ (1...3).contains($0) }) else { throw fail("conv_layers must be 1 to 3, got \(convLayers)") }
        guard filters.allSatisfy({ $0 > 0 }) else { throw fail("filters must be positive, got \(filters)") }
        guard kernel.allSatisfy({ $0 > 0 && $0 % 2 == 1 }) else { throw fail("kernel must be odd and positive, got \(kernel)") }
        guard hidden.allSatisfy({ $0.allSatisfy { $0 > 0 } }) else { throw fail("hidden units must be positive, got \(hidden)") }
        guard lr.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw fail("lr must be positive, got \(lr)") }
        guard batchSize.allSatisfy({ $0 >= 2 }) else { throw fail("batch_size must be at least 2, got \(batchSize)") }
        guard epochs >= 1 else { throw fail("epochs must be at least 1, got \(epochs)") }
        guard ["adam", "sgd", "rmsprop"].contains(optimizer) else { throw fail("optimizer must be adam, sgd or rmsprop, not '\(optimizer)'") }
        for (key, range) in ranges {
            switch (key, range) {
            case ("lr", .uniform(let a, let b)), ("lr", .logUniform(let a, let b)):
                guard a > 0, b >= a else { throw fail("random 'lr' needs 0 < low <= high") }
            case ("conv_layers", .intUniform(let a, let b)):
                guard a >= 1, b <= 3, b >= a else { throw fail("random 'conv_layers' must lie in 1...3") }
            case ("filters", .intUniform(let a, let b)), ("batch_size", .intUniform(let a, let b)):
                guard a >= (key == "filters" ? 1 : 2), b >= a else { throw fail("random '\(key)' needs low <= high, low >= \(key == "filters" ? 1 : 2)") }
            default:
                throw fail("random '\(key)' cannot take that range (lr: uniform/log_uniform; conv_layers, filters, batch_size: int_uniform)")
            }
        }
    }
}

extension SearchSpace {
    static let topKeys: Set<String> = ["model", "grid", "random", "epochs", "optimizer", "seed"]
    static let gridKeys: Set<String> = ["conv_layers", "filters", "kernel", "hidden", "lr", "batch_size"]

    /// Parses a space file's text. Every error names `file` and, where there is one, the key.
    public static func parse(_ bytes: [UInt8], file: String) throws -> SearchSpace {
        typealias V = HeaderJSON.Value
        func fail(_ m: String) -> SearchError { SearchError("\(file): \(m)") }
        let root: V
        do {
            root = try bytes.withUnsafeBufferPointer { try HeaderJSON.Parser.parse($0) }
        } catch let e as HeaderJSON.ParseError {
            throw fail("not valid JSON at byte \(e.offset): \(e.message)")
        }
        guard case .object(let top) = root else { throw fail("must hold a JSON object, not \(root.typeName)") }
        func number(_ v: V, _ key: String) throws -> Double {
            guard case .number(let t) = v, let d = Double(t) else { throw fail("'\(key)' must hold numbers, found \(v.typeName)") }
            return d
        }
        func int(_ v: V, _ key: String) throws -> Int {
            guard case .number(let t) = v, let i = Int(t) else { throw fail("'\(key)' must hold whole numbers, found \(v.typeName)") }
            return i
        }
        func array(_ v: V, _ key: String) throws -> [V] {
            guard case .array(let a) = v else { throw fail("'\(key)' must be a list of values, not \(v.typeName)") }
            return a
        }
        func string(_ v: V, _ key: String) throws -> String {
            guard case .string(let s) = v else { throw fail("'\(key)' must be a string, not \(v.typeName)") }
            return s
        }
        var space = SearchSpace(name: file, convLayers: [], filters: [], kernel: [3], hidden: [], lr: [], batchSize: [],
                                epochs: 10)
        for (key, value) in top {
            switch key {
            case "model": space.model = try string(value, key)
            case "epochs": space.epochs = try int(value, key)
            case "optimizer": space.optimizer = try string(value, key)
            case "seed":
                let s = try int(value, key)
                guard s >= 0 else { throw fail("'seed' must not be negative") }
                space.seed = UInt64(s)
            case "grid":
                guard case .object(let grid) = value else { throw fail("'grid' must be an object, not \(value.typeName)") }
                for (g, v) in grid {
                    let path = "grid.\(g)"
                    switch g {
                    case "conv_layers": space.convLayers = try array(v, path).map { try int($0, path) }
                    case "filters": space.filters = try array(v, path).map { try int($0, path) }
                    case "kernel": space.kernel = try array(v, path).map { try int($0, path) }
                    case "lr": space.lr = try array(v, path).map { try number($0, path) }
                    case "batch_size": space.batchSize = try array(v, path).map { try int($0, path) }
                    case "hidden": space.hidden = try array(v, path).map { try array($0, path).map { try int($0, path) } }
                    default: throw fail("unknown key 'grid.\(g)' (known: \(gridKeys.sorted().joined(separator: ", ")))")
                    }
                }
            case "random":
                guard case .object(let random) = value else { throw fail("'random' must be an object, not \(value.typeName)") }
                for (r, v) in random {
                    let path = "random.\(r)"
                    guard gridKeys.contains(r) else {
                        throw fail("unknown key '\(path)' (known: \(gridKeys.sorted().joined(separator: ", ")))")
                    }
                    guard case .object(let spec) = v, spec.count == 1, let (kind, bounds) = spec.first else {
                        throw fail("'\(path)' must be one of {\"uniform\": [lo, hi]}, {\"log_uniform\": [lo, hi]}, {\"int_uniform\": [lo, hi]}")
                    }
                    let b = try array(bounds, "\(path).\(kind)")
                    guard b.count == 2 else { throw fail("'\(path).\(kind)' must be [low, high]") }
                    switch kind {
                    case "uniform": space.ranges[r] = .uniform(try number(b[0], path), try number(b[1], path))
                    case "log_uniform": space.ranges[r] = .logUniform(try number(b[0], path), try number(b[1], path))
                    case "int_uniform": space.ranges[r] = .intUniform(try int(b[0], path), try int(b[1], path))
                    default: throw fail("unknown key '\(path).\(kind)' (known: int_uniform, log_uniform, uniform)")
                    }
                }
            default:
                throw fail("unknown key '\(key)' (known: \(topKeys.sorted().joined(separator: ", ")))")
            }
        }
        try space.validate(file: file)
        return space
    }

    /// A preset name or a space file.
    public static func load(_ nameOrFile: String, epochs: Int? = nil) throws -> SearchSpace {
        if var preset = preset(nameOrFile) {
            if let epochs { preset.epochs = epochs }
            return preset
        }
        let bytes: [UInt8]
        do { bytes = try InputFile.read(nameOrFile) } catch let e as InputFileError {
            throw SearchError("--space \(nameOrFile): not a preset (\(presetNames.joined(separator: ", "))) and not a file strata reads: \(e.reason)")
        }
        var space = try parse(bytes, file: nameOrFile)
        if let epochs { space.epochs = epochs }
        return space
    }
}
