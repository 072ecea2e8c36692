/// TPE (the HPO room's `TPESampler`) proposing the trials of a `strata search`
/// (`--strategy tpe --trials N`): each hyperparameter of the space is a dimension (a range when
/// the space gives one, else a choice among its grid values), and finished trials teach it by
/// their validation loss (failed ones teach nothing).
///
/// The engine asks for every trial at the start (`limit` .max): TPE then gives only its random
/// start-up trials, and later, whenever a worker is free, one trial per free worker from what has
/// finished by then. With one worker a search is therefore a deterministic function of its seed;
/// with several, what TPE learned when it proposed depends on the order in which trials finished.
/// On resume, the journal's trials count as proposed (trial numbers go on from there).
public struct TPETrialSampler: TrialSampler {
    let space: SearchSpace
    let hpo: HPOSpace
    let tpe: TPESampler
    let count: Int
    private var proposed: [TrialConfig] = []
    private var seen = Set<String>()

    public init(space: SearchSpace, count: Int, seed: UInt64) throws {
        self.space = space
        self.count = count
        tpe = TPESampler(seed: seed)
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
        hpo = try HPOSpace(dims)
    }

    public var isExhausted: Bool { proposed.count >= count }

    public mutating func propose(limit: Int, finished: [TrialRecord]) -> [TrialConfig] {
        // Trials of an earlier session (resume) are proposals already made.
        for r in finished where seen.insert(r.id).inserted { proposed.append(r.config) }
        let remaining = count - proposed.count
        guard remaining > 0 else { return [] }
        let n = limit == .max ? min(remaining, tpe.startupTrials) : min(limit, remaining)
        let history = finished.filter { $0.status == .finished }.compactMap { r -> HPOObservation? in
            guard let loss = r.validationLoss, loss.isFinite else { return nil }
            return HPOObservation(params: values(of: r.config), value: loss)
        }
        var out: [TrialConfig] = []
        var attempts = 0
        while out.count < n && attempts < n * 64 {
            let params = tpe.suggest(hpo, history: history, trialNumber: proposed.count + attempts)
            attempts += 1
            guard let t = trial(params), seen.insert(t.id).inserted else { continue }
            out.append(t)
            proposed.append(t)
        }
        return out
    }

    /// A trial's values as the TPE dimensions see them.
    func values(of t: TrialConfig) -> [String: HPOValue] {
        var v: [String: HPOValue] = [:]
        for (name, dim) in zip(hpo.names, hpo.dimensions) {
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

    /// The trial of a TPE suggestion (nil if a value cannot be read back).
    func trial(_ p: [String: HPOValue]) -> TrialConfig? {
        func int(_ name: String) -> Int? {
            guard let v = p[name] else { return nil }
            if case .int(let i) = v { return i }
            return Int(v.description)
        }
        guard let conv = int("conv_layers"), let filters = int("filters"), let kernel = int("kernel"),
              let batch = int("batch_size"), let lrValue = p["lr"], let lr = lrValue.doubleValue ?? Double(lrValue.description),
              let hiddenText = p["hidden"]?.description else { return nil }
        let hidden = hiddenText.split(separator: ",").compactMap { Int($0) }
        return TrialConfig(model: space.model, convLayers: conv, filters: filters, kernel: kernel, hidden: hidden, lr: lr,
                           batchSize: batch, epochs: space.epochs, optimizer: space.optimizer, seed: space.seed)
    }
}
