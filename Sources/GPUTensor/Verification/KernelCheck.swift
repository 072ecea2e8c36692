/// Kernel verification shared by the test suite and `strata selftest`: every kernel's forward
/// against a naive float64 reference, every backward against float64 central finite differences
/// of that reference, optimizer kernels against closed-form steps. The same checks run on any
/// backend, which is how a GPU machine without XCTest is checked.

/// `|actual - expected| <= atol + rtol * |expected|`, element by element.
public struct Tolerance: Sendable, CustomStringConvertible {
    public var atol: Double
    public var rtol: Double
    public init(atol: Double, rtol: Double) { self.atol = atol; self.rtol = rtol }
    public var description: String { "atol \(atol) rtol \(rtol)" }
}

/// The outcome of one comparison.
public struct CheckResult: Sendable {
    /// What was compared, with the shape (`conv2d backward-data 3->4 3x3/2 pad 1 on 2x7x7`).
    public let name: String
    /// The worst element's error divided by its allowance; 1 or less passes.
    public let worstRatio: Double
    public let worstIndex: Int
    public let actual: Double
    public let expected: Double
    public let tolerance: Tolerance

    public var passed: Bool { worstRatio <= 1 && worstRatio.isFinite }

    public var summary: String {
        let status = passed ? "ok  " : "FAIL"
        let detail = passed ? "" :
            " (element \(worstIndex): got \(actual), expected \(expected))"
        return "\(status) \(name) [\(tolerance), worst \(formatRatio(worstRatio)) of allowance]\(detail)"
    }
}

private func formatRatio(_ r: Double) -> String {
    guard r.isFinite else { return "\(r)" }
    let pct = (r * 1000).rounded() / 10
    return "\(pct)%"
}

/// A named group of comparisons for one kernel family.
public struct KernelCheck {
    public let name: String
    public let run: (Backend) throws -> [CheckResult]
    public init(_ name: String, run: @escaping (Backend) throws -> [CheckResult]) {
        self.name = name
        self.run = run
    }
}

public enum KernelChecks {
    /// Every check, in the order `strata selftest` prints them: each kernel family's list
    /// (`<family>Kernels`, in Kernels/<Family>/<Family>Checks.swift).
    public static var all: [KernelCheck] {
        var checks = denseAlgebraKernels + convolutionKernels + activationKernels + poolingKernels
            + batchNormKernels + lossKernels + elementwiseKernels + batchStatisticsKernels
            + randomKernels + dropoutKernels + optimizerKernels + augmentationKernels + shortcutPadKernels
        #if CUDA
        checks.append(KernelCheck("cuda graph replay", run: CUDAGraphChecks.replay))
        #endif
        return checks
    }

    /// Runs the checks whose name contains `filter` (all if nil), reporting each result as it
    /// comes. A check that throws counts as one failure.
    public static func run(on backend: Backend, filter: String? = nil,
                           report: (CheckResult) -> Void) -> (passed: Int, failed: Int) {
        run(all, on: backend, filter: filter, report: report)
    }

    /// Runs `checks` (e.g. `crossDevice(reference:)`) the same way.
    public static func run(_ checks: [KernelCheck], on backend: Backend, filter: String? = nil,
                           report: (CheckResult) -> Void) -> (passed: Int, failed: Int) {
        var passed = 0, failed = 0
        for check in checks where filter.map({ check.name.contains($0) }) ?? true {
            do {
                for r in try check.run(backend) {
                    if r.passed { passed += 1 } else { failed += 1 }
                    report(r)
                }
            } catch {
                failed += 1
                report(CheckResult(name: "\(check.name): threw \(error)", worstRatio: .infinity, worstIndex: -1,
                                   actual: .nan, expected: .nan, tolerance: Tolerance(atol: 0, rtol: 0)))
            }
        }
        return (passed, failed)
    }
}

// MARK: Helpers for writing checks

/// Compares a backend's float32 output with a float64 reference.
public func compare(_ name: String, actual: [Float], expected: [Double], tolerance: Tolerance) -> CheckResult {
    precondition(actual.count == expected.count, "\(name): \(actual.count) values vs \(expected.count) expected")
    var worst = 0.0, worstIndex = 0
    for i in 0..<actual.count {
        let a = Double(actual[i]), e = expected[i]
        let ratio = abs(a - e) / (tolerance.atol + tolerance.rtol * abs(e))
        if !(ratio <= worst) { worst = ratio; worstIndex = i }   // NaN is always worst
        if ratio.isNaN { break }
    }
    return CheckResult(name: name, worstRatio: worst, worstIndex: worstIndex,
                       actual: actual.isEmpty ? 0 : Double(actual[worstIndex]),
                       expected: expected.isEmpty ? 0 : expected[worstIndex], tolerance: tolerance)
}

