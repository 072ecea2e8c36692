#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The hyperparameters `strata hpo` can search, and how a value lands in a `TrainConfig`.
///
/// A space file names some of them, each a range or a list:
///
///     {"lr": {"low": 1e-4, "high": 0.1, "log": true},
///      "weight_decay": {"low": 1e-6, "high": 1e-2, "log": true},
///      "batch_size": {"choices": [32, 64, 128]},
///      "momentum": {"low": 0.8, "high": 0.99}}
///
/// `"int": true` makes a range integral. Unknown hyperparameters and unknown keys are errors that
/// name them and the file.
public enum HPOParameter: String, CaseIterable, Sendable {
    case lr, weightDecay = "weight_decay", momentum, batchSize = "batch_size", optimizer

    /// The default space: learning rate, weight decay and batch size.
    public static func defaultSpace() throws -> HPOSpace {
        try HPOSpace([("lr", .float(low: 1e-4, high: 1e-1, log: true)),
                      ("weight_decay", .float(low: 1e-6, high: 1e-2, log: true)),
                      ("batch_size", .categorical(["32", "64", "128"]))])
    }

    /// `config` with the trial's values.
    public static func apply(_ params: [String: HPOValue], to base: TrainConfig) throws -> TrainConfig {
        var c = base
        for (name, value) in params {
            guard let p = HPOParameter(rawValue: name) else { throw HPOError("unknown hyperparameter '\(name)'") }
            func number() throws -> Double {
                if let d = value.doubleValue { return d }
                guard let d = Double(value.description) else { throw HPOError("\(name): '\(value)' is not a number") }
                return d
            }
            switch p {
            case .lr: c.optimizer.learningRate = Float(try number())
            case .weightDecay: c.optimizer.weightDecay = Float(try number())
            case .momentum: c.optimizer.momentum = Float(try number())
            case .batchSize:
                let b = try number()
                guard b == b.rounded(), b >= 2 else { throw HPOError("batch_size: \(value) is not a whole number of at least 2") }
                c.batchSize = Int(b)
            case .optimizer:
                guard let kind = OptimizerConfig.Kind(rawValue: value.description) else {
                    throw HPOError("optimizer: '\(value)' is not one of sgd, rmsprop, adam, adamw")
                }
                c.optimizer = c.optimizer.switched(to: kind)
            }
        }
        return c
    }

