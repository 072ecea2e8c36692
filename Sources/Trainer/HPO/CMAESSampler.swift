/// CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial", 2016) for the numeric
/// hyperparameters: weighted recombination of the best half, cumulative step-size adaptation,
/// rank-one and rank-mu covariance updates with the tutorial's default negative weights for the
/// worse half ("active" CMA). Optuna 5's `CmaEsSampler` (package `cmaes`) is the
/// reference for the choices the tutorial leaves open:
///
/// - The sampler works in the unit cube: each float or int range is mapped to [0, 1] after its
///   log transform (log ranges) and, for ints, after widening by half a step on each side
///   (`HPODimension.interval`), so every integer gets the same share. It starts at the cube's
///   centre with sigma0 = 1/6 and C = I, and the population is 4 + floor(3 ln n).
/// - A draw outside the cube is drawn again, up to 10 n times, then clipped into it. Ints are
///   rounded; the next generation learns from the values the trials actually ran with.
/// - Categorical hyperparameters (and ranges of one value) are not part of the distribution:
///   they are drawn uniformly and independently, as Optuna's fallback to its `RandomSampler`.
///   With no numeric hyperparameter at all this is `UniformSampler`.
///
/// Samplers here are functions of (seed, trial number, history) and keep no state, so the
/// distribution is rebuilt by replaying the history: its observations, in the order given, are
/// cut into generations of `populationSize`; each full generation updates the distribution, and
/// the observations of an unfinished one wait. One worker gives textbook CMA-ES (trial t is
/// drawn from generation floor(t / lambda)'s distribution); with several workers a generation is
/// made of the first lambda trials to finish, which may have been drawn from an older
/// distribution (Optuna wastes those draws instead). A trial whose value is not finite ranks last.
/// The replay costs O(trials^2 / lambda) small updates per search: fine for HPO budgets.
///
/// The random stream is Philox (seed, trial number), so the same search proposes the same trials
/// on any machine. Differences from Optuna by choice: no restarts, no learning-rate adaptation
/// (both off by default there too); pruned trials count with the value they were stopped at.
public struct CMAESSampler: HPOSampler {
    public var seed: UInt64
    /// lambda; nil: 4 + floor(3 ln n) for n numeric hyperparameters.
    public var populationSize: Int?
    /// The initial step size in the unit cube.
    public var sigma0: Double

    public init(seed: UInt64, populationSize: Int? = nil, sigma0: Double = 1.0 / 6) {
        self.seed = seed
        self.populationSize = populationSize
        self.sigma0 = sigma0
    }

    /// CMA-ES draws from Philox (seed ^ key, trial number); the categorical draws are
    /// `UniformSampler`'s (seed, trial number), so the two never share random numbers.
    static let key: UInt64 = 0x434D_4145_5300_0000 // ASCII "CMAES"

    public func suggest(_ space: HPOSpace, history: [HPOObservation], trialNumber: Int) -> [String: HPOValue] {
        // Numeric dimensions with a proper range go to CMA-ES; the rest are drawn uniformly.
        var numeric: [(index: Int, low: Double, high: Double)] = []
        for (i, dim) in space.dimensions.enumerated() {
            if let (lo, hi) = dim.interval, hi > lo { numeric.append((i, lo, hi)) }
        }
        var out = UniformSampler(seed: seed).suggest(space, history: history, trialNumber: trialNumber)
        guard !numeric.isEmpty else { return out }

        let n = numeric.count
        var state = CMAState(dimension: n, populationSize: max(2, populationSize ?? CMAState.defaultPopulation(n)),
                             sigma: max(sigma0, 1e-10))
        // The history as unit-cube points; an observation without one of the numeric values
        // (another space) is skipped.
        var points: [(x: [Double], value: Double)] = []
        for o in history {
            var x: [Double] = []
            for d in numeric {
                guard let v = o.params[space.names[d.index]], let internalValue = space.dimensions[d.index].internalValue(v) else { break }
                x.append((internalValue - d.low) / (d.high - d.low))
            }
            if x.count == n { points.append((x, o.value.isFinite ? o.value : .infinity)) }
        }
        let lambda = state.lambda
        for g in 0..<(points.count / lambda) {
            state.tell(Array(points[g * lambda..<(g + 1) * lambda]))
        }

        var rng = HPORandom(seed: seed ^ Self.key, stream: UInt64(trialNumber))
        let x = state.ask(&rng)
        for (k, d) in numeric.enumerated() {
            out[space.names[d.index]] = space.dimensions[d.index].value(fromInternal: d.low + x[k] * (d.high - d.low))
        }
        return out
    }
}

/// The distribution of CMA-ES in the unit cube: mean, step size, covariance (with its
/// eigendecomposition C = B diag(D^2) B^T) and the two evolution paths.
struct CMAState {
    let n: Int
    let lambda: Int
    let mu: Int
    let weights: [Double]
    let muEff: Double
    let cSigma: Double, dSigma: Double, cc: Double, c1: Double, cMu: Double
    /// E||N(0, I)||.
    let chiN: Double

