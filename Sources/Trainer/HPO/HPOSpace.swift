import GPUTensor
#if canImport(Glibc)
import Glibc
#endif

// Named so that a binding called `log` (a dimension's log flag) cannot shadow them.
@inline(__always) func mathLog(_ x: Double) -> Double { log(x) }
@inline(__always) func mathExp(_ x: Double) -> Double { exp(x) }
@inline(__always) func mathCos(_ x: Double) -> Double { cos(x) }
@inline(__always) func mathErf(_ x: Double) -> Double { erf(x) }

/// One hyperparameter's range: a float or an integer interval (optionally searched in log
/// space) or a list of choices.
public enum HPODimension: Codable, Equatable, Sendable {
    case float(low: Double, high: Double, log: Bool)
    case int(low: Int, high: Int, log: Bool)
    case categorical([String])

    /// Throws for an empty or reversed range, or a log range that is not positive.
    public func validate(name: String) throws {
        switch self {
        case .float(let lo, let hi, let log):
            guard lo.isFinite && hi.isFinite && lo <= hi else { throw HPOError("\(name): range [\(lo), \(hi)] is empty") }
            if log && lo <= 0 { throw HPOError("\(name): a log range must be positive, got [\(lo), \(hi)]") }
        case .int(let lo, let hi, let log):
            guard lo <= hi else { throw HPOError("\(name): range [\(lo), \(hi)] is empty") }
            if log && lo <= 0 { throw HPOError("\(name): a log range must be positive, got [\(lo), \(hi)]") }
        case .categorical(let choices):
            guard !choices.isEmpty else { throw HPOError("\(name): no choices") }
        }
    }
}

/// A hyperparameter's value in a trial.
public enum HPOValue: Codable, Hashable, Sendable, CustomStringConvertible {
    case float(Double)
    case int(Int)
    case choice(String)

    public var description: String {
        switch self {
        case .float(let x): return formatSignificant(x, digits: 4)   // display; the journal keeps every digit
        case .int(let x): return "\(x)"
        case .choice(let s): return s
        }
    }

    // JSON: {"float": 0.001}, {"int": 32}, {"choice": "relu"} (the kind kept: 1.0 and 1 differ).
    enum CodingKeys: String, CodingKey { case float, int, choice }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let x = try c.decodeIfPresent(Double.self, forKey: .float) { self = .float(x) }
        else if let x = try c.decodeIfPresent(Int.self, forKey: .int) { self = .int(x) }
        else if let x = try c.decodeIfPresent(String.self, forKey: .choice) { self = .choice(x) }
        else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "expected float, int or choice")) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .float(let x): try c.encode(x, forKey: .float)
        case .int(let x): try c.encode(x, forKey: .int)
        case .choice(let x): try c.encode(x, forKey: .choice)
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .float(let x): return x
        case .int(let x): return Double(x)
        case .choice: return nil
        }
    }
}

/// Named dimensions, in a fixed order (the order samplers draw them in).
public struct HPOSpace: Equatable, Sendable {
    public var names: [String]
    public var dimensions: [HPODimension]

    public init(_ dimensions: [(String, HPODimension)]) throws {
        names = dimensions.map(\.0)
        self.dimensions = dimensions.map(\.1)
        guard Set(names).count == names.count else { throw HPOError("a hyperparameter is named twice") }
        for (n, d) in dimensions { try d.validate(name: n) }
    }
}

/// A finished (or pruned) trial as the sampler sees it: its values and the objective, minimised.
public struct HPOObservation: Equatable, Sendable {
    public var params: [String: HPOValue]
    public var value: Double

    public init(params: [String: HPOValue], value: Double) {
        self.params = params
        self.value = value
    }
}

/// Proposes the next trial's hyperparameters from the finished ones. Samplers are deterministic
/// functions of (seed, trial number, history), so a resumed search proposes the same trials.
public protocol HPOSampler: Sendable {
    func suggest(_ space: HPOSpace, history: [HPOObservation], trialNumber: Int) -> [String: HPOValue]
}

/// Independent uniform draws (log-uniform for log ranges).
public struct UniformSampler: HPOSampler {
    public var seed: UInt64
    public init(seed: UInt64) { self.seed = seed }

    public func suggest(_ space: HPOSpace, history: [HPOObservation], trialNumber: Int) -> [String: HPOValue] {
        var rng = HPORandom(seed: seed, stream: UInt64(trialNumber))
        var out: [String: HPOValue] = [:]
        for (name, dim) in zip(space.names, space.dimensions) { out[name] = dim.uniform(&rng) }
        return out
    }
}

extension HPODimension {
    /// The search interval in the space the sampler works in (log for log ranges; integers
    /// widened by half a step so that every integer has the same share).
    var interval: (low: Double, high: Double)? {
        switch self {
        case .float(let lo, let hi, let log): return log ? (mathLog(lo), mathLog(hi)) : (lo, hi)
        case .int(let lo, let hi, let log):
            return log ? (mathLog(Double(lo) - 0.5 < 0.5 ? 0.5 : Double(lo) - 0.5), mathLog(Double(hi) + 0.5))
                       : (Double(lo) - 0.5, Double(hi) + 0.5)
        case .categorical: return nil
        }
    }

    /// A point of the interval back to a value (exp for log ranges, rounded and clamped for ints).
    func value(fromInternal x: Double) -> HPOValue {
        switch self {
        case .float(let lo, let hi, let log): return .float(min(hi, max(lo, log ? mathExp(x) : x)))
        case .int(let lo, let hi, let log):
            let v = (log ? mathExp(x) : x).rounded()
            return .int(min(hi, max(lo, Int(v))))
        case .categorical(let c): return .choice(c[min(c.count - 1, max(0, Int(x)))])
        }
    }

    /// A value to the interval's coordinates (nil for choices or a value of another kind).
    func internalValue(_ v: HPOValue) -> Double? {
        switch (self, v) {
        case (.float(_, _, let log), .float(let x)): return log ? mathLog(x) : x
        case (.int(_, _, let log), .int(let x)): return log ? mathLog(Double(x)) : Double(x)
        default: return nil
        }
    }

    func uniform(_ rng: inout HPORandom) -> HPOValue {
        switch self {
        case .categorical(let c): return .choice(c[Int(rng.unit() * Double(c.count)) % c.count])
        default:
            let (lo, hi) = interval!
            return value(fromInternal: lo + (hi - lo) * rng.unit())
        }
    }
}

/// Philox-backed uniform and normal draws: (seed, stream) fixes the whole sequence.
public struct HPORandom {
    let seed: UInt64, stream: UInt64
    var index = 0

    public init(seed: UInt64, stream: UInt64) {
        self.seed = seed
        self.stream = stream
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func unit() -> Double {
        let a = UInt64(Philox.bits(seed: seed, counter: stream, index: index))
        let b = UInt64(Philox.bits(seed: seed, counter: stream, index: index + 1))
        index += 2
        return Double((a << 21) | (b >> 11)) / Double(UInt64(1) << 53)
    }

    /// Standard normal (Box-Muller).
    public mutating func normal() -> Double {
        let u = max(unit(), 1e-300), v = unit()
        return (-2 * mathLog(u)).squareRoot() * mathCos(2 * Double.pi * v)
    }
}

public struct HPOError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