    /// Reads a space file (see the type's documentation).
    public static func readSpace(_ path: String) throws -> HPOSpace {
        let data: Data
        do { data = Data(try InputFile.read(path, flag: "--space")) } catch let e as InputFileError { throw HPOError(e.description) }
        let object: [String: Entry]
        do { object = try JSONDecoder().decode([String: Entry].self, from: data) } catch let e as DecodingError {
            throw HPOError("\(path): \(describe(e))")
        } catch let e as HPOError {
            throw HPOError("\(path): \(e.description)")
        }
        var dims: [(String, HPODimension)] = []
        for name in object.keys.sorted() {
            guard HPOParameter(rawValue: name) != nil else {
                throw HPOError("\(path): unknown hyperparameter '\(name)' (use \(allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            dims.append((name, try object[name]!.dimension(name: name, file: path)))
        }
        guard !dims.isEmpty else { throw HPOError("\(path): the space names no hyperparameter") }
        let space: HPOSpace
        do { space = try HPOSpace(dims) } catch let e as HPOError { throw HPOError("\(path): \(e.description)") }
        for (name, dimension) in dims { try check(dimension, of: HPOParameter(rawValue: name)!, file: path) }
        return space
    }

    /// Refuses, naming the file and the key, a value the trainer would refuse: every trial that
    /// drew it would fail, so the file is wrong, not the trial.
    static func check(_ d: HPODimension, of p: HPOParameter, file: String) throws {
        func fail(_ problem: String) -> HPOError { HPOError("\(file): \(p.rawValue) \(problem)") }
        func formatGeneral(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : "\(v)" }
        func numbers() throws -> [Double] {
            switch d {
            case .float(let lo, let hi, _): return [lo, hi]
            case .int(let lo, let hi, _): return [Double(lo), Double(hi)]
            case .categorical(let choices):
                return try choices.map { c in
                    guard let v = Double(c), v.isFinite else { throw fail("choice '\(c)' is not a number") }
                    return v
                }
            }
        }
        switch p {
        case .optimizer:
            guard case .categorical(let choices) = d else { throw fail("needs choices (sgd, rmsprop, adam, adamw), not a range") }
            if let bad = choices.first(where: { OptimizerConfig.Kind(rawValue: $0) == nil }) {
                throw fail("choice '\(bad)' is not one of sgd, rmsprop, adam, adamw")
            }
        case .batchSize:
            if case .float = d { throw fail("must be whole numbers: give choices or a range with \"int\": true") }
            for v in try numbers() where v != v.rounded() || v < 2 || v > Double(ConfigValidation.maxBatch) {
                throw fail("\(formatGeneral(v)) is not a batch size: it must be a whole number from 2 (batch norm needs two images) to \(ConfigValidation.maxBatch)")
            }
        case .lr:
            if let v = try numbers().first(where: { !($0 > 0) }) { throw fail("\(formatGeneral(v)) is not a learning rate: it must be above 0") }
        case .weightDecay:
            if let v = try numbers().first(where: { !($0 >= 0) }) { throw fail("\(formatGeneral(v)) must be at least 0") }
        case .momentum:
            if let v = try numbers().first(where: { !($0 >= 0 && $0 < 1) }) { throw fail("\(formatGeneral(v)) must be in [0, 1)") }
        }
    }

    struct Entry: Decodable {
        var low: Double?, high: Double?, log: Bool?, int: Bool?
        var choices: [String]?

        enum Key: String, CodingKey, CaseIterable { case low, high, log, int, choices }

        init(from decoder: Decoder) throws {
            let raw = try decoder.container(keyedBy: AnyKey.self)
            if let unknown = raw.allKeys.first(where: { Key(rawValue: $0.stringValue) == nil }) {
                throw HPOError("unknown key '\(unknown.stringValue)' in '\(decoder.codingPath.last?.stringValue ?? "")' (use low, high, log, int or choices)")
            }
            let c = try decoder.container(keyedBy: Key.self)
            low = try c.decodeIfPresent(Double.self, forKey: .low)
            high = try c.decodeIfPresent(Double.self, forKey: .high)
            log = try c.decodeIfPresent(Bool.self, forKey: .log)
            int = try c.decodeIfPresent(Bool.self, forKey: .int)
            if c.contains(.choices) {
                // Numbers or strings, kept as text (a batch size 64 and "64" are the same choice).
                var list = try c.nestedUnkeyedContainer(forKey: .choices)
                var out: [String] = []
                while !list.isAtEnd {
                    if let d = try? list.decode(Double.self) {
                        out.append(d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d))
                    } else {
                        out.append(try list.decode(String.self))
                    }
                }
                choices = out
            }
        }

        func dimension(name: String, file: String) throws -> HPODimension {
            if let choices {
                guard low == nil && high == nil else { throw HPOError("\(file): \(name) has both choices and a range") }
                return .categorical(choices)
            }
            guard let low, let high else { throw HPOError("\(file): \(name) needs low and high, or choices") }
            if int == true {
                guard low == low.rounded() && high == high.rounded() else { throw HPOError("\(file): \(name) is an int range with fractional ends") }
                // Int(x) traps beyond Int's range: ends are bounded well inside it.
                guard abs(low) <= 1e15 && abs(high) <= 1e15 else { throw HPOError("\(file): \(name) is an int range with ends beyond 1e15") }
                return .int(low: Int(low), high: Int(high), log: log ?? false)
            }
            return .float(low: low, high: high, log: log ?? false)
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
