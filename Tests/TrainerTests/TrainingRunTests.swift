import XCTest
import GPUTensor
@testable import Trainer

/// A CIFAR-10 directory of random images: `train` records in data_batch_1, `test` in test_batch.
func writeRandomCIFAR(_ dir: String, train: Int, test: Int, seed: UInt64 = 3) throws {
    func records(_ n: Int, stream: UInt64) -> [UInt8] {
        (0..<n).flatMap { i -> [UInt8] in
            [UInt8(i % 10)] + (0..<3072).map { UInt8(truncatingIfNeeded: Philox.bits(seed: seed, counter: stream, index: i * 3072 + $0)) }
        }
    }
    try writeBytes(records(train, stream: 1), to: "\(dir)/data_batch_1.bin")
    try writeBytes(records(test, stream: 2), to: "\(dir)/test_batch.bin")
}

/// A small cnn run on random CIFAR-shaped data: fast enough for exact-equality tests.
func smallConfig(data: String, filters: [Int] = [4, 6], epochs: Int = 3, augment: Bool = true,
                 optimizer: OptimizerConfig = .sgd(learningRate: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4),
                 reuse: ReuseConfig? = nil, dropout: Float = 0.25) -> TrainConfig {
    TrainConfig(modelName: "cnn",
                model: .cnn(CNNOptions(filters: filters, hidden: [16], dropout: dropout), input: .cifar, classes: 10),
                data: DataConfig(kind: "cifar10", path: data, validationFraction: 0.25, augment: augment),
                epochs: epochs, batchSize: 16, evalBatchSize: 32, optimizer: optimizer,
                schedule: LearningRateSchedule(.cosine(epochs: epochs, minimum: 0), warmupEpochs: 0.5),
                seed: 11, device: "cpu", reuse: reuse)
}

func stateValues(_ run: TrainingRun) throws -> [String: [Float]] {
    var out: [String: [Float]] = [:]
    for (name, t) in run.model.stateDict { out[name] = try run.backend.download(t) }
    for (name, t) in run.optimizer.namedState() { out["optimizer." + name] = try run.backend.download(t) }
    return out
}

final class TrainingRunTests: XCTestCase {
    var data = ""

