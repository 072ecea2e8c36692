import GPUTensor

/// The strategy a search uses to propose trials: one of the study's samplers (`HPOSampler`, the
/// one sampler protocol of search and hpo) over the space's parameters (`SearchParameters`).
public enum SearchStrategy: Codable, Equatable, Sendable {
    /// Every grid point once, in `SearchSpace.gridPoints` order.
    case grid
    /// `trials` distinct points drawn with Philox from `seed` (`SearchSpace.randomPoints`).
    case random(trials: Int, seed: UInt64)
    /// TPE over the space's grids and ranges, learning from finished trials' validation loss.
    case tpe(trials: Int, seed: UInt64)
    /// CMA-ES on the space's ranges (continuous dimensions; grid values drawn uniformly),
    /// learning from finished trials' validation loss.
    case cmaes(trials: Int, seed: UInt64)

    public func makeSampler(space: SearchSpace) throws -> SearchSampling {
        let parameters = try SearchParameters(space: space)
        switch self {
        case .grid:
            guard space.ranges.isEmpty else {
                throw SearchError("\(space.name): random ranges (\(space.ranges.keys.sorted().joined(separator: ", "))) need --strategy random")
            }
            return SearchSampling(parameters: parameters, list: space.gridPoints)
        case .random(let n, let seed):
            return SearchSampling(parameters: parameters, list: space.randomPoints(count: n, seed: seed))
        case .tpe(let n, let seed):
            let tpe = TPESampler(seed: seed)
            return SearchSampling(parameters: parameters, sampler: tpe, count: n, startup: tpe.startupTrials)
        case .cmaes(let n, let seed):
            return SearchSampling(parameters: parameters, sampler: CMAESSampler(seed: seed), count: n, startup: 1)
        }
    }
}

/// One sampler proposing a search's trials: points of the space's parameters turned into trials.
///
/// A list (grid, random) is proposed in its order, whatever has finished. A learning sampler
/// (TPE, CMA-ES) gets every trial at the start (`limit` .max) only its `startup` trials, and
/// later, whenever a worker is free, one trial per free worker from what has finished by then
/// (by validation loss; failed trials teach nothing). With one worker a search is therefore a
/// deterministic function of its seed; with several, what the sampler learned when it proposed
/// depends on the order in which trials finished. On resume, the journal's trials count as
/// proposed (trial numbers go on from there).
public struct SearchSampling {
    public let parameters: SearchParameters
    public let sampler: any HPOSampler
    /// Trials to propose in all.
    public let count: Int
    let startup: Int
    /// A list sampler: its points in order, whatever has finished.
    private var isList = false
    private var proposed: [TrialConfig] = []
    private var seen = Set<String>()

    public init(parameters: SearchParameters, sampler: any HPOSampler, count: Int, startup: Int) {
        self.parameters = parameters
        self.sampler = sampler
        self.count = count
        self.startup = startup
    }

    /// The trials of `list` (grid points, a random draw), behind the one protocol as a `ListSampler`.
    init(parameters: SearchParameters, list: [TrialConfig]) {
        self.init(parameters: parameters, sampler: ListSampler(points: list.map(parameters.values)), count: list.count, startup: list.count)
        isList = true
    }

    public var isExhausted: Bool { proposed.count >= count }

    /// Up to `limit` new trials, given the finished ones (in finishing order). Empty: nothing to
    /// propose now; `isExhausted` says whether anything will ever come.
    public mutating func propose(limit: Int, finished: [StudyEvent]) -> [TrialConfig] {
        if isList {
            // Each point back to its trial: the parameters' round trip is exact (`SearchParameters`).
            let n = min(limit, count - proposed.count)
            let out = (0..<n).compactMap { parameters.trial(sampler.suggest(parameters.space, history: [], trialNumber: proposed.count + $0)) }
            proposed += out
            return out
        }
        // Trials of an earlier session (resume) are proposals already made.
        for r in finished where seen.insert(r.id).inserted { if let c = r.config { proposed.append(c) } }
        let remaining = count - proposed.count
        guard remaining > 0 else { return [] }
        let n = limit == .max ? min(remaining, startup) : min(limit, remaining)
        let history = finished.filter { $0.status == .finished }.compactMap { r -> HPOObservation? in
            guard let loss = r.validationLoss, loss.isFinite, let config = r.config else { return nil }
            return HPOObservation(params: parameters.values(of: config), value: loss)
        }
        var out: [TrialConfig] = []
        var attempts = 0
        while out.count < n && attempts < n * 64 {
            let params = sampler.suggest(parameters.space, history: history, trialNumber: proposed.count + attempts)
            attempts += 1
            guard let t = parameters.trial(params), seen.insert(t.id).inserted else { continue }
            out.append(t)
            proposed.append(t)
        }
        return out
    }
}

extension SearchSpace {
    /// `count` distinct trials drawn with Philox from `seed`: each parameter from its range when it
    /// has one, otherwise uniformly from its grid values. Sorted by conv layers (donors first).
    public func randomPoints(count: Int, seed: UInt64) -> [TrialConfig] {
        var drawn: [TrialConfig] = []
        var seen = Set<String>()
        var counter: UInt64 = 0
        // Bounded attempts: a small grid may hold fewer distinct points than asked for.
        while drawn.count < count && counter < UInt64(count) * 64 + 64 {
            var index = 0
            func uniform() -> Double {
                defer { index += 1 }
                return (Double(Philox.bits(seed: seed, counter: counter, index: index)) + 0.5) / 4_294_967_296.0
            }
            func pick<T>(_ values: [T]) -> T { values[min(values.count - 1, Int(uniform() * Double(values.count)))] }
            func int(_ key: String, _ grid: [Int]) -> Int {
                if case .intUniform(let a, let b) = ranges[key] { return a + min(b - a, Int(uniform() * Double(b - a + 1))) }
                return pick(grid)
            }
            let lr: Double
            switch ranges["lr"] {
            case .uniform(let a, let b): lr = a + (b - a) * uniform()
            case .logUniform(let a, let b): lr = (a.logValue + (b.logValue - a.logValue) * uniform()).expValue
            default: lr = pick(self.lr)
            }
            let t = TrialConfig(model: model, convLayers: int("conv_layers", convLayers),
                                filters: int("filters", filters), kernel: pick(kernel), hidden: pick(hidden),
                                lr: lr, batchSize: int("batch_size", batchSize), epochs: epochs,
                                optimizer: optimizer, seed: self.seed)
            counter += 1
            if seen.insert(t.id).inserted { drawn.append(t) }
        }
        return drawn.enumerated().sorted { ($0.element.convLayers, $0.offset) < ($1.element.convLayers, $1.offset) }.map(\.element)
    }
}

/// Points given in advance (a grid, a random draw), the `trialNumber`-th for each trial.
public struct ListSampler: HPOSampler {
    public let points: [[String: HPOValue]]
    public init(points: [[String: HPOValue]]) { self.points = points }

    public func suggest(_ space: HPOSpace, history: [HPOObservation], trialNumber: Int) -> [String: HPOValue] {
        points.isEmpty ? [:] : points[min(trialNumber, points.count - 1)]
    }
}

// Natural log and exp without Foundation's math overlay.
#if canImport(Glibc)
import Glibc
#endif
extension Double {
    var logValue: Double { log(self) }
    var expValue: Double { exp(self) }
}
