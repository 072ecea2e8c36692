#if canImport(Glibc)
import Glibc
#endif

/// Standard objectives for checking samplers without training anything (`strata bench tpe`,
/// and bench/hpo against Optuna). Each is minimised and has a known optimum.
public struct HPOTestFunction: Sendable {
    public let name: String
    public let space: HPOSpace
    public let optimum: Double
    public let evaluate: @Sendable ([String: HPOValue]) -> Double

    public static let all = ["branin", "hartmann6", "mixed"]

    public static func named(_ name: String) throws -> HPOTestFunction {
        switch name {
        case "branin": return try branin()
        case "hartmann6": return try hartmann6()
        case "mixed": return try mixed()
        default: throw HPOError("unknown test function '\(name)' (use \(all.joined(separator: ", ")))")
        }
    }

    /// Branin-Hoo on [-5, 10] x [0, 15]; minimum 0.397887 at three points.
    static func branin() throws -> HPOTestFunction {
        let space = try HPOSpace([("x1", .float(low: -5, high: 10, log: false)), ("x2", .float(low: 0, high: 15, log: false))])
        return HPOTestFunction(name: "branin", space: space, optimum: 0.397887) { p in
            let x1 = p["x1"]!.doubleValue!, x2 = p["x2"]!.doubleValue!
            let b = 5.1 / (4 * Double.pi * Double.pi), c = 5 / Double.pi, t = 1 / (8 * Double.pi)
            let a = x2 - b * x1 * x1 + c * x1 - 6
            return a * a + 10 * (1 - t) * cos(x1) + 10
        }
    }

    /// Hartmann 6-D on [0, 1]^6; minimum -3.32237.
    static func hartmann6() throws -> HPOTestFunction {
        let space = try HPOSpace((1...6).map { ("x\($0)", HPODimension.float(low: 0, high: 1, log: false)) })
        let alpha = [1.0, 1.2, 3.0, 3.2]
        let A: [[Double]] = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
        let P: [[Double]] = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                             [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]].map { $0.map { $0 * 1e-4 } }
        return HPOTestFunction(name: "hartmann6", space: space, optimum: -3.32237) { p in
            let x = (1...6).map { p["x\($0)"]!.doubleValue! }
            var total = 0.0
            for i in 0..<4 {
                var inner = 0.0
                for j in 0..<6 { inner += A[i][j] * (x[j] - P[i][j]) * (x[j] - P[i][j]) }
                total -= alpha[i] * exp(-inner)
            }
            return total
        }
    }

    /// A training-like space: a log-scale learning rate, an integer width and a choice;
    /// minimum 0 at lr = 1e-3, units = 37, activation relu.
    static func mixed() throws -> HPOTestFunction {
        let space = try HPOSpace([("lr", .float(low: 1e-5, high: 1, log: true)), ("units", .int(low: 1, high: 100, log: false)),
                                  ("activation", .categorical(["relu", "tanh", "sigmoid"]))])
        return HPOTestFunction(name: "mixed", space: space, optimum: 0) { p in
            let lr = p["lr"]!.doubleValue!, units = p["units"]!.doubleValue!
            let penalty: Double = ["relu": 0, "tanh": 0.5, "sigmoid": 1][p["activation"]!.description] ?? 1
            let l = log10(lr) + 3
            return l * l + (units - 37) * (units - 37) / 100 + penalty
        }
    }

    /// The best value found by `sampler` in `trials` trials.
    public func minimise(with sampler: HPOSampler, trials: Int) -> (best: Double, history: [HPOObservation]) {
        var history: [HPOObservation] = []
        for t in 0..<trials {
            let params = sampler.suggest(space, history: history, trialNumber: t)
            history.append(HPOObservation(params: params, value: evaluate(params)))
        }
        return (history.map(\.value).min() ?? .infinity, history)
    }
}
