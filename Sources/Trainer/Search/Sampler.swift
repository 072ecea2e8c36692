import GPUTensor

/// Proposes trials. The engine asks whenever it could start more work, passing every result
/// so far, so an adaptive sampler (TPE, Hyperband/ASHA) plugs in here without touching the
/// engine: grid and random ignore the results and propose everything at the first call.
public protocol TrialSampler {
    /// Up to `limit` new trials, given the finished ones (in finishing order). Empty: nothing to
    /// propose now; `isExhausted` says whether anything will ever come.
    mutating func propose(limit: Int, finished: [TrialRecord]) -> [TrialConfig]
    var isExhausted: Bool { get }
}

/// Every grid point once, in `SearchSpace.gridPoints` order.
public struct GridSampler: TrialSampler {
    private var points: [TrialConfig]

    public init(space: SearchSpace) throws {
        guard space.ranges.isEmpty else {
            throw SearchError("\(space.name): random ranges (\(space.ranges.keys.sorted().joined(separator: ", "))) need --strategy random")
        }
        points = space.gridPoints
    }

    public mutating func propose(limit: Int, finished: [TrialRecord]) -> [TrialConfig] {
        let n = min(limit, points.count)
        defer { points.removeFirst(n) }
        return Array(points.prefix(n))
    }

    public var isExhausted: Bool { points.isEmpty }
}

/// `count` distinct trials drawn with Philox from `seed`: each parameter from its range when it
/// has one, otherwise uniformly from its grid values. Sorted by conv layers (donors first).
public struct RandomSampler: TrialSampler {
    private var points: [TrialConfig]

    public init(space: SearchSpace, count: Int, seed: UInt64) {
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
                if case .intUniform(let a, let b) = space.ranges[key] { return a + min(b - a, Int(uniform() * Double(b - a + 1))) }
                return pick(grid)
            }
            let lr: Double
            switch space.ranges["lr"] {
            case .uniform(let a, let b): lr = a + (b - a) * uniform()
            case .logUniform(let a, let b): lr = (a.logValue + (b.logValue - a.logValue) * uniform()).expValue
            default: lr = pick(space.lr)
            }
            let t = TrialConfig(model: space.model, convLayers: int("conv_layers", space.convLayers),
                                filters: int("filters", space.filters), kernel: pick(space.kernel), hidden: pick(space.hidden),
                                lr: lr, batchSize: int("batch_size", space.batchSize), epochs: space.epochs,
                                optimizer: space.optimizer, seed: space.seed)
            counter += 1
            if seen.insert(t.id).inserted { drawn.append(t) }
        }
        points = drawn.enumerated().sorted { ($0.element.convLayers, $0.offset) < ($1.element.convLayers, $1.offset) }.map(\.element)
    }

    public mutating func propose(limit: Int, finished: [TrialRecord]) -> [TrialConfig] {
        let n = min(limit, points.count)
        defer { points.removeFirst(n) }
        return Array(points.prefix(n))
    }

    public var isExhausted: Bool { points.isEmpty }
}

/// The strategy a search uses to propose trials.
public enum SearchStrategy: Codable, Equatable, Sendable {
    case grid
    case random(trials: Int, seed: UInt64)
    /// TPE over the space's grids and ranges, learning from finished trials' validation loss.
    case tpe(trials: Int, seed: UInt64)

    public func makeSampler(space: SearchSpace) throws -> any TrialSampler {
        switch self {
        case .grid: return try GridSampler(space: space)
        case .random(let n, let seed): return RandomSampler(space: space, count: n, seed: seed)
        case .tpe(let n, let seed): return try TPETrialSampler(space: space, count: n, seed: seed)
        }
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
