/// A search space's trial parameters as an `HPOSpace`, so that every study sampler proposes
/// search trials: each hyperparameter of the space is a dimension (a range when the space gives
/// one, else a choice among its grid values).
public struct SearchParameters: Sendable {
    let search: SearchSpace
    public let space: HPOSpace

    public init(space: SearchSpace) throws {
        search = space
        func choices<T>(_ values: [T], _ text: (T) -> String) -> HPODimension { .categorical(values.map(text)) }
        var dims: [(String, HPODimension)] = []
        func add(_ name: String, grid: HPODimension) {
            switch space.ranges[name] {
            case .uniform(let a, let b): dims.append((name, .float(low: a, high: b, log: false)))
            case .logUniform(let a, let b): dims.append((name, .float(low: a, high: b, log: true)))
            case .intUniform(let a, let b): dims.append((name, .int(low: a, high: b, log: false)))
            case nil: dims.append((name, grid))
            }
        }
        add("conv_layers", grid: choices(space.convLayers) { String($0) })
        add("filters", grid: choices(space.filters) { String($0) })
        add("kernel", grid: choices(space.kernel) { String($0) })
        add("hidden", grid: choices(space.hidden) { $0.map(String.init).joined(separator: ",") })
        add("lr", grid: choices(space.lr) { String($0) })
        add("batch_size", grid: choices(space.batchSize) { String($0) })
        self.space = try HPOSpace(dims)
    }

    /// A trial's values as the dimensions see them.
    public func values(of t: TrialConfig) -> [String: HPOValue] {
        var v: [String: HPOValue] = [:]
        for (name, dim) in zip(space.names, space.dimensions) {
            let number: Double
            switch name {
            case "conv_layers": number = Double(t.convLayers)
            case "filters": number = Double(t.filters)
            case "kernel": number = Double(t.kernel)
            case "batch_size": number = Double(t.batchSize)
            case "lr": number = t.lr
            default: number = 0
            }
            switch dim {
            case .float: v[name] = .float(number)
            case .int: v[name] = .int(Int(number))
            case .categorical:
                v[name] = .choice(name == "hidden" ? t.hidden.map(String.init).joined(separator: ",")
                                  : name == "lr" ? String(t.lr) : String(Int(number)))
            }
        }
        return v
    }

    /// The trial of a suggestion (nil if a value cannot be read back).
    public func trial(_ p: [String: HPOValue]) -> TrialConfig? {
        func int(_ name: String) -> Int? {
            guard let v = p[name] else { return nil }
            if case .int(let i) = v { return i }
            return Int(v.description)
        }
        guard let conv = int("conv_layers"), let filters = int("filters"), let kernel = int("kernel"),
              let batch = int("batch_size"), let lrValue = p["lr"], let lr = lrValue.doubleValue ?? Double(lrValue.description),
              let hiddenText = p["hidden"]?.description else { return nil }
        let hidden = hiddenText.split(separator: ",").compactMap { Int($0) }
        return TrialConfig(model: search.model, convLayers: conv, filters: filters, kernel: kernel, hidden: hidden, lr: lr,
                           batchSize: batch, epochs: search.epochs, optimizer: search.optimizer, seed: search.seed)
    }
}
