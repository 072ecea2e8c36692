#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The files a study (search or hpo) reads back, checked as data and not only as JSON: a number
/// that must be finite is, accuracies lie in [0, 1], seconds and FLOPs are >= 0, ids name
/// trials. What the report and the number formatting get is therefore always in range.

/// Every problem found in a study file, one line each ("FILE line N: what").
public struct StudyDataProblems: Error, CustomStringConvertible, Equatable {
    public private(set) var lines: [String] = []
    /// Lines kept in the message (a file of garbage would give one per line).
    static let shown = 20

    public init() {}

    mutating func add(_ file: String, line: Int? = nil, _ problem: String) {
        lines.append(file + (line.map { " line \($0)" } ?? "") + ": " + problem)
    }

    func throwIfAny() throws { if !lines.isEmpty { throw self } }

    public var description: String {
        let more = lines.count > Self.shown ? ["... and \(lines.count - Self.shown) more problems"] : []
        return (lines.prefix(Self.shown) + more).joined(separator: "\n")
    }
}

enum StudyData {
    /// Decodes one JSON value; the error is one line naming the field.
    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch let error as DecodingError {
            throw SearchError("is not valid: \(describe(error))")
        } catch {
            throw SearchError("is not valid JSON")
        }
    }

    /// Bounds of what a study can hold: about 30 years of seconds, and FLOPs or losses far above
    /// any real run. Larger values are corruption (a number formatter would overflow on them).
    static let maxSeconds = 1e9
    static let maxAmount = 1e30

    /// `name` is finite and in [0, limit], or a problem.
    static func nonNegative(_ value: Double?, _ name: String, limit: Double = maxAmount, into problems: inout [String]) {
        guard let value else { return }
        if !(value >= 0 && value <= limit) { problems.append("\(name) \(value) is not a number in [0, \(limit)]") }
    }

    static func seconds(_ value: Double?, _ name: String, into problems: inout [String]) {
        nonNegative(value, name, limit: maxSeconds, into: &problems)
    }

    /// `name` lies in [0, 1], or a problem.
    static func fraction(_ value: Double?, _ name: String, into problems: inout [String]) {
        guard let value else { return }
        if !(value >= 0 && value <= 1) { problems.append("\(name) \(value) is not in [0, 1]") }
    }

    /// What a worker reports of a trial and its journal event then holds, checked one way for both.
    struct Measurements {
        var validationLoss, validationAccuracy, testAccuracy, seconds, cpuSeconds, flopsExecuted, flopsSkipped: Double?

        func problems() -> [String] {
            var out: [String] = []
            nonNegative(validationLoss, "validation_loss", into: &out)
            fraction(validationAccuracy, "validation_accuracy", into: &out)
            fraction(testAccuracy, "test_accuracy", into: &out)
            StudyData.seconds(seconds, "seconds", into: &out)
            StudyData.seconds(cpuSeconds, "cpu_seconds", into: &out)
            nonNegative(flopsExecuted, "flops_executed", into: &out)
            nonNegative(flopsSkipped, "flops_skipped", into: &out)
            return out
        }
    }

    static func finite(_ value: Double?, _ name: String, into problems: inout [String]) {
        guard let value else { return }
        if !value.isFinite { problems.append("\(name) \(value) is not finite") }
    }
}

extension TrialConfig {
    /// What makes a config impossible to be a trial of a search (not whether it trains well).
    func problems() -> [String] {
        var out: [String] = []
        if convLayers < 1 || convLayers > 64 { out.append("config.conv_layers \(convLayers) is not in 1...64") }
        if filters < 1 || filters > 1 << 16 { out.append("config.filters \(filters) is not in 1...65536") }
        if kernel < 1 || kernel > 64 { out.append("config.kernel \(kernel) is not in 1...64") }
        if hidden.contains(where: { $0 < 1 }) { out.append("config.hidden has a layer of fewer than 1 unit") }
        if !(lr.isFinite && lr > 0) { out.append("config.lr \(lr) is not a finite number > 0") }
        if batchSize < 1 { out.append("config.batch_size \(batchSize) is below 1") }
        if epochs < 1 || epochs > 1_000_000 { out.append("config.epochs \(epochs) is not in 1...1000000") }
        return out
    }
}

