import XCTest
import GPUTensor
@testable import Trainer

/// Warm workers (`ProcessExecutor` warm, `WarmWorker`, `strata search-worker`), the caches that
/// keep a worker warm (`WarmDatasets`, `WarmBackends`) and the prefix store's budget.
final class WarmWorkerTests: XCTestCase {
    let dummyData = DataConfig(kind: "cifar10", path: "/nonexistent", augment: false)

    override func tearDown() {
        WarmDatasets.disable()
        WarmBackends.disable()
    }

    func job(_ id: String, in root: String, train: TrainConfig? = nil) throws -> TrialJob {
        let dir = root + "/" + id
        try makeSearchFolder(dir)
        let job = TrialJob(id: id, trial: nil, data: train?.data ?? dummyData, device: "cpu", threads: 1, directory: dir, donor: nil,
                           reuseLayers: 0, prefixPath: nil, prefixKey: nil, cache: false, cacheBudget: 0, attempt: 1, train: train)
        try SearchJSON.write(job, to: dir + "/job.json")
        return job
    }

    /// Submits `jobs` as slots free up and polls until every one has an outcome.
    func runAll(_ jobs: [TrialJob], on executor: ProcessExecutor, timeout: Double = 300) throws -> [String: TrialOutcome] {
        var queue = jobs[...]
        var done: [String: TrialOutcome] = [:]
        let deadline = monotonicNow() + timeout
        while done.count < jobs.count {
            while executor.freeSlots > 0, let next = queue.popFirst() { try executor.submit(next) }
            for (outcome, _) in try executor.poll(timeout: 0.2) { done[outcome.id] = outcome }
            guard monotonicNow() < deadline else { XCTFail("trials did not end in \(timeout) s"); break }
        }
        return done
    }

    /// The real worker: one warm process serves three trainings, each outcome bit-identical to
    /// the one a process of its own gives; each trial's stdout and stderr in its folder.
    func testAWarmWorkerServesSeveralTrialsWithTheColdOutcomes() throws {
        let strata = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("strata").path
        guard FileManager.default.isExecutableFile(atPath: strata) else { throw XCTSkip("no strata binary next to the tests") }
        let root = try makeTemporaryDirectory(self)
        try makeSearchFolder(root + "/data")
        try writeRandomCIFAR(root + "/data", train: 72, test: 20)
        func jobs(_ folder: String) throws -> [TrialJob] {
            try [0.05, 0.01, 0.1].enumerated().map { i, lr in
                try job("t\(i)", in: root + "/" + folder,
                        train: smallConfig(data: root + "/data", epochs: 2, augment: false,
                                           optimizer: .sgd(learningRate: lr, momentum: 0.9, nesterov: true, weightDecay: 1e-4)))
            }
        }
        let cold = ProcessExecutor(executable: strata, arguments: ["search-trial"], workers: 1)
        let warm = ProcessExecutor(executable: strata, arguments: ["search-worker"], workers: 1, warm: true)
        let coldOutcomes = try runAll(try jobs("cold"), on: cold)
        let warmOutcomes = try runAll(try jobs("warm"), on: warm)
        XCTAssertEqual(cold.processesStarted, 3)
        XCTAssertEqual(warm.processesStarted, 1, "one worker served the three trials")
        XCTAssertEqual(warmOutcomes.count, 3)
        for (id, c) in coldOutcomes {
            var w = try XCTUnwrap(warmOutcomes[id])
            XCTAssertEqual(w.status, .finished, w.error ?? "")
            XCTAssertNotNil(w.validationLosses)
            XCTAssertGreaterThan(w.cpuSeconds ?? 0, 0)
            // Times differ; everything else is bit-identical.
            var c = c
            (w.seconds, w.cpuSeconds, c.seconds, c.cpuSeconds) = (0, nil, 0, nil)
            XCTAssertEqual(w, c, id)
            let log = String(decoding: try FileSystem.readFile(root + "/warm/\(id)/stdout.log"), as: UTF8.self)
            XCTAssertTrue(log.contains("\"id\":\"\(id)\""), "the trial's outcome line is in its own stdout.log: \(log)")
            XCTAssertEqual(FileSystem.kind(of: root + "/warm/\(id)/stderr.log"), .file)
        }
    }

    /// A stand-in worker speaking the warm protocol: for each job path it copies the folder's
    /// `ready.json` to `outcome.json` and answers `done 0`; a folder with `hang` makes it write
    /// its pid to `pid` and wait to be killed.
    func fakeWorker(_ root: String) throws -> String {
        let script = root + "/worker.sh"
        try writeBytes(Array("""
            #!/bin/sh
            while read -r path <&3; do
              dir=$(dirname "$path")
              if [ -e "$dir/hang" ]; then echo $$ > "$dir/pid.tmp"; mv "$dir/pid.tmp" "$dir/pid"; sleep 60; fi
              cp "$dir/ready.json" "$dir/outcome.json"
              echo "done 0" >&3
            done

            """.utf8), to: script)
        XCTAssertEqual(chmod(script, 0o755), 0)
        return script
    }