/// Central finite differences of a float64 function: `(f(x + h e_i) - f(x - h e_i)) / 2h`.
public func finiteDifferenceGradient(at x: [Double], step h: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
    var probe = x
    var grad = [Double](repeating: 0, count: x.count)
    for i in 0..<x.count {
        probe[i] = x[i] + h
        let plus = f(probe)
        probe[i] = x[i] - h
        let minus = f(probe)
        probe[i] = x[i]
        grad[i] = (plus - minus) / (2 * h)
    }
    return grad
}

/// `sum(a * b)`: the scalar whose gradient with respect to the reference output is `b`,
/// which turns a backward check into a finite-difference check of one scalar function.
public func dot(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    var s = 0.0
    for i in 0..<a.count { s += a[i] * b[i] }
    return s
}

/// Deterministic test inputs in [low, high), from Philox stream `seed`.
/// `awayFromZero` keeps |x| >= that margin (for kinks such as ReLU at 0).
public func checkInput(_ count: Int, seed: UInt64, low: Double = -1, high: Double = 1,
                       awayFromZero: Double = 0) -> [Double] {
    (0..<count).map { i in
        var v = low + (high - low) * Double(Philox.uniform(seed: seed, counter: 0xC4EC, index: i))
        if awayFromZero > 0 && abs(v) < awayFromZero { v = v < 0 ? v - awayFromZero : v + awayFromZero }
        return Double(Float(v))   // exactly representable in float32, so both sides see the same input
    }
}

public extension Backend {
    /// A tensor from float64 values (rounded to float32).
    func tensor(_ values: [Double], shape: [Int]) throws -> Tensor {
        try tensor(values.map { Float($0) }, shape: shape)
    }
}

// MARK: Conventions of the float64 checks

// Each family's checks (Kernels/<Family>/<Family>Checks.swift) extend `KernelChecks`. Forwards are compared with naive float64 references written straight from the `Backend` doc
// comments; backwards with float64 central differences of `L = dot(reference(x), r)` for a random
// upstream gradient r. Every backward writes into a tensor pre-filled with garbage, so "overwrite"
// is checked too. Tolerances are float32 rounding of the kernel's arithmetic with a margin
// (FD error is ~1e-9 at these sizes, far below them).

extension KernelChecks {
    typealias F = CheckFixtures

    /// NaN and infinities as distinct finite stand-ins, so that `compare` checks where they are.
    static func specialsAsFinite(_ v: [Double]) -> [Double] {
        v.map { $0.isNaN ? 0x1p100 : $0 == .infinity ? 0x1p101 : $0 == -.infinity ? -0x1p101 : $0 }   // exact in Float
    }
}

/// Helpers shared by the families' checks.
enum CheckFixtures {
    /// Bitwise equality (for copies, selections and exact integer results).
    static let exact = Tolerance(atol: 1e-30, rtol: 0)

    static func shapeName(_ shape: [Int]) -> String { shape.map(String.init).joined(separator: "x") }

    static func poolName(_ g: PoolGeometry) -> String {
        "\(shapeName(g.inputShape)) \(g.window)x\(g.window)/\(g.stride) pad \(g.padding)"
    }

    /// A constant garbage fill, to show that an output is overwritten.
    static func garbage(_ b: Backend, _ shape: [Int]) throws -> Tensor {
        let t = try b.allocate(shape)
        b.fill(t, value: 7.25)
        return t
    }

    static func download(_ b: Backend, _ t: Tensor) throws -> [Float] { try b.download(t) }

    /// Values in [-1, 1) at least 2/n apart (a shuffled ramp), so that no max-pool window has a
    /// near tie a finite-difference step could flip.
    static func distinctInput(_ n: Int, seed: UInt64) -> [Double] {
        let u = checkInput(n, seed: seed)
        let order = (0..<n).sorted { u[$0] < u[$1] || (u[$0] == u[$1] && $0 < $1) }
        var x = [Double](repeating: 0, count: n)
        for (rank, i) in order.enumerated() { x[i] = Double(Float(-1 + 2 * Double(rank) / Double(n))) }
        return x
    }

    /// (N, C, HW) view of a rank-2 or rank-4 shape.
    static func nchw(_ shape: [Int]) -> (n: Int, c: Int, hw: Int) {
        shape.count == 2 ? (shape[0], shape[1], 1) : (shape[0], shape[1], shape[2] * shape[3])
    }
}