    override func setUpWithError() throws {
        data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 72, test: 20)
    }

    func testResumeEndsWithTheSameWeightsAsAnUninterruptedRun() throws {
        let straight = RunDirectory(path: try makeTemporaryDirectory(self))
        let config = smallConfig(data: data)
        let a = try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: config.seed))
        try a.fit(in: straight)

        // The same run killed after epoch 1 (only its directory survives), then resumed.
        let killed = RunDirectory(path: try makeTemporaryDirectory(self))
        var short = config
        short.epochs = 1
        let b = try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: config.seed))
        _ = short
        try b.trainEpoch()
        try killed.create()
        try killed.writeJSON(config, to: killed.configPath)
        try killed.appendMetrics(b.history[0])
        try b.saveCheckpoint(to: killed.lastCheckpointPath)

        let c = try TrainingRun.resume(from: killed, backend: CPUBackend())
        XCTAssertEqual(c.epoch, 1)
        XCTAssertEqual(c.history.count, 1)
        try c.fit(in: killed)

        let expected = try stateValues(a), actual = try stateValues(c)
        XCTAssertEqual(Set(expected.keys), Set(actual.keys))
        XCTAssertTrue(expected.keys.contains("optimizer.features.0.weight.momentum_buffer"))
        for (name, values) in expected {
            XCTAssertEqual(actual[name], values, "\(name) differs after resume")
        }
        XCTAssertEqual(a.history.map(\.trainLoss), c.history.map(\.trainLoss))
        XCTAssertEqual(try killed.readMetrics().count, 3)
        // The weights did move: a run whose state never changed would pass the comparison too.
        let fresh = try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: config.seed))
        XCTAssertNotEqual(try stateValues(fresh)["features.0.weight"], expected["features.0.weight"])
    }

    /// A run trained in segments (each a fresh `fitSegment` on the directory, as an hpo trial's
    /// rungs are) is incomplete between them and ends bit-identical to a run never stopped.
    func testSegmentsEndBitIdenticalToAnUnstoppedRun() throws {
        let config = smallConfig(data: data)
        let straight = try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: config.seed))
        let expectedSummary = try straight.fit(in: RunDirectory(path: try makeTemporaryDirectory(self)))

        let dir = RunDirectory(path: try makeTemporaryDirectory(self) + "/segments")
        let (first, none) = try TrainingRun.fitSegment(in: dir, config: config, backend: CPUBackend(), until: 1)
        XCTAssertNil(none, "a segment below the budget leaves the run incomplete")
        XCTAssertEqual(first.epoch, 1)
        XCTAssertEqual(try dir.readJSON(RunManifest.self, from: dir.manifestPath).status, .running)
        XCTAssertFalse(dir.exists(dir.summaryPath))
        XCTAssertEqual(try dir.readMetrics().count, 1)
        // The directory's config wins over the one passed (a resumed segment keeps its run's).
        var other = config
        other.seed = 99
        let (second, _) = try TrainingRun.fitSegment(in: dir, config: other, backend: CPUBackend(), until: 2)
        XCTAssertEqual(second.epoch, 2)
        XCTAssertEqual(second.config.seed, config.seed)
        let (last, summary) = try TrainingRun.fitSegment(in: dir, config: config, backend: CPUBackend(), until: 10)
        XCTAssertEqual(last.epoch, 3, "a segment ends at the run's budget")
        XCTAssertEqual(try dir.readJSON(RunManifest.self, from: dir.manifestPath).status, .complete)
        XCTAssertEqual(summary?.testAccuracy, expectedSummary.testAccuracy)
        XCTAssertEqual(summary?.bestEpoch, expectedSummary.bestEpoch)
        XCTAssertEqual(try dir.readMetrics().map(\.trainLoss), straight.history.map(\.trainLoss))
        let expected = try stateValues(straight), actual = try stateValues(last)
        XCTAssertEqual(Set(expected.keys), Set(actual.keys))
        for (name, values) in expected { XCTAssertEqual(actual[name], values, "\(name) differs after segments") }

        // Without the test set (an hpo trial), the summary has no test figure.
        let (_, noTest) = try TrainingRun.fitSegment(in: RunDirectory(path: try makeTemporaryDirectory(self) + "/t"), config: config,
                                                     backend: CPUBackend(), until: nil, testSet: false)
        XCTAssertNil(try XCTUnwrap(noTest).testAccuracy)
    }

    /// The early-stop hook ends the run before its budget; it is finished like any other.
    func testEarlyStopFinishesTheRunWithASummary() throws {
        let config = smallConfig(data: data)
        let dir = RunDirectory(path: try makeTemporaryDirectory(self))
        let run = try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: config.seed))
        let recorder = try RunRecorder(dir, kind: .train, mode: .new)
        defer { recorder.close() }
        var hooks = FitHooks()
        var committed: [Int] = []
        hooks.committed = { committed.append($0.epoch) }
        hooks.stop = { $0.epoch == 2 ? "enough" : nil }
        let summary = try XCTUnwrap(try run.fit(recorder: recorder, until: nil, hooks: hooks))
        XCTAssertEqual(committed, [1, 2])
        XCTAssertEqual(summary.epochs, 2)
        XCTAssertEqual(recorder.manifest.status, .complete)
        XCTAssertEqual(try dir.readMetrics().count, 2)
    }

    func testCheckpointRoundTripEvaluatesIdentically() throws {
        let dir = RunDirectory(path: try makeTemporaryDirectory(self))
        var config = smallConfig(data: data, epochs: 1)
        config.model = ModelSpec(family: .resnet, input: .cifar, classes: 10, resnet: ResNetOptions(depth: 8, width: 4))
        let run = try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: config.seed))
        let summary = try run.fit(in: dir)
        let reloaded = try TrainingRun.forEvaluation(checkpoint: dir.lastCheckpointPath, dataPath: nil,
                                                     backend: CPUBackend(), batchSize: 7)
        let e = try reloaded.evaluate(reloaded.data.test!)
        XCTAssertEqual(e.count, 20)
        XCTAssertEqual(e.accuracy, summary.testAccuracy!, accuracy: 1e-12)
        XCTAssertEqual(e.loss, summary.testLoss!, accuracy: 1e-5)
        // PyTorch's BatchNorm keeps num_batches_tracked; the checkpoint carries it as I64.
        let file = try SafeTensors.read(from: dir.lastCheckpointPath)
        XCTAssertEqual(file["layer1.0.bn2.num_batches_tracked"]?.values, .int64([Int64(run.optimizer.stepCount)]))
    }

    func testReusedFrozenPrefixStaysBitIdenticalAndGetsNoBackward() throws {
        let sourceDir = RunDirectory(path: try makeTemporaryDirectory(self))
        let source = smallConfig(data: data, filters: [4, 6], epochs: 1)
        try TrainingRun(config: source, backend: CPUBackend(), data: RunData.load(source.data, seed: 11)).fit(in: sourceDir)
        let sourceFile = try SafeTensors.read(from: RunDirectory.resolveCheckpoint(sourceDir.path))

        let recorder = RecordingBackend(CPUBackend())
        let config = smallConfig(data: data, filters: [4, 6, 8], epochs: 2,
                                 reuse: ReuseConfig(source: sourceDir.path, blocks: 2, mode: .freeze))
        let run = try TrainingRun(config: config, backend: recorder, data: RunData.load(config.data, seed: 11))
        XCTAssertEqual(run.model.frozenBlockCount, 2)
        recorder.reset()
        try run.trainEpoch()
        try run.trainEpoch()
        for (name, tensor) in run.model.blocks[0..<2].flatMap({ $0.stateDict }) {
            XCTAssertEqual(try recorder.download(tensor), try sourceFile.floats(name), "\(name) changed while frozen")
            XCTAssertEqual(recorder.calls("conv2dBackwardFilter", touching: tensor), 0, "\(name) got a weight gradient")
        }
        let firstTrainable = run.model.parameter(named: "features.6.weight")!
        XCTAssertGreaterThan(recorder.calls("conv2dBackwardFilter", touching: firstTrainable.grad), 0)
        // Backward stops at the first trainable conv: one backward-data per step for 2 convs? No:
        // only the classifier's dense layers and nothing below features.6 compute input gradients.
        XCTAssertEqual(recorder.count("conv2dBackwardData"), 0)
        XCTAssertGreaterThan(run.history.last!.skippedFlops, 0)
    }

    func testReuseShapeMismatchNamesTheTensor() throws {
        let sourceDir = RunDirectory(path: try makeTemporaryDirectory(self))
        let source = smallConfig(data: data, filters: [5], epochs: 1)
        try TrainingRun(config: source, backend: CPUBackend(), data: RunData.load(source.data, seed: 11)).fit(in: sourceDir)
        let config = smallConfig(data: data, filters: [4, 6],
                                 reuse: ReuseConfig(source: sourceDir.path, blocks: 1, mode: .freeze))
        XCTAssertThrowsError(try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: 11))) { error in
            XCTAssertTrue("\(error)".contains("features.0.weight"), "\(error)")
            XCTAssertTrue("\(error)".contains("[5, 3, 3, 3]"), "\(error)")
        }
    }

    func testActivationCacheGivesTheSameLossesAsRecomputing() throws {
        let sourceDir = RunDirectory(path: try makeTemporaryDirectory(self))
        let source = smallConfig(data: data, filters: [4, 6], epochs: 1, augment: false)
        try TrainingRun(config: source, backend: CPUBackend(), data: RunData.load(source.data, seed: 11)).fit(in: sourceDir)
        func train(cache: Bool) throws -> TrainingRun {
            let config = smallConfig(data: data, filters: [4, 6, 8], epochs: 3, augment: false,
                                     reuse: ReuseConfig(source: sourceDir.path, blocks: 2, mode: .freeze, cache: cache))
            let run = try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: 11))
            for _ in 0..<3 { try run.trainEpoch() }
            return run
        }
        let cached = try train(cache: true), plain = try train(cache: false)
        XCTAssertNotNil(cached.cache)
        XCTAssertNil(plain.cache)
        XCTAssertGreaterThan(cached.cache!.hits, 0, "later epochs should read the cache")
        XCTAssertEqual(cached.history.map(\.trainLoss), plain.history.map(\.trainLoss))
        XCTAssertEqual(cached.history.map(\.validationLoss), plain.history.map(\.validationLoss))
        XCTAssertEqual(try stateValues(cached), try stateValues(plain))
        // The cache saved the prefix's forward work in epochs 2 and 3.
        XCTAssertGreaterThan(cached.history[2].skippedFlops, plain.history[2].skippedFlops)
        XCTAssertLessThan(cached.history[2].trainingFlops, plain.history[2].trainingFlops)
    }

    func testCacheIsRefusedWithAugmentationOrOverBudget() throws {
        let sourceDir = RunDirectory(path: try makeTemporaryDirectory(self))
        let source = smallConfig(data: data, filters: [4], epochs: 1)
        try TrainingRun(config: source, backend: CPUBackend(), data: RunData.load(source.data, seed: 11)).fit(in: sourceDir)
        let augmented = smallConfig(data: data, filters: [4, 6], reuse: ReuseConfig(source: sourceDir.path, blocks: 1))
        let a = try TrainingRun(config: augmented, backend: CPUBackend(), data: RunData.load(augmented.data, seed: 11))
        XCTAssertNil(a.cache)
        XCTAssertTrue(a.cacheNote?.contains("augmentation") ?? false)
        let tight = smallConfig(data: data, filters: [4, 6], augment: false,
                                reuse: ReuseConfig(source: sourceDir.path, blocks: 1, cacheBudget: 1000))
        let b = try TrainingRun(config: tight, backend: CPUBackend(), data: RunData.load(tight.data, seed: 11))
        XCTAssertNil(b.cache)
        XCTAssertTrue(b.cacheNote?.contains("budget") ?? false)
        try b.trainEpoch()   // the fallback path trains
    }

    /// A cache file shared between runs: the first run writes it, the next starts with every
    /// cached image from epoch 1 on, and both train to the same weights as a run without one.
    func testSharedActivationCacheFileIsComputedOnceAndChangesNoResult() throws {
        let sourceDir = RunDirectory(path: try makeTemporaryDirectory(self))
        let source = smallConfig(data: data, filters: [4, 6], epochs: 1, augment: false)
        try TrainingRun(config: source, backend: CPUBackend(), data: RunData.load(source.data, seed: 11)).fit(in: sourceDir)
        let file = try makeTemporaryDirectory(self) + "/prefix.activations"
        func train(cacheFile: String?, epochs: Int = 2) throws -> TrainingRun {
            let config = smallConfig(data: data, filters: [4, 6, 8], epochs: epochs, augment: false,
                                     reuse: ReuseConfig(source: sourceDir.path, blocks: 2, mode: .freeze, cacheFile: cacheFile))
            let run = try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: 11))
            for _ in 0..<epochs { try run.trainEpoch() }
            return run
        }
        let plain = try train(cacheFile: nil)
        let first = try train(cacheFile: file)
        XCTAssertEqual(first.cache!.loadedFromFile, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: file), "written after the first epoch")
        let second = try train(cacheFile: file)
        XCTAssertGreaterThan(second.cache!.loadedFromFile, 0)
        XCTAssertEqual(try stateValues(first), try stateValues(plain))
        XCTAssertEqual(try stateValues(second), try stateValues(plain))
        XCTAssertEqual(second.history.map(\.trainLoss), plain.history.map(\.trainLoss))
        // The second run skipped the prefix's forward in epoch 1 too.
        XCTAssertGreaterThan(second.history[0].skippedFlops, first.history[0].skippedFlops)
        // A file for another prefix (other weights) is not taken.
        let otherDir = RunDirectory(path: try makeTemporaryDirectory(self))
        var other = source
        other.seed = 12
        try TrainingRun(config: other, backend: CPUBackend(), data: RunData.load(other.data, seed: 11)).fit(in: otherDir)
        let config = smallConfig(data: data, filters: [4, 6, 8], epochs: 1, augment: false,
                                 reuse: ReuseConfig(source: otherDir.path, blocks: 2, mode: .freeze, cacheFile: file))
        let foreign = try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: 11))
        XCTAssertEqual(foreign.cache!.loadedFromFile, 0, "the fingerprint covers the prefix's weights")
    }
}
