import GPUTensor
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One point of a search space: the hyperparameters of a seed-000 CNN training job.
///
/// The trial is identified by the hash of this content alone (`id`), not by the data path or the
/// machine, so the same trial has the same id in every search over the same space; the data, the
/// validation split and the device belong to the search (`SearchSettings`). `trainConfig(...)`
/// turns it into the `TrainConfig` a trial actually runs.
///
/// JSON (snake_case, the keys of a space file's grid):
/// `{"batch_size":20,"conv_layers":2,"epochs":5,"filters":18,"hidden":[500,50],"kernel":3,
///   "lr":0.001,"model":"cnn","optimizer":"adam","seed":0}`
public struct TrialConfig: Codable, Hashable, Sendable {
    public var model: String
    /// Conv layers, each `filters` wide (the seed-000 family uses one width for all of them).
    public var convLayers: Int
    public var filters: Int
    public var kernel: Int
    /// Units of each hidden dense layer.
    public var hidden: [Int]
    public var lr: Double
    public var batchSize: Int
    public var epochs: Int
    public var optimizer: String
    public var seed: UInt64

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, convLayers = "conv_layers", filters, kernel, hidden, lr, batchSize = "batch_size", epochs,
             optimizer, seed
    }

    public init(model: String = "cnn", convLayers: Int, filters: Int, kernel: Int = 3, hidden: [Int], lr: Double,
                batchSize: Int, epochs: Int, optimizer: String = "adam", seed: UInt64 = 0) {
        self.model = model
        self.convLayers = convLayers
        self.filters = filters
        self.kernel = kernel
        self.hidden = hidden
        self.lr = lr
        self.batchSize = batchSize
        self.epochs = epochs
        self.optimizer = optimizer
        self.seed = seed
    }

    /// Sorted-key compact JSON: the canonical text the id is a hash of.
    public var canonicalJSON: String { SearchJSON.canonical(self) }

    /// 16 hex digits of FNV-1a 64 over `canonicalJSON`: stable across runs, machines and Swift
    /// versions (no `Hasher` seeding involved).
    public var id: String { fnv1a64Hex(canonicalJSON) }

    /// The same trial with `layers` conv layers (the paper rule's donor has one fewer).
    public func withConvLayers(_ layers: Int) -> TrialConfig {
        var c = self
        c.convLayers = layers
        return c
    }

    /// The model of this trial for images of `input` and `classes` classes.
    public func modelSpec(input: ImageShape, classes: Int) throws -> ModelSpec {
        guard model == "cnn" else { throw SearchError("model '\(model)': the search covers the cnn family only") }
        var spec = try ModelZoo.spec("cnn", input: input, classes: classes)
        spec.cnn = CNNOptions(filters: Array(repeating: filters, count: convLayers), kernel: kernel, hidden: hidden)
        return spec
    }

    /// The training job of this trial on `data`, reusing a frozen prefix when `reuse` is given.
    /// `precision`, like the device, is the search's, not part of the trial's identity.
    public func trainConfig(data: DataConfig, input: ImageShape, classes: Int, device: String,
                            reuse: ReuseConfig?, precision: Precision = .fp32) throws -> TrainConfig {
        // A trial id names one training: no weight decay, and rmsprop without momentum, as trials always had.
        guard ["adam", "sgd", "rmsprop"].contains(self.optimizer) else {
            throw SearchError("optimizer '\(self.optimizer)' is not one of adam, sgd, rmsprop")
        }
        let optimizer = try OptimizerConfig.named(self.optimizer, learningRate: Float(lr),
                                                  momentum: self.optimizer == "rmsprop" ? 0 : nil, weightDecay: 0)
        return TrainConfig(modelName: "cnn", model: try modelSpec(input: input, classes: classes), data: data,
                           epochs: epochs, batchSize: batchSize, optimizer: optimizer, seed: seed, device: device,
                           reuse: reuse, precision: precision)
    }

    /// A one-line description for logs: `conv 2x18 k3 hidden 500,50 lr 0.001 batch 20`.
    public var shortDescription: String {
        "conv \(convLayers)x\(filters) k\(kernel) hidden \(hidden.map(String.init).joined(separator: ",")) lr \(lr) batch \(batchSize)"
    }
}

/// A search that cannot go on: bad space file, bad flags, an unreadable journal.
public struct SearchError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// FNV-1a, 64 bits, as 16 lowercase hex digits.
func fnv1a64Hex(_ text: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in text.utf8 {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01b3
    }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// JSON encoding and decoding shared by the search files.
enum SearchJSON {
    /// Compact, sorted keys: one line, the same bytes for the same value.
    static func canonical<T: Encodable>(_ value: T) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding our own plain structs cannot fail; a failure is a programming error.
        let data = try! e.encode(value)
        return String(decoding: data, as: UTF8.self)
    }

    static func pretty<T: Encodable>(_ value: T) -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return Array(try! e.encode(value)) + [0x0A]
    }

    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], file: String) throws -> T {
        do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch {
            throw SearchError("\(file) is not valid: \(error)")
        }
    }

    static func read<T: Decodable>(_ type: T.Type, from file: String) throws -> T {
        let bytes: [UInt8]
        do { bytes = try FileSystem.readFile(file) } catch let e as SystemCallError { throw SearchError("\(file) cannot be read: \(e.message)") }
        return try decode(type, from: bytes, file: file)
    }

    static func write<T: Encodable>(_ value: T, to file: String) throws {
        do { try FileSystem.writeAtomically(pretty(value), to: file) } catch let e as SystemCallError {
            throw SearchError("\(file) cannot be written: \(e.message)")
        }
    }
}
