#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A run's folder: `config.json` (enough to rerun), `metrics.jsonl` (one line per epoch),
/// `summary.json`, and checkpoints (`last.safetensors`, `best.safetensors`).
public struct RunDirectory: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public var configPath: String { path + "/config.json" }
    public var metricsPath: String { path + "/metrics.jsonl" }
    public var summaryPath: String { path + "/summary.json" }
    public var lastCheckpointPath: String { path + "/last.safetensors" }
    public var bestCheckpointPath: String { path + "/best.safetensors" }

    /// Creates the folder (and parents) if needed.
    public func create() throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw RunDirectoryError(path: path, reason: "cannot create the run directory: \(FileSystem.blockingComponent(of: path) ?? "\(error)")")
        }
    }

    public func exists(_ file: String) -> Bool { FileManager.default.fileExists(atPath: file) }

    /// Writes a JSON document atomically (temporary file, then rename).
    public func writeJSON<T: Encodable>(_ value: T, to file: String) throws {
        let data = try Self.encoder.encode(value)
        try FileSystem.writeAtomically(Array(data) + [0x0A], to: file)
    }

    public func readJSON<T: Decodable>(_ type: T.Type, from file: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw RunDirectoryError(path: file, reason: "cannot be read")
        }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw RunDirectoryError(path: file, reason: "is not valid: \((error as? DecodingError).map { describe($0) } ?? "\(error)")")
        }
    }

    /// Appends one compact JSON line to `metrics.jsonl` (flushed before returning).
    public func appendMetrics<T: Encodable>(_ value: T) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let line = Array(try enc.encode(value)) + [0x0A]
        let fd = open(metricsPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw RunDirectoryError(path: metricsPath, reason: "cannot be opened: errno \(errno)") }
        defer { close(fd) }
        try line.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 { throw RunDirectoryError(path: metricsPath, reason: "write failed: errno \(errno)") }
                done += n
            }
        }
        fsync(fd)
    }

    /// Empties `metrics.jsonl` (a new run in an old directory).
    public func clearMetrics() throws {
        try FileSystem.writeAtomically([], to: metricsPath)
    }

    /// Keeps only the first `epochs` lines of `metrics.jsonl` (a resumed run rewrites later epochs).
    public func truncateMetrics(toEpochs epochs: Int) throws {
        guard let data = FileManager.default.contents(atPath: metricsPath) else { return }
        var lines = 0, end = 0
        for (i, b) in data.enumerated() where b == 0x0A {
            lines += 1
            if lines == epochs { end = i + 1; break }
        }
        if lines < epochs { return }
        try FileSystem.writeAtomically(Array(data.prefix(end)), to: metricsPath)
    }

    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }
}

public struct RunDirectoryError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path) \(reason)" }
}