    func fakeJob(_ id: String, in root: String, hang: Bool = false) throws -> TrialJob {
        let j = try job(id, in: root)
        try SearchJSON.write(TrialOutcome(id: id, status: .finished, validationLoss: 1, seconds: 1, epochs: 1), to: j.directory + "/ready.json")
        if hang { try writeBytes([], to: j.directory + "/hang") }
        return j
    }

    func waitForPid(_ dir: String) throws -> pid_t {
        let deadline = monotonicNow() + 30
        while monotonicNow() < deadline {
            if let bytes = try? FileSystem.readFile(dir + "/pid"),
               let pid = pid_t(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) { return pid }
            usleep(20_000)
        }
        throw XCTSkip("the stand-in worker did not start")
    }

    /// A worker that crashes mid-trial fails that trial only (as a cold worker's crash does), one
    /// killed from outside gives that trial the cold worker's fault; the other worker's trials
    /// finish, and the next trials get a replacement worker.
    func testAWorkerKilledMidTrialIsReplacedAndOnlyItsTrialFails() throws {
        let root = try makeTemporaryDirectory(self)
        let executor = ProcessExecutor(executable: "/bin/sh", arguments: [try fakeWorker(root)], workers: 2, warm: true)
        for (signal, name) in [(SIGSEGV, "crash"), (SIGKILL, "kill")] {
            let hanging = try fakeJob(name, in: root, hang: true)
            let other = try fakeJob(name + "-other", in: root)
            try executor.submit(hanging)
            try executor.submit(other)
            XCTAssertEqual(executor.freeSlots, 0)
            XCTAssertEqual(kill(try waitForPid(hanging.directory), signal), 0)
            var got: [String: TrialOutcome] = [:]
            let deadline = monotonicNow() + 30
            while got.count < 2 && monotonicNow() < deadline {
                for (o, _) in try executor.poll(timeout: 0.2) { got[o.id] = o }
            }
            XCTAssertEqual(got[other.id]?.status, .finished)
            let failed = try XCTUnwrap(got[hanging.id])
            XCTAssertEqual(failed.status, .failed)
            XCTAssertTrue(failed.error?.contains("killed by signal \(signal)") ?? false, "\(failed)")
            if signal == SIGSEGV {
                XCTAssertNil(failed.fault, "a crash is the trial's own failure")
            } else {
                XCTAssertNotNil(failed.fault, "a kill from outside is an infrastructure fault, as with a cold worker")
            }
            XCTAssertEqual(executor.freeSlots, 2)
        }
        // Two workers started per round (the first round's survivor served the second's `other`).
        let before = executor.processesStarted
        XCTAssertEqual(before, 3)
        let more = try (0..<4).map { try fakeJob("after\($0)", in: root) }
        let outcomes = try runAll(more, on: executor, timeout: 30)
        XCTAssertEqual(outcomes.values.map(\.status), Array(repeating: .finished, count: 4))
        XCTAssertEqual(executor.processesStarted, before + 1, "one replacement for the killed worker; the survivor served on")
        // cancelAll stops the workers; later jobs start new ones.
        let hanging = try fakeJob("cancelled", in: root, hang: true)
        try executor.submit(hanging)
        _ = try waitForPid(hanging.directory)
        executor.cancelAll()
        XCTAssertEqual(executor.freeSlots, 2)
        XCTAssertEqual(try runAll([try fakeJob("last", in: root)], on: executor, timeout: 30)["last"]?.status, .finished)
    }

    /// The data cache: the same decode (shared storage) on a second load, the same split, equal
    /// to a fresh decode after a training ran on it; a changed file is decoded again.
    func testTheDataCacheReturnsEqualDataThatATrialCannotChange() throws {
        let dir = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(dir, train: 72, test: 20)
        let config = smallConfig(data: dir, epochs: 1, augment: false)
        let fresh = try RunData.load(config.data, seed: config.seed)
        WarmDatasets.enable()
        let first = try RunData.load(config.data, seed: config.seed)
        let run = try TrainingRun(config: config, backend: try WarmBackends.make(.cpu, threads: 1, precision: .fp32), data: first)
        _ = try run.trainEpoch()
        let second = try RunData.load(config.data, seed: config.seed)
        XCTAssertEqual(WarmDatasets.counts, WarmDatasets.Counts(hits: 1, misses: 1, splitHits: 1))
        for (a, b) in [(second.train, fresh.train), (second.validation!, fresh.validation!), (second.test!, fresh.test!)] {
            XCTAssertEqual(a.pixels, b.pixels)
            XCTAssertEqual(a.labels, b.labels)
            XCTAssertEqual(a.name, b.name)
        }
        XCTAssertEqual(second.train.pixels.withUnsafeBufferPointer { $0.baseAddress },
                       first.train.pixels.withUnsafeBufferPointer { $0.baseAddress }, "the split is kept, not recomputed")
        // A rewritten file is read again.
        try writeRandomCIFAR(dir, train: 72, test: 20, seed: 4)
        let changed = try RunData.load(config.data, seed: config.seed)
        XCTAssertEqual(WarmDatasets.counts.misses, 2)
        XCTAssertNotEqual(changed.train.pixels, fresh.train.pixels)
        XCTAssertEqual(try DatasetLoader.load(path: dir).train.pixels, try DatasetLoader.decode(kind: .cifar10, path: dir, options: DatasetOptions()).train.pixels)
    }