extension TrialOutcome {
    /// What is wrong with a worker's report as data (it becomes the trial's failure).
    public func problems() -> [String] {
        var out = StudyData.Measurements(validationLoss: validationLoss, validationAccuracy: validationAccuracy,
                                         testAccuracy: testAccuracy, seconds: seconds, cpuSeconds: cpuSeconds,
                                         flopsExecuted: flopsExecuted, flopsSkipped: flopsSkipped).problems()
        if epochs < 0 { out.append("epochs \(epochs) is below 0") }
        for (e, v) in (validationAccuracies ?? []).enumerated() { StudyData.fraction(v, "validation_accuracies[\(e)]", into: &out) }
        for (e, v) in (validationLosses ?? []).enumerated() { StudyData.nonNegative(v, "validation_losses[\(e)]", into: &out) }
        return out
    }
}

/// A line of `sessions.jsonl` (search and hpo): one per session of the study that ended without
/// a kill, with how it ended.
public struct StudySession: Codable, Equatable, Sendable {
    public enum End: String, Codable, Sendable {
        /// Every trial ran.
        case complete
        /// SIGINT/SIGTERM: `--resume` continues.
        case interrupted
        /// An infrastructure fault (full disk, read-only file system, a worker killed from
        /// outside): `--resume` continues once it is fixed.
        case stopped
    }

    public var seconds: Double
    public var trials: Int
    /// Nil in files written before sessions said how they ended: complete.
    public var end: End?
    public var signal: Int32?
    public var reason: String?

    public init(seconds: Double, trials: Int, end: End, signal: Int32? = nil, reason: String? = nil) {
        self.seconds = seconds
        self.trials = trials
        self.end = end
        self.signal = signal
        self.reason = reason
    }

    func problems() -> [String] {
        var out: [String] = []
        StudyData.seconds(seconds, "seconds", into: &out)
        if trials < 0 { out.append("trials \(trials) is below 0") }
        return out
    }

    /// The sessions of `path` (none when it does not exist), every line checked.
    public static func read(_ path: String) throws -> [StudySession] {
        guard FileSystem.kind(of: path) != nil else { return [] }
        let bytes: [UInt8]
        do { bytes = try FileSystem.readFile(path) } catch { throw SearchError("\(path) cannot be read: \(error)") }
        return try parse(bytes, file: path)
    }

    public static func parse(_ bytes: [UInt8], file: String) throws -> [StudySession] {
        var out: [StudySession] = []
        var problems = StudyDataProblems()
        for (lineNumber, line) in StudyJournal.lines(bytes) {
            do {
                let s = try StudyData.decode(StudySession.self, from: line)
                let found = s.problems()
                for p in found { problems.add(file, line: lineNumber, p) }
                if found.isEmpty { out.append(s) }
            } catch { problems.add(file, line: lineNumber, "\(error)") }
        }
        try problems.throwIfAny()
        return out
    }

    /// Appends the line (fsynced).
    static func append(_ session: StudySession, to path: String) throws {
        try StudyJournal.appendLine(SearchJSON.canonical(session), to: path)
    }
}

/// How a study's trials were run: stored with its settings so that `--resume` runs them the
/// same way unless told otherwise. The threads of each trial's backend change how its sums are
/// split (results differ in the last digits); with an adaptive sampler or an asynchronous
/// pruner the number of workers changes what is proposed and decided when.
public struct StudyExecution: Codable, Equatable, Sendable {
    public var workers: Int
    /// CPU threads in all (split between the workers).
    public var threads: Int
    public var threadsPerTrial: Int
    /// `local` or `ray`.
    public var engine: String
    /// This session's trials per GPU and their cards (`DeviceSharing`); not stored: it is planned
    /// for the machine each session runs on.
    public var sharing: DeviceSharing? = nil

