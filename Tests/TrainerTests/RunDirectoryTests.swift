import XCTest
import GPUTensor
@testable import Trainer
#if canImport(Glibc)
import Glibc
#endif

/// Run directories that cannot lose work (issue 10): refusal, --overwrite, the lock, the
/// manifest after simulated kills, stale temporaries, divergence, number formatting, and the
/// device-side epoch sums giving the metrics per-batch host reads gave.
final class RunDirectoryTests: XCTestCase {
    var data = ""

    override func setUpWithError() throws {
        data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 72, test: 20)
    }

    private func names(_ dir: String) -> [String] { FileSystem.contents(ofDirectory: dir) ?? [] }

    private func touch(_ path: String, _ text: String = "x") throws { try writeBytes(Array(text.utf8), to: path) }

    /// A tiny checkpoint standing for epoch `epoch` (the recorder does not look inside).
    private func fakeCheckpoint(_ epoch: Int) -> SafeTensors {
        var f = SafeTensors(metadata: ["epoch": "\(epoch)"])
        f.append("w", shape: [2], floats: [Float(epoch), 1])
        return f
    }

    func testANonEmptyDirectoryIsRefusedWithOneLineNamingItAndTheFlags() throws {
        let dir = try makeTemporaryDirectory(self)
        try touch(dir + "/config.json")
        XCTAssertThrowsError(try RunRecorder(RunDirectory(path: dir), kind: .train, mode: .new)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix(dir + " is not empty"), text)
            XCTAssertTrue(text.contains("--resume \(dir)") && text.contains("--overwrite"), text)
            XCTAssertFalse(text.contains("\n"), text)
        }
        XCTAssertEqual(names(dir), ["config.json"], "a refused run must not touch the directory")
        // An absent or empty directory is fine.
        XCTAssertNoThrow(try RunRecorder(RunDirectory(path: dir + "/fresh/nested"), kind: .train, mode: .new).close())
    }

    func testOverwriteRemovesTheOldRunsFilesOnlyAndSaysWhich() throws {
        let dir = try makeTemporaryDirectory(self)
        for f in ["config.json", "metrics.jsonl", "summary.json", "manifest.json", "epoch-0002.safetensors",
                  "best.safetensors", "growth.svg", "notes.txt"] { try touch(dir + "/" + f) }
        try FileManager.default.createDirectory(atPath: dir + "/baseline", withIntermediateDirectories: false)
        try touch(dir + "/baseline/config.json")
        let r = try RunRecorder(RunDirectory(path: dir), kind: .grow, mode: .overwrite)
        defer { r.close() }
        XCTAssertEqual(Set(r.removed), ["config.json", "metrics.jsonl", "summary.json", "manifest.json",
                                        "epoch-0002.safetensors", "best.safetensors", "growth.svg",
                                        "baseline/config.json", "baseline/"])
        XCTAssertEqual(names(dir), [".strata.lock", "notes.txt"], "files that are not strata's stay")
    }

    func testASecondProcessOnTheDirectoryIsToldWhoHoldsIt() throws {
        let dir = try makeTemporaryDirectory(self)
        let first = try RunRecorder(RunDirectory(path: dir), kind: .train, mode: .new)
        XCTAssertThrowsError(try RunRecorder(RunDirectory(path: dir), kind: .train, mode: .resume)) { error in
            XCTAssertEqual("\(error)", "\(dir) is in use by another strata process (pid \(getpid())); "
                           + "wait for it to end or pick another directory")
        }
        first.close()
        try touch(dir + "/config.json", "{\"modelName\": \"cnn\"}")
        XCTAssertNoThrow(try RunRecorder(RunDirectory(path: dir), kind: .train, mode: .resume).close(),
                         "the lock is released with the run")
    }

    func testAKillAtAnyPointOfAnEpochLeavesAManifestWhoseFilesAgree() throws {
        let dir = try makeTemporaryDirectory(self)
        let run = RunDirectory(path: dir)
        var r: RunRecorder? = try RunRecorder(run, kind: .train, mode: .new)
        try touch(dir + "/config.json", "{\"modelName\": \"cnn\"}")
        for epoch in 1...2 {
            try r!.appendMetrics(["epoch": epoch])
            try r!.commit(fakeCheckpoint(epoch), epoch: epoch, best: epoch == 1, validationAccuracy: 0.5)
        }
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: run.lastCheckpointPath), "epoch-0002.safetensors")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: run.bestCheckpointPath), "epoch-0001.safetensors")
        // Killed in epoch 3, the best so far: its metrics line and checkpoint were written, a
        // write left its temporary file, the manifest was not replaced yet (the case of
        // last renamed and best not: here best and last are one manifest write).
        try run.appendMetrics(["epoch": 3])
        try fakeCheckpoint(3).write(to: dir + "/epoch-0003.safetensors")
        try touch(dir + "/.manifest.json.tmp-4242-123456")
        r = nil   // the process is gone: its lock with it
        let reopened = try RunRecorder(run, kind: .train, mode: .resume)
        defer { reopened.close() }
        XCTAssertEqual(reopened.removedTemporaries, [".manifest.json.tmp-4242-123456"])
        XCTAssertEqual(reopened.manifest.last?.epoch, 2)
        XCTAssertEqual(reopened.manifest.best?.epoch, 1)
        XCTAssertEqual(try run.metricsLineCount(), 2, "the unrecorded epoch's metrics line is cut")
        XCTAssertEqual(names(dir).filter { $0.hasPrefix("epoch-") }, ["epoch-0001.safetensors", "epoch-0002.safetensors"])
        XCTAssertEqual(try SafeTensors.read(from: run.lastCheckpointPath).metadata["epoch"], "2")
        XCTAssertEqual(try SafeTensors.read(from: run.bestCheckpointPath).metadata["epoch"], "1")
        // Killed after the manifest of epoch 3 but before the links moved: the next open repairs them.
        try reopened.appendMetrics(["epoch": 3])
        try reopened.commit(fakeCheckpoint(3), epoch: 3, best: true, validationAccuracy: 0.9)
        try FileSystem.replaceSymbolicLink(at: run.bestCheckpointPath, target: "epoch-0002.safetensors")
        reopened.close()
        let again = try RunRecorder(run, kind: .train, mode: .resume)
        defer { again.close() }
        XCTAssertEqual(try SafeTensors.read(from: run.bestCheckpointPath).metadata["epoch"], "3")
        XCTAssertEqual(try run.checkpoint(.best).epoch, 3)
        XCTAssertEqual(try run.checkpoint(.last).epoch, 3)
        XCTAssertEqual(names(dir).filter { $0.hasPrefix("epoch-") }, ["epoch-0003.safetensors"])
    }

    func testBestIsTheHighestValidationAccuracyAndATieKeepsTheEarlierEpoch() throws {
        let dir = try makeTemporaryDirectory(self)
        let r = try RunRecorder(RunDirectory(path: dir), kind: .grow, mode: .new)
        defer { r.close() }
        for (epoch, accuracy) in [(1, 0.3), (2, 0.5), (3, 0.5), (4, 0.4)] {
            try r.commit(fakeCheckpoint(epoch), epoch: epoch, validationAccuracy: accuracy)
        }
        XCTAssertEqual(r.manifest.best?.epoch, 2)
        XCTAssertEqual(r.manifest.last?.epoch, 4)
        XCTAssertEqual(names(dir).filter { $0.hasPrefix("epoch-") }, ["epoch-0002.safetensors", "epoch-0004.safetensors"])
    }

    func testStaleTemporariesAreRemovedAtStartAndOthersKept() throws {
        let dir = try makeTemporaryDirectory(self)
        try touch(dir + "/.last.safetensors.tmp-99999-1")
        try touch(dir + "/.metrics.jsonl.tmp-1-2")
        let r = try RunRecorder(RunDirectory(path: dir), kind: .train, mode: .new)
        r.close()
        XCTAssertEqual(r.removedTemporaries, [".last.safetensors.tmp-99999-1", ".metrics.jsonl.tmp-1-2"])
        XCTAssertFalse(RunRecorder.isTemporaryName("notes.tmp-1-2"))
        XCTAssertFalse(RunRecorder.isTemporaryName(".x.tmp-1-a"))
        XCTAssertFalse(RunRecorder.isTemporaryName(".x.tmp-12"))
    }

    func testResumingARunOfTheOtherKindIsOneLine() throws {
        let dir = try makeTemporaryDirectory(self)
        let r = try RunRecorder(RunDirectory(path: dir), kind: .train, mode: .new)
        try touch(dir + "/config.json", "{\"modelName\": \"cnn\"}")
        try r.commit(fakeCheckpoint(1), epoch: 1, best: false, validationAccuracy: nil)
        r.close()
        XCTAssertThrowsError(try RunRecorder(RunDirectory(path: dir), kind: .grow, mode: .resume)) { error in
            XCTAssertEqual("\(error)", "\(dir) is a train run: continue it with strata train --resume \(dir)")
        }
        let empty = try makeTemporaryDirectory(self)
        XCTAssertThrowsError(try RunRecorder(RunDirectory(path: empty), kind: .train, mode: .resume)) { error in
            XCTAssertEqual("\(error)", "\(empty) is empty: there is no run to resume")
        }
    }

    func testADivergedLossStopsTheRunNamingTheLastGoodCheckpoint() throws {
        let dir = RunDirectory(path: try makeTemporaryDirectory(self))
        let config = smallConfig(data: data, epochs: 3)
        let run = try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: config.seed))
        let recorder = try RunRecorder(dir, kind: .train, mode: .new)
        defer { recorder.close() }
        // Epoch 1 as fit records it; then the weights blow up.
        try dir.writeJSON(config, to: dir.configPath)
        let first = try run.trainEpoch()
        try recorder.appendMetrics(first)
        try recorder.commit(run.checkpoint(), epoch: 1, best: true, validationAccuracy: first.validationAccuracy)
        run.backend.fill(run.model.trainableParameters[0].value, value: .infinity)
        XCTAssertThrowsError(try run.fit(recorder: recorder)) { error in
            guard let d = error as? DivergenceError else { return XCTFail("\(error)") }
            XCTAssertEqual(d.epoch, 2)
            XCTAssertEqual(d.batch, 1)
            XCTAssertEqual(d.description, "loss diverged at epoch 2 (batch 1): non-finite loss; "
                           + "the last good checkpoint is epoch 1 (try a smaller --lr)")
        }
        XCTAssertEqual(run.epoch, 1, "the diverged epoch is not counted")
        XCTAssertEqual(recorder.manifest.status, .diverged)
        XCTAssertEqual(recorder.manifest.last?.epoch, 1)
        XCTAssertEqual(try dir.readMetrics().count, 1, "no metrics line for the diverged epoch")
        XCTAssertEqual(names(dir.path).filter { $0.hasPrefix("epoch-") }, ["epoch-0001.safetensors"])
        // Non-finite weights with a finite loss so far are caught before they become a checkpoint.
        XCTAssertThrowsError(try run.checkpoint()) { error in
            XCTAssertTrue("\(error)".contains("non-finite weights"), "\(error)")
        }
    }

    func testADivergedGrowRunThrowsTheSameErrorAndSavesNothingDiverged() throws {
        let train = smallConfig(data: data, filters: [4, 6], epochs: 4,
                                optimizer: .sgd(learningRate: 1e20, momentum: 0.9, nesterov: false, weightDecay: 0), dropout: 0)
        let config = GrowConfig(train: train, startStages: 1, window: 2, maxEpochs: 4)
        let dir = RunDirectory(path: try makeTemporaryDirectory(self))
        let recorder = try RunRecorder(dir, kind: .grow, mode: .new)
        defer { recorder.close() }
        XCTAssertThrowsError(try Grower(config: config, backend: CPUBackend(), data: RunData.load(train.data, seed: train.seed))
            .run(recorder: recorder)) { error in
            guard let d = error as? DivergenceError else { return XCTFail("\(error)") }
            XCTAssertEqual(d.epoch, 1)
            XCTAssertTrue(d.description.hasPrefix("loss diverged at epoch 1 (batch "), d.description)
        }
        XCTAssertNil(recorder.manifest.last, "no checkpoint of a diverged state")
        XCTAssertEqual(recorder.manifest.status, .diverged)
        XCTAssertEqual(names(dir.path).filter { $0.hasPrefix("epoch-") }, [])
    }

    func testNumberFormattingNeverTraps() {
        XCTAssertEqual(formatFixed(123.456, digits: 2), "123.46")
        XCTAssertEqual(formatFixed(-2.5, digits: 1), "-2.5")
        XCTAssertEqual(formatFixed(-0.0, digits: 2), "0.00")
        XCTAssertEqual(formatFixed(-0.001, digits: 2), "0.00")
        XCTAssertEqual(formatFixed(.nan, digits: 4), "nan")
        XCTAssertEqual(formatFixed(.infinity, digits: 4), "inf")
        XCTAssertEqual(formatFixed(-.infinity, digits: 0), "-inf")
        XCTAssertEqual(formatFixed(1e300, digits: 2), "1e+300")
        XCTAssertEqual(formatFixed(2023918088.7141, digits: 4), "2023918088.7141")
        XCTAssertEqual(formatFixed(9.5e14, digits: 2), "950000000000000.0")   // past 2^53 / 100: Swift's form
        XCTAssertEqual(formatCount(2.5e9), "2.50G")
        XCTAssertEqual(formatCount(.nan), "nan")
        XCTAssertEqual(formatCount(-.infinity), "-inf")
        XCTAssertEqual(formatCount(1e300), "1e+300")
        for x in [Double.nan, .infinity, -.infinity, 1e300, -1e300, 9e14, 9.3e18, -9.3e18, .greatestFiniteMagnitude,
                  .leastNonzeroMagnitude, -0.0, 0.5, 1e15 + 0.5] {
            for digits in [-1, 0, 2, 4, 30] {
                XCTAssertFalse(formatFixed(x, digits: digits).isEmpty)
            }
            XCTAssertFalse(formatCount(x).isEmpty)
        }
    }

    func testNonFiniteNumbersAreWrittenToJSONAsStrings() throws {
        let dir = RunDirectory(path: try makeTemporaryDirectory(self))
        struct Row: Codable, Equatable { var loss: Double; var accuracy: Double }
        try dir.writeJSON(Row(loss: .infinity, accuracy: 0.5), to: dir.summaryPath)
        let text = String(decoding: try FileSystem.readFile(dir.summaryPath), as: UTF8.self)
        XCTAssertTrue(text.contains("\"inf\""), text)
        XCTAssertEqual(try dir.readJSON(Row.self, from: dir.summaryPath), Row(loss: .infinity, accuracy: 0.5))
        try dir.appendMetrics(Row(loss: .nan, accuracy: 0))
        XCTAssertTrue(String(decoding: try FileSystem.readFile(dir.metricsPath), as: UTF8.self).contains("\"nan\""))
    }

    /// The epoch's sums kept on the device give the very Doubles that reading each batch's loss
    /// sum (`sum`) and correct count (argmax downloaded) back after every batch gave.
    func testDeviceSideEpochSumsAreBitIdenticalToPerBatchReads() throws {
        let config = smallConfig(data: data, epochs: 2)
        let backend = RecordingBackend(CPUBackend())
        let run = try TrainingRun(config: config, backend: backend, data: RunData.load(config.data, seed: config.seed))
        var lossSum = 0.0, correct = 0, seen = 0
        backend.onSumIntoSlot = { l in
            lossSum += Double(try! backend.base.sum(l))
            seen += l.count
        }
        backend.onCountCorrect = { logits, labels in
            let n = logits.shape[0], k = logits.shape[1]
            let z = try! backend.base.download(logits), y = try! backend.base.download(labels)
            for i in 0..<n {
                var best = z[i * k], at = 0
                for j in 1..<k where z[i * k + j] > best { best = z[i * k + j]; at = j }
                if Float(at) == y[i] { correct += 1 }
            }
        }
        for _ in 0..<2 {
            lossSum = 0; correct = 0; seen = 0
            // Validation runs through the same hooks after training: snapshot at its start.
            var train: (Double, Int, Int)?
            var batches = 0
            var observer = TrainingObserver()
            observer.batch = { _, done, total, _ in
                batches = done
                if done == total { train = (lossSum, correct, seen) }
            }
            let m = try run.trainEpoch(observer: observer)
            let (l, c, n) = try XCTUnwrap(train)
            XCTAssertGreaterThan(batches, 1)
            XCTAssertEqual(m.trainLoss, l / Double(n), "bit-identical loss")
            XCTAssertEqual(m.trainAccuracy, Double(c) / Double(n), "bit-identical accuracy")
            XCTAssertEqual(m.validationLoss, (lossSum - l) / Double(seen - n))
            XCTAssertEqual(m.validationAccuracy, Double(correct - c) / Double(seen - n))
        }
        // One read of the slots per epoch and evaluation, not one per batch.
        XCTAssertEqual(backend.count("sum"), 0, "no per-batch host sum")
        XCTAssertEqual(backend.count("argmax"), 0, "no per-batch predictions download")
    }
}
