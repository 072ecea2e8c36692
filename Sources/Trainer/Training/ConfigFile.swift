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
        let config = try decode(TrainConfig.self, from: try bytes(path), file: path, other: (GrowConfig.self, "a strata grow run's config; use strata grow --resume"))
        try ConfigValidation.check(config, memoryLimit: ConfigValidation.physicalMemory, source: .file(path))
        return config
    }

    /// The `GrowConfig` in `path`, decoded and validated.
    public static func readGrowConfig(_ path: String) throws -> GrowConfig {
        let config = try decode(GrowConfig.self, from: try bytes(path), file: path, other: (TrainConfig.self, "a strata train run's config, not a grow run's; use strata train --resume"))
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

    static func decodes<U: Decodable>(_ type: U.Type, _ bytes: [UInt8]) -> Bool {
        (try? JSONDecoder().decode(type, from: Data(bytes))) != nil
    }
}
