/// Tree-structured Parzen Estimator (Bergstra et al. 2011) with Optuna 5's `TPESampler` defaults
/// as the reference: 10 random start-up trials; the best gamma(n) = min(ceil(0.1 n), 25) finished
/// trials form the "below" group, the rest "above"; each group gets a Parzen estimator whose
/// kernels are its observations plus a prior kernel: per numeric hyperparameter a truncated
/// Gaussian at the observed value with the larger distance to its sorted neighbours as bandwidth
/// (the outermost use their inner neighbour), clipped to [range / min(100, 2 + n), range], the
/// prior at the middle of the range with the whole range as bandwidth; per categorical one a
/// distribution with prior_weight / (n + 1) on every choice plus 1 on the observed one. Kernel
/// weights: flat for the newest 25 observations, a linear ramp from 1/n for older ones, 1 for the
/// prior. 24 candidates are drawn from the below estimator; the one maximising log l(x) - log g(x)
/// wins. `multivariate` (Optuna 5's default for one objective) draws and scores all
/// hyperparameters jointly, kernel by kernel; without it each is drawn and scored on its own.
///
/// Differences from Optuna, by choice: integers are continuous on [low - 0.5, high + 0.5] and
/// rounded (Optuna sums the density over each integer's cell); the random stream is Philox (seed,
/// trial number), so the same search proposes the same trials on any machine.
public struct TPESampler: HPOSampler {
    public var seed: UInt64
    public var startupTrials: Int
    public var candidates: Int
    public var priorWeight: Double
    public var multivariate: Bool

    public init(seed: UInt64, startupTrials: Int = 10, candidates: Int = 24, priorWeight: Double = 1, multivariate: Bool = true) {
        self.seed = seed
        self.startupTrials = startupTrials
        self.candidates = candidates
        self.priorWeight = priorWeight
        self.multivariate = multivariate
    }

    /// Optuna's `default_gamma`.
    public static func gamma(_ n: Int) -> Int { min(Int((0.1 * Double(n)).rounded(.up)), 25) }

    /// Optuna's `default_weights`: ones for up to 25 observations, else a ramp for the older ones.
    public static func weights(_ n: Int) -> [Double] {
        guard n >= 25 else { return [Double](repeating: 1, count: n) }
        let ramp = n - 25
        let start = 1.0 / Double(n)
        let rampValues: [Double] = (0..<ramp).map { i in
            ramp == 1 ? start : start + (1 - start) * Double(i) / Double(ramp - 1)
        }
        return rampValues + [Double](repeating: 1, count: 25)
    }

    public func suggest(_ space: HPOSpace, history: [HPOObservation], trialNumber: Int) -> [String: HPOValue] {
        let finished = history.filter { $0.value.isFinite }
        guard finished.count >= max(startupTrials, 1) else {
            return UniformSampler(seed: seed).suggest(space, history: history, trialNumber: trialNumber)
        }
        var rng = HPORandom(seed: seed, stream: UInt64(trialNumber))
        // Best first; ties keep trial order. `history` is in trial order.
        let order = finished.indices.sorted { finished[$0].value < finished[$1].value || (finished[$0].value == finished[$1].value && $0 < $1) }
        let nBelow = Self.gamma(finished.count)
        let below = order.prefix(nBelow).sorted().map { finished[$0] }
        let above = order.dropFirst(nBelow).sorted().map { finished[$0] }
        let l = ParzenEstimator(space, observations: below, priorWeight: priorWeight)
        let g = ParzenEstimator(space, observations: above, priorWeight: priorWeight)
        var chosen = [Double](repeating: 0, count: space.dimensions.count)
        if multivariate {
            var bestScore = -Double.infinity
            for _ in 0..<candidates {
                let x = l.sample(&rng)
                let score = l.logDensity(x) - g.logDensity(x)
                if score > bestScore { (chosen, bestScore) = (x, score) }
            }
        } else {
            for d in space.dimensions.indices {
                var bestScore = -Double.infinity
                for _ in 0..<candidates {
                    let x = l.sample(dimension: d, &rng)
                    let score = l.logDensity(dimension: d, x) - g.logDensity(dimension: d, x)
                    if score > bestScore { (chosen[d], bestScore) = (x, score) }
                }
            }
        }
        var out: [String: HPOValue] = [:]
        for (d, (name, dim)) in zip(space.names, space.dimensions).enumerated() { out[name] = dim.value(fromInternal: chosen[d]) }
        return out
    }
}

/// A Parzen estimator over a whole space: kernels (the observations, then the prior) with shared
/// weights, each a product over the dimensions, in the dimensions' internal coordinates (log
/// space for log ranges; a choice's index for categorical ones).
struct ParzenEstimator {
    enum Kernels {
        /// Truncated normals on [low, high], one per kernel.
        case numeric(mus: [Double], sigmas: [Double], low: Double, high: Double)
        /// A distribution over the choices, one per kernel.
        case categorical(rows: [[Double]])
    }

    let weights: [Double]
    let dimensions: [Kernels]