    enum CodingKeys: String, CodingKey { case workers, threads, threadsPerTrial, engine }

    public init(workers: Int, threads: Int, threadsPerTrial: Int, engine: String) {
        self.workers = workers
        self.threads = threads
        self.threadsPerTrial = threadsPerTrial
        self.engine = engine
    }

    /// What is wrong with it as data (it comes from a file a resume reads and then acts on).
    public func problems() -> [String] {
        var out: [String] = []
        if workers < 1 || workers > 4096 { out.append("execution.workers \(workers) is not in 1...4096") }
        if threads < 1 || threads > 4096 { out.append("execution.threads \(threads) is not in 1...4096") }
        if threadsPerTrial < 1 || threadsPerTrial > max(1, threads) {
            out.append("execution.threadsPerTrial \(threadsPerTrial) is not in 1...\(max(1, threads))")
        }
        if !["local", "ray"].contains(engine) { out.append("execution.engine '\(engine)' is not local or ray") }
        return out
    }

    /// One line when `now` differs from how the study ran so far (`self`), nil when it does not.
    public func overrideNotice(_ now: StudyExecution) -> String? {
        var parts: [String] = []
        if now.workers != workers { parts.append("--workers \(now.workers) (it ran with \(workers))") }
        if now.threadsPerTrial != threadsPerTrial {
            parts.append("\(now.threadsPerTrial) threads per trial (it ran with \(threadsPerTrial))")
        } else if now.threads != threads {
            parts.append("--threads \(now.threads) (it ran with \(threads))")
        }
        if now.engine != engine { parts.append("--engine \(now.engine) (it ran with \(engine))") }
        guard !parts.isEmpty else { return nil }
        return "note: resumed with " + parts.joined(separator: ", ")
            + ": results can differ from an uninterrupted run (threads per trial change float sums in the last digits; "
            + "workers change what an adaptive sampler or pruner sees)"
    }
}

/// A fault of the machine, not of the trial: a full disk, a read-only file system, a permission
/// refused while writing, a worker killed by a signal strata did not send. It stops the study
/// (nothing is journaled for the trial, which runs again on `--resume`) instead of being
/// recorded as the trial's failure.
public struct InfrastructureFault: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    /// What a study loop (search or hpo) throws for an error of its own: an interruption or a
    /// fault already said goes up as it is; a failed write of the coordinator's (journal,
    /// job.json, a prefix) that the machine caused stops the workers through `stop` and becomes a
    /// fault that says how to continue; anything else cancels the workers and goes up.
    static func leaving(_ study: String, error: Error, resume: String, stop: (String) -> Void,
                        cancel: () -> Void) -> Error {
        if error is InterruptedError || error is InfrastructureFault { return error }
        if let fault = describe(error) {
            stop(fault)
            return InfrastructureFault("\(fault); the \(study) stopped; `\(resume)` continues once that is fixed")
        }
        cancel()
        return error
    }

    /// The errno values that say the machine, not the trial, is at fault.
    static let errnos: [Int32] = [ENOSPC, EDQUOT, EROFS, EACCES, EPERM, EIO]

    /// `error`'s text when it is an infrastructure fault, else nil. Errors are matched by their
    /// type where it carries an errno, else by the errno or strerror text in their message
    /// (errors of other layers wrap the system call's).
    static func describe(_ error: Error) -> String? {
        if let e = error as? SystemCallError { return errnos.contains(e.errno) ? e.message : nil }
        if let f = error as? InfrastructureFault { return f.message }
        let text = "\(error)"
        for code in errnos {
            let reason = String(cString: strerror(code))
            if text.contains("errno \(code))") || text.contains("errno: \(code))") || text.contains("errno \(code)\n")
                || text.hasSuffix("errno \(code)") || text.contains(reason) {
                return text
            }
        }
        return nil
    }
}