    func testWarmBackendsAreKeptPerDeviceAndThreads() throws {
        XCTAssertFalse(try WarmBackends.make(.cpu, threads: 1, precision: .fp32) === (try WarmBackends.make(.cpu, threads: 1, precision: .fp32)), "off: a new one each time")
        WarmBackends.enable()
        let a = try WarmBackends.make(.cpu, threads: 1, batchSize: 20, precision: .fp32)
        XCTAssertTrue(a === (try WarmBackends.make(.cpu, threads: 1, batchSize: 40, precision: .fp32)), "the CPU's plans do not depend on the batch")
        XCTAssertFalse(a === (try WarmBackends.make(.cpu, threads: 2, precision: .fp32)))
        XCTAssertEqual(WarmBackends.hits, 1)
    }

    /// The budget removes activation caches before prefixes, least recently used first, never a
    /// needed key's files; the usage counts what is kept and what went, across calls.
    func testEvictionKeepsWhatPendingTrialsNeed() throws {
        let dir = try makeTemporaryDirectory(self)
        let store = PrefixStore(directory: dir)
        // a: needed; b older than c; each prefix 100 bytes, each activation file 1000.
        for (i, key) in ["a", "b", "c"].enumerated() {
            try writeBytes([UInt8](repeating: 1, count: 100), to: store.path(for: key))
            try writeBytes([UInt8](repeating: 2, count: 1000), to: store.activationsPath(for: key))
            for path in [store.path(for: key), store.activationsPath(for: key)] {
                var times = [timespec(tv_sec: 1_000_000 + i, tv_nsec: 0), timespec(tv_sec: 1_000_000 + i, tv_nsec: 0)]
                XCTAssertEqual(utimensat(AT_FDCWD, path, &times, 0), 0)
            }
        }
        try writeBytes([1], to: dir + "/unrelated.txt")
        XCTAssertEqual(store.usage(budget: 2000), PrefixStoreUsage(budgetBytes: 2000, keptBytes: 3300, keptFiles: 6, evictedBytes: 0, evictedFiles: 0))
        XCTAssertEqual(try store.evict(budget: 5000, needed: []).files, 0, "within the budget: nothing goes")
        // Using b (scheduling a trial on it) makes c the least recently used.
        var times = [timespec(tv_sec: 2_000_000, tv_nsec: 0), timespec(tv_sec: 2_000_000, tv_nsec: 0)]
        XCTAssertEqual(utimensat(AT_FDCWD, store.activationsPath(for: "b"), &times, 0), 0)
        let first = try store.evict(budget: 2300, needed: ["a"])
        XCTAssertEqual(first.files, 1)
        XCTAssertEqual(first.bytes, 1000)
        XCTAssertEqual(FileSystem.kind(of: store.activationsPath(for: "c")), nil, "c's outputs, least recently used, went first")
        XCTAssertEqual(FileSystem.kind(of: store.activationsPath(for: "b")), .file)
        // A budget below what the needed key holds: everything else goes, the needed files stay.
        let second = try store.evict(budget: 0, needed: ["a"])
        XCTAssertEqual(second.files, 3)
        XCTAssertEqual(second.bytes, 1200)
        XCTAssertEqual(FileSystem.kind(of: store.path(for: "a")), .file)
        XCTAssertEqual(FileSystem.kind(of: store.activationsPath(for: "a")), .file)
        XCTAssertEqual(FileSystem.kind(of: dir + "/unrelated.txt"), .file, "only the store's own files are evicted")
        XCTAssertEqual(store.usage(budget: 0), PrefixStoreUsage(budgetBytes: 0, keptBytes: 1100, keptFiles: 2, evictedBytes: 2200, evictedFiles: 4))
    }

    /// Storing a prefix that is already there marks it (and its activation file) as used now.
    func testStoringAPrefixMarksItUsed() throws {
        let dir = try makeTemporaryDirectory(self)
        let store = PrefixStore(directory: dir)
        try writeBytes([1], to: store.path(for: "k"))
        try writeBytes([2], to: store.activationsPath(for: "k"))
        var times = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 0)]
        for p in [store.path(for: "k"), store.activationsPath(for: "k")] { XCTAssertEqual(utimensat(AT_FDCWD, p, &times, 0), 0) }
        XCTAssertEqual(try store.store(key: "k", layers: 1, from: "/nonexistent"), store.path(for: "k"))
        XCTAssertTrue(store.files().allSatisfy { $0.used > 1_500_000 }, "\(store.files())")
    }
}