    init(_ space: HPOSpace, observations: [HPOObservation], priorWeight: Double) {
        let n = observations.count
        let raw = n == 0 ? [1.0] : TPESampler.weights(n) + [priorWeight]
        let total = raw.reduce(0, +)
        weights = raw.map { $0 / total }
        dimensions = zip(space.names, space.dimensions).map { name, dim in
            let values = observations.map { $0.params[name] }
            if case .categorical(let choices) = dim {
                let k = choices.count
                guard n > 0 else { return .categorical(rows: [[Double](repeating: 1 / Double(k), count: k)]) }
                let fill = priorWeight / Double(n + 1)
                var rows = [[Double]](repeating: [Double](repeating: fill, count: k), count: n + 1)
                for (j, v) in values.enumerated() {
                    if case .choice(let c)? = v, let i = choices.firstIndex(of: c) { rows[j][i] += 1 }
                }
                return .categorical(rows: rows.map { row in
                    let s = row.reduce(0, +)
                    return s > 0 ? row.map { $0 / s } : row
                })
            }
            let (lo, hi) = dim.interval!
            // A missing or foreign value sits at the middle (all trials of one space have all values).
            let xs = values.map { v in v.flatMap { dim.internalValue($0) }.map { min(hi, max(lo, $0)) } ?? (lo + hi) / 2 }
            return .numeric(mus: xs + [(lo + hi) / 2], sigmas: Self.bandwidths(xs, low: lo, high: hi) + [max(hi - lo, 1e-12)],
                            low: lo, high: hi)
        }
    }

    /// Neighbour-distance bandwidths with Optuna's magic clip (the prior counted as a kernel).
    static func bandwidths(_ xs: [Double], low lo: Double, high hi: Double) -> [Double] {
        guard !xs.isEmpty else { return [] }
        let order = xs.indices.sorted { xs[$0] < xs[$1] }
        let sorted = order.map { xs[$0] }
        let withEnds = [lo] + sorted + [hi]
        var s: [Double] = []
        for i in 1...sorted.count {
            let left: Double = withEnds[i] - withEnds[i - 1], right: Double = withEnds[i + 1] - withEnds[i]
            s.append(max(left, right))
        }
        if sorted.count >= 2 {   // consider_endpoints=False
            s[0] = sorted[1] - sorted[0]
            s[s.count - 1] = sorted[sorted.count - 1] - sorted[sorted.count - 2]
        }
        let minSigma = (hi - lo) / min(100, 1 + Double(xs.count + 1)), maxSigma = hi - lo
        var out = [Double](repeating: 0, count: xs.count)
        for (k, i) in order.enumerated() { out[i] = min(maxSigma, max(minSigma, s[k])) }
        return out
    }

    func pickKernel(_ rng: inout HPORandom) -> Int {
        var u = rng.unit(), k = 0
        while k < weights.count - 1 && u >= weights[k] { u -= weights[k]; k += 1 }
        return k
    }

    /// A joint draw: one kernel, then every dimension from it.
    func sample(_ rng: inout HPORandom) -> [Double] {
        let k = pickKernel(&rng)
        return dimensions.map { Self.draw($0, kernel: k, &rng) }
    }

    /// A draw of one dimension from its marginal.
    func sample(dimension d: Int, _ rng: inout HPORandom) -> Double {
        Self.draw(dimensions[d], kernel: pickKernel(&rng), &rng)
    }

    static func draw(_ kernels: Kernels, kernel k: Int, _ rng: inout HPORandom) -> Double {
        switch kernels {
        case .categorical(let rows):
            let row = rows[min(k, rows.count - 1)]
            var u = rng.unit(), i = 0
            while i < row.count - 1 && u >= row[i] { u -= row[i]; i += 1 }
            return Double(i)
        case .numeric(let mus, let sigmas, let low, let high):
            for _ in 0..<100 {   // truncated normal by rejection (bandwidths are at most the range)
                let x = mus[k] + sigmas[k] * rng.normal()
                if x >= low && x <= high { return x }
            }
            return low + (high - low) * rng.unit()
        }
    }

    /// log of the joint mixture density at x.
    func logDensity(_ x: [Double]) -> Double {
        logSumExp(weights.indices.map { k in
            mathLog(weights[k]) + dimensions.indices.reduce(0.0) { $0 + Self.logKernel(dimensions[$1], k, x[$1]) }
        })
    }

    /// log of one dimension's marginal density at x.
    func logDensity(dimension d: Int, _ x: Double) -> Double {
        logSumExp(weights.indices.map { k in mathLog(weights[k]) + Self.logKernel(dimensions[d], k, x) })
    }

    static func logKernel(_ kernels: Kernels, _ k: Int, _ x: Double) -> Double {
        switch kernels {
        case .categorical(let rows):
            let row = rows[min(k, rows.count - 1)]
            return mathLog(max(row[min(row.count - 1, max(0, Int(x)))], 1e-300))
        case .numeric(let mus, let sigmas, let low, let high):
            let s = sigmas[k], z = (x - mus[k]) / s
            let mass = normalCDF((high - mus[k]) / s) - normalCDF((low - mus[k]) / s)
            return -0.5 * z * z - mathLog(s * (2 * Double.pi).squareRoot()) - mathLog(max(mass, 1e-300))
        }
    }
}

func logSumExp(_ terms: [Double]) -> Double {
    let top = terms.max() ?? -Double.infinity
    guard top.isFinite else { return top }
    return top + mathLog(terms.reduce(0) { $0 + mathExp($1 - top) })
}

func normalCDF(_ z: Double) -> Double { 0.5 * (1 + mathErf(z / 2.0.squareRoot())) }