    var mean: [Double]
    var sigma: Double
    /// Row-major n x n.
    var C: [Double]
    /// Eigenvectors of C as columns (row-major n x n) and the square roots of its eigenvalues.
    var B: [Double]
    var D: [Double]
    var pSigma: [Double]
    var pC: [Double]
    var generation = 0

    static func defaultPopulation(_ n: Int) -> Int { 4 + Int((3 * mathLog(Double(n))).rounded(.down)) }

    init(dimension n: Int, populationSize: Int, sigma: Double) {
        precondition(n >= 1 && populationSize >= 2, "CMA-ES needs a dimension and a population of at least 2")
        self.n = n
        lambda = populationSize
        mu = populationSize / 2
        // Weights (the tutorial's default, "active" CMA): w'_i = ln((lambda + 1) / 2) - ln i for all
        // lambda ranks; the best mu (positive) sum to 1 and make the mean, the rest (negative)
        // only shrink the covariance along bad directions, scaled so that C stays positive definite.
        let raw = (1...populationSize).map { mathLog(Double(populationSize + 1) / 2) - mathLog(Double($0)) }
        let positive = raw.prefix(populationSize / 2), negative = raw.dropFirst(populationSize / 2)
        let positiveSum = positive.reduce(0, +)
        muEff = positiveSum * positiveSum / positive.reduce(0) { $0 + $1 * $1 }
        let nd = Double(n)
        cSigma = (muEff + 2) / (nd + muEff + 5)
        dSigma = 1 + 2 * max(0, ((muEff - 1) / (nd + 1)).squareRoot() - 1) + cSigma
        cc = (4 + muEff / nd) / (nd + 4 + 2 * muEff / nd)
        let c1 = 2 / ((nd + 1.3) * (nd + 1.3) + muEff)
        let cMu = min(1 - c1, 2 * (muEff - 2 + 1 / muEff) / ((nd + 2) * (nd + 2) + muEff))
        self.c1 = c1
        self.cMu = cMu
        let negativeSum = negative.reduce(0) { $0 + abs($1) }
        let muEffMinus = negative.isEmpty ? 0 : negativeSum * negativeSum / negative.reduce(0) { $0 + $1 * $1 }
        let negativeScale = min(1 + c1 / cMu, 1 + 2 * muEffMinus / (muEff + 2), (1 - c1 - cMu) / (nd * cMu))
        weights = positive.map { $0 / positiveSum } + negative.map { negativeScale * $0 / max(negativeSum, 1e-300) }
        chiN = nd.squareRoot() * (1 - 1 / (4 * nd) + 1 / (21 * nd * nd))
        mean = [Double](repeating: 0.5, count: n)
        self.sigma = sigma
        C = Self.identity(n)
        B = Self.identity(n)
        D = [Double](repeating: 1, count: n)
        pSigma = [Double](repeating: 0, count: n)
        pC = [Double](repeating: 0, count: n)
    }

    static func identity(_ n: Int) -> [Double] {
        var m = [Double](repeating: 0, count: n * n)
        for i in 0..<n { m[i * n + i] = 1 }
        return m
    }

    /// One draw m + sigma B D z inside the cube: resampled up to 10 n times, then clipped.
    func ask(_ rng: inout HPORandom) -> [Double] {
        var x = [Double](repeating: 0, count: n)
        for _ in 0..<(10 * n) {
            let z = (0..<n).map { _ in rng.normal() }
            for i in 0..<n {
                var y = 0.0
                for k in 0..<n { y += B[i * n + k] * D[k] * z[k] }
                x[i] = mean[i] + sigma * y
            }
            if x.allSatisfy({ $0 >= 0 && $0 <= 1 }) { return x }
        }
        return x.map { min(1, max(0, $0)) }
    }

