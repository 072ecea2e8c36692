#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A JSON configuration that cannot be decoded: one line naming the file and the field.
///
///     runs/a/config.json: optimizer.learningRate must be a number, found a string
public struct ConfigFileError: Error, Equatable, CustomStringConvertible {
    public let file: String
    public let detail: String
    public init(file: String, _ detail: String) {
        self.file = file
        self.detail = detail
    }
    public var description: String { "\(file): \(detail)" }
}

/// Reads run configurations (`config.json`, `--config`) through one path: a bounded read of a
/// regular file, decoding with errors that name the field, then `ConfigValidation`.
public enum ConfigFile {
    /// Config files are small; anything above this is not one.
    public static let maxSize = 16 << 20

    /// The `TrainConfig` in `path`, decoded and validated (`ConfigValidation`, source `.file`).
    public static func readTrainConfig(_ path: String) throws -> TrainConfig {
        let raw = try bytes(path)
        let config = try decode(TrainConfig.self, from: raw, file: path, other: (GrowConfig.self, "a strata grow run's config; use strata grow --resume"))
        try refuseUnknownKeys(raw, decoded: config, file: path)
        try ConfigValidation.check(config, memoryLimit: ConfigValidation.physicalMemory, source: .file(path))
        return config
    }

    /// The `GrowConfig` in `path`, decoded and validated.
    public static func readGrowConfig(_ path: String) throws -> GrowConfig {
        let raw = try bytes(path)
        let config = try decode(GrowConfig.self, from: raw, file: path, other: (TrainConfig.self, "a strata train run's config, not a grow run's; use strata train --resume"))
        try refuseUnknownKeys(raw, decoded: config, file: path)
        try ConfigValidation.check(config, memoryLimit: ConfigValidation.physicalMemory, source: .file(path))
        return config
    }

    static func bytes(_ path: String) throws -> [UInt8] {
        do { return try FileSystem.readRegularFile(path, limit: maxSize) } catch let r as FileRefusal {
            throw ConfigFileError(file: path, r.isMissing ? "does not exist" : r.detail)
        }
    }

    /// Decodes `T`; when that fails but the bytes decode as `other.0`, says what the file is.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], file: String,
                                            other: (Decodable.Type, String)? = nil) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch let error as DecodingError {
            if let other, decodes(other.0, bytes) {
                throw ConfigFileError(file: file, "is \(other.1)")
            }
            throw ConfigFileError(file: file, describe(error))
        } catch {
            throw ConfigFileError(file: file, "is not valid JSON: \(error)")
        }
    }

    /// A key the decoder passed over (a typo such as `learnignRate` would otherwise leave the
    /// default in place without a word): every key of the file must appear where the decoded
    /// value, encoded again, has it. A key whose value is null stands for an absent optional.
    static func refuseUnknownKeys<T: Encodable>(_ bytes: [UInt8], decoded: T, file: String) throws {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let again = try? encoder.encode(decoded),
              let original = try? bytes.withUnsafeBufferPointer({ try HeaderJSON.Parser.parse($0) }),
              let known = try? Array(again).withUnsafeBufferPointer({ try HeaderJSON.Parser.parse($0) }) else { return }
        if let key = unknownKey(original, known, at: "") {
            throw ConfigFileError(file: file, "unknown key '\(key)' (a misspelt field would be ignored)")
        }
    }

    /// The dotted path of the first key of `value` that `known` lacks.
    static func unknownKey(_ value: HeaderJSON.Value, _ known: HeaderJSON.Value, at path: String) -> String? {
        switch (value, known) {
        case let (.object(fields), .object(knownFields)):
            for (key, v) in fields {
                let here = path.isEmpty ? key : path + "." + key
                guard let k = knownFields.first(where: { $0.key == key })?.value else {
                    if v == .null { continue }
                    return here
                }
                if let found = unknownKey(v, k, at: here) { return found }
            }
        case let (.array(items), .array(knownItems)):
            for (i, (v, k)) in zip(items, knownItems).enumerated() {
                if let found = unknownKey(v, k, at: "\(path)[\(i)]") { return found }
            }
        default: break
        }
        return nil
    }

    static func decodes<U: Decodable>(_ type: U.Type, _ bytes: [UInt8]) -> Bool {
        (try? JSONDecoder().decode(type, from: Data(bytes))) != nil
    }
}
