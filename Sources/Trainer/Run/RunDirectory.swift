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
    public static let manifestName = "manifest.json"
    /// `manifest.json` (see `RunManifest`): which checkpoint holds which epoch.
    public var manifestPath: String { path + "/" + Self.manifestName }

    /// Creates the folder (and parents) if needed.
    public func create() throws {
        do { try OutputPolicy().makeFolder(path) } catch let e as OutputError {
            let prefix = "cannot be created: "
            guard e.reason.hasPrefix(prefix) else { throw RunDirectoryError(path: path, reason: e.reason) }
            throw RunDirectoryError(path: path, reason: "cannot create the run directory: \(e.reason.dropFirst(prefix.count))")
        }
    }

    public func exists(_ file: String) -> Bool { FileManager.default.fileExists(atPath: file) }

    /// Writes a JSON document atomically (temporary file, then rename).
    public func writeJSON<T: Encodable>(_ value: T, to file: String) throws {
        let data: Data
        do { data = try Self.encoder.encode(value) } catch {
            throw RunDirectoryError(path: file, reason: "cannot be encoded: \(error)")
        }
        do { try FileSystem.writeAtomically(Array(data) + [0x0A], to: file) } catch let e as SystemCallError {
            throw RunDirectoryError(path: file, reason: "cannot be written: \(e.message)")
        }
    }

    public func readJSON<T: Decodable>(_ type: T.Type, from file: String) throws -> T {
        let data: Data
        do { data = Data(try InputFile.read(file)) } catch let e as InputFileError {
            throw RunDirectoryError(path: file, reason: e.reason)
        }
        do {
            return try RunDirectory.decoder.decode(type, from: data)
        } catch {
            throw RunDirectoryError(path: file, reason: "is not valid: \((error as? DecodingError).map { describe($0) } ?? "\(error)")")
        }
    }

    /// Appends one compact JSON line to `metrics.jsonl` (flushed before returning).
    public func appendMetrics<T: Encodable>(_ value: T) throws {
        try appendJSONLine(value, to: metricsPath)
    }

    /// Appends one compact JSON line to `file` (a journal or metrics file), fsync'd before returning.
    public func appendJSONLine<T: Encodable>(_ value: T, to file: String) throws {
        let enc = Self.encoder
        enc.outputFormatting = [.sortedKeys]
        let line: [UInt8]
        do { line = Array(try enc.encode(value)) + [0x0A] } catch {
            throw RunDirectoryError(path: file, reason: "line cannot be encoded: \(error)")
        }
        let fd = open(file, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw RunDirectoryError(path: file, reason: "cannot be opened: \(SystemCallError(call: "open", path: file, errno: errno).message)") }
        defer { close(fd) }
        try line.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 { throw RunDirectoryError(path: file, reason: SystemCallError(call: "write", path: file, errno: errno).message) }
                done += n
            }
        }
        fsync(fd)
    }

    /// Empties `metrics.jsonl` (a new run in an old directory).
    public func clearMetrics() throws {
        try FileSystem.writeAtomically([], to: metricsPath)
    }

    /// Lines of `metrics.jsonl` (0 when it does not exist).
    public func metricsLineCount() throws -> Int {
        guard let data = FileManager.default.contents(atPath: metricsPath) else { return 0 }
        return data.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
    }

    /// Keeps only the first `lines` lines of `metrics.jsonl` (the manifest's), dropping lines of
    /// epochs a kill left without their checkpoint, and a torn last line.
    public func truncateMetrics(toLines lines: Int) throws {
        guard let data = FileManager.default.contents(atPath: metricsPath) else { return }
        var seen = 0, end = 0
        if lines > 0 {
            for (i, b) in data.enumerated() where b == 0x0A {
                seen += 1
                if seen == lines { end = i + 1; break }
            }
        }
        if end == data.count { return }
        try FileSystem.writeAtomically(Array(data.prefix(end)), to: metricsPath)
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

    /// Non-finite numbers (a loss that overflowed, a mean over nothing) are written as the
    /// strings "nan", "inf" and "-inf", and read back as such: JSON has no literal for them,
    /// and a run must never fail on writing its record.
    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }
}

public struct RunDirectoryError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path) \(reason)" }
}