    /// One generation's update from its lambda evaluated points (minimised).
    mutating func tell(_ generation: [(x: [Double], value: Double)]) {
        precondition(generation.count == lambda)
        self.generation += 1
        // Best first; ties keep the given order.
        let order = generation.indices.sorted { generation[$0].value < generation[$1].value || (generation[$0].value == generation[$1].value && $0 < $1) }
        let ys: [[Double]] = order.map { i in (0..<n).map { (generation[i].x[$0] - mean[$0]) / sigma } }
        var yw = [Double](repeating: 0, count: n)
        for (w, y) in zip(weights.prefix(mu), ys) { for i in 0..<n { yw[i] += w * y[i] } }
        for i in 0..<n { mean[i] += sigma * yw[i] }

        // Step size: the path of C^{-1/2} yw (with the C these points were drawn from).
        let invSqrtYw = multiplyInverseSqrt(yw)
        let sSigma = (cSigma * (2 - cSigma) * muEff).squareRoot()
        for i in 0..<n { pSigma[i] = (1 - cSigma) * pSigma[i] + sSigma * invSqrtYw[i] }
        let pSigmaNorm = pSigma.reduce(0) { $0 + $1 * $1 }.squareRoot()
        // The exponent capped at 1 (as pycma does): one generation at most multiplies sigma by e.
        sigma *= mathExp(min(1, (cSigma / dSigma) * (pSigmaNorm / chiN - 1)))
        sigma = min(sigma, 1e32)

        // Covariance: rank-one (path pC, stalled while ||pSigma|| is large) and rank-mu.
        let hSigma: Double = pSigmaNorm / (1 - Self.power(1 - cSigma, 2 * self.generation)).squareRoot()
            < (1.4 + 2 / (Double(n) + 1)) * chiN ? 1 : 0
        let sC = (cc * (2 - cc) * muEff).squareRoot()
        for i in 0..<n { pC[i] = (1 - cc) * pC[i] + hSigma * sC * yw[i] }
        let deltaH = (1 - hSigma) * cc * (2 - cc)
        let keep = 1 + c1 * deltaH - c1 - cMu * weights.reduce(0, +)
        // A negative weight is rescaled by n / ||C^{-1/2} y||^2, so that long steps cannot
        // remove more than their share of variance.
        let rankWeights: [Double] = zip(weights, ys).map { w, y in
            guard w < 0 else { return w }
            let v = multiplyInverseSqrt(y)
            return w * Double(n) / max(v.reduce(0) { $0 + $1 * $1 }, 1e-300)
        }
        for i in 0..<n {
            for j in 0...i {
                var rankMu = 0.0
                for (w, y) in zip(rankWeights, ys) { rankMu += w * y[i] * y[j] }
                let v = keep * C[i * n + j] + c1 * pC[i] * pC[j] + cMu * rankMu
                C[i * n + j] = v
                C[j * n + i] = v
            }
        }
        decompose()
    }

    /// base^k for 0 < base < 1 (the h_sigma test's (1 - c_sigma)^(2g)).
    static func power(_ base: Double, _ k: Int) -> Double { mathExp(Double(k) * mathLog(max(base, 1e-300))) }

    /// C^{-1/2} v = B D^{-1} B^T v.
    func multiplyInverseSqrt(_ v: [Double]) -> [Double] {
        var t = [Double](repeating: 0, count: n)
        for k in 0..<n {
            var s = 0.0
            for i in 0..<n { s += B[i * n + k] * v[i] }
            t[k] = s / D[k]
        }
        var out = [Double](repeating: 0, count: n)
        for i in 0..<n { for k in 0..<n { out[i] += B[i * n + k] * t[k] } }
        return out
    }

    /// B and D from C; eigenvalues are floored so that D stays invertible.
    mutating func decompose() {
        let (values, vectors) = symmetricEigen(C, n: n)
        B = vectors
        D = values.map { max($0, 1e-20).squareRoot() }
    }
}

/// Eigenvalues and eigenvectors (columns of a row-major n x n matrix) of a symmetric matrix by
/// cyclic Jacobi rotations: exact to rounding for the small matrices of an HPO space.
func symmetricEigen(_ matrix: [Double], n: Int) -> (values: [Double], vectors: [Double]) {
    var a = matrix
    var v = CMAState.identity(n)
    let scale = max(a.reduce(0) { $0 + $1 * $1 }, 1e-300)
    for _ in 0..<100 {
        var off = 0.0
        for p in 0..<n { for q in (p + 1)..<max(p + 1, n) { off += a[p * n + q] * a[p * n + q] } }
        if off <= 1e-30 * scale { break }
        for p in 0..<(n - 1) {
            for q in (p + 1)..<n {
                let apq = a[p * n + q]
                if apq == 0 { continue }
                // The rotation angle phi zeroes a[p][q]: cot(2 phi) = theta, t = tan(phi), the smaller root.
                let theta = (a[q * n + q] - a[p * n + p]) / (2 * apq)
                let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for k in 0..<n {
                    let akp = a[k * n + p], akq = a[k * n + q]
                    a[k * n + p] = c * akp - s * akq
                    a[k * n + q] = s * akp + c * akq
                }
                for k in 0..<n {
                    let apk = a[p * n + k], aqk = a[q * n + k]
                    a[p * n + k] = c * apk - s * aqk
                    a[q * n + k] = s * apk + c * aqk
                }
                for k in 0..<n {
                    let vkp = v[k * n + p], vkq = v[k * n + q]
                    v[k * n + p] = c * vkp - s * vkq
                    v[k * n + q] = s * vkp + c * vkq
                }
            }
        }
    }
    return ((0..<n).map { a[$0 * n + $0] }, v)
}
