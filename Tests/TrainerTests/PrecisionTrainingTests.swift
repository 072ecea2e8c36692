import XCTest
import GPUTensor
@testable import Trainer

/// A CPU backend that says it computes in `reported` (so a run takes the path of that precision:
/// fp16's loss scaling) and, on the training steps numbered in `faultySteps` (0-based calls of
/// the loss with a gradient), writes +inf into the loss gradient and NaN into the losses: an
/// overflow as fp16 would produce it.
final class GradientFaultBackend: ForwardingBackend {
    let reported: Precision
    var faultySteps: Set<Int>
    private(set) var steps = 0

    init(reporting reported: Precision = .fp32, faultySteps: Set<Int> = [], wrapping base: Backend = CPUBackend()) {
        self.reported = reported
        self.faultySteps = faultySteps
        super.init(wrapping: base)
    }

    override var precision: Precision { reported }

    override func softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?, gradScale: Float) {
        super.softmaxCrossEntropy(logits: logits, labels: labels, losses: losses, gradLogits: gradLogits, gradScale: gradScale)
        guard let gradLogits else { return }
        if faultySteps.contains(steps) {
            base.fill(gradLogits, value: .infinity)
            base.fill(losses, value: .nan)
        }
        steps += 1
    }
}

/// The CPU backend in `precision`, or a skip saying why this machine or build has none.
func cpuBackend(_ precision: Precision) throws -> Backend {
    do { return try BackendFactory.make(.cpu, precision: precision) } catch {
        throw XCTSkip("no CPU backend in \(precision.rawValue) here: \(error)")
    }
}

final class LossScalerTests: XCTestCase {
    func testPyTorchDefaults() {
        let s = LossScaler()
        XCTAssertEqual(s.scale, 65536)
        XCTAssertEqual(s.growthInterval, 2000)
        XCTAssertEqual(s.goodSteps, 0)
    }

    func testBackoffHalvesAndGrowthDoublesAfterTheInterval() {
        var s = LossScaler(scale: 1024, growthInterval: 3)
        s.update(finite: true)
        s.update(finite: true)
        XCTAssertEqual(s.scale, 1024)
        s.update(finite: false)
        XCTAssertEqual(s.scale, 512)
        XCTAssertEqual(s.goodSteps, 0, "a skipped step restarts the count")
        s.update(finite: true)
        s.update(finite: true)
        XCTAssertEqual(s.scale, 512)
        s.update(finite: true)
        XCTAssertEqual(s.scale, 1024)
        XCTAssertEqual(s.goodSteps, 0)
    }

    func testScaleStaysFiniteAndNormal() {
        var big = LossScaler(scale: Float(sign: .plus, exponent: 127, significand: 1), growthInterval: 1)
        big.update(finite: true)
        XCTAssertEqual(big.scale, Float(sign: .plus, exponent: 127, significand: 1), "doubling 2^127 would overflow")
        var small = LossScaler(scale: .leastNormalMagnitude, growthInterval: 1)
        small.update(finite: false)
        XCTAssertEqual(small.scale, .leastNormalMagnitude)
    }

    func testAllFiniteSeesAnInfinityOrNaNInAnyGradient() throws {
        let backend = CPUBackend()
        let a = try backend.allocate([5]), b = try backend.allocate([3]), sums = try backend.allocate([2])
        backend.fill(a, value: 1e30)
        backend.fill(b, value: -2)
        XCTAssertTrue(try LossScaler.allFinite([a, b], sums: sums, backend: backend))
        backend.upload([1, 2, .nan], to: b)
        XCTAssertFalse(try LossScaler.allFinite([a, b], sums: sums, backend: backend))
        backend.upload([1, 2, -.infinity], to: b)
        XCTAssertFalse(try LossScaler.allFinite([a, b], sums: sums, backend: backend))
    }
}

final class PrecisionTrainingTests: XCTestCase {
    var data = ""

    override func setUpWithError() throws {
        data = try makeTemporaryDirectory(self)
        // 72 images, a quarter held out: 54 to train, 3 steps of 16 per epoch.
        try writeRandomCIFAR(data, train: 72, test: 20)
    }

    func weights(_ run: TrainingRun) throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (name, t) in run.model.stateDict { out[name] = try run.backend.download(t) }
        return out
    }

    /// A step whose gradients are not finite is skipped (weights and optimizer untouched), the
    /// scale halves, and neither its NaN loss nor the skip reads as divergence; good steps grow it.
    func testNonFiniteGradientSkipsTheStepBacksOffAndGrows() throws {
        let config = smallConfig(data: data, epochs: 2)
        let backend = GradientFaultBackend(faultySteps: [1])
        let run = try TrainingRun(config: config, backend: backend, data: RunData.load(config.data, seed: config.seed))
        run.lossScaler = LossScaler(scale: 1024, growthInterval: 3)
        var afterStep: [[String: [Float]]] = []
        var observer = TrainingObserver()
        observer.batch = { _, _, _, _ in afterStep.append((try? self.weights(run)) ?? [:]) }

        let first = try run.trainEpoch(observer: observer)
        XCTAssertEqual(first.skippedSteps, 1)
        XCTAssertEqual(first.lossScale, 512, "1024 halved once; one good step since")
        XCTAssertTrue(first.trainLoss.isFinite, "the skipped batch's NaN loss is left out")
        XCTAssertEqual(run.optimizer.stepCount, 2, "3 batches, one skipped")
        XCTAssertEqual(afterStep[1], afterStep[0], "the skipped step left the weights as they were")
        XCTAssertNotEqual(afterStep[2], afterStep[1], "the next good step moved them")

        let second = try run.trainEpoch()
        XCTAssertEqual(second.skippedSteps, 0)
        XCTAssertEqual(second.lossScale, 1024, "the third good step in a row (one in epoch 1, two here) doubled it")
        XCTAssertEqual(run.lossScaler?.goodSteps, 1)
    }

    func testEveryStepSkippedIsDivergence() throws {
        let config = smallConfig(data: data, epochs: 1)
        let run = try TrainingRun(config: config, backend: GradientFaultBackend(faultySteps: [0, 1, 2]),
                                  data: RunData.load(config.data, seed: config.seed))
        run.lossScaler = LossScaler(scale: 1024)
        XCTAssertThrowsError(try run.trainEpoch()) { error in
            let d = error as? DivergenceError
            XCTAssertNotNil(d, "\(error)")
            XCTAssertTrue(d?.what.contains("every step skipped") ?? false, "\(error)")
        }
    }

    /// Powers of two scale and unscale exactly: an FP32 run with scaling forced on (2^10) ends with
    /// the same weights and optimizer state as one without, to the bit.
    func testScaledFP32RunIsBitIdenticalToAnUnscaledOne() throws {
        let config = smallConfig(data: data, epochs: 2)
        let plain = try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: config.seed))
        let scaled = try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: config.seed))
        XCTAssertNil(plain.lossScaler, "fp32 trains without loss scaling")
        scaled.lossScaler = LossScaler(scale: 1024)
        for _ in 0..<2 {
            try plain.trainEpoch()
            try scaled.trainEpoch()
        }
        XCTAssertEqual(scaled.history.map(\.skippedSteps), [0, 0])
        let a = try stateValues(plain), b = try stateValues(scaled)
        XCTAssertEqual(a.keys.sorted(), b.keys.sorted())
        for (name, values) in a {
            XCTAssertEqual(values.map(\.bitPattern), b[name]!.map(\.bitPattern), name)
        }
        XCTAssertEqual(plain.history.map(\.trainLoss), scaled.history.map(\.trainLoss))
    }

    /// fp16 turns scaling on by itself; a run killed after epoch 1 resumes with the scale its
    /// checkpoint saved and ends where the uninterrupted one does; metrics.jsonl has the figures.
    func testLossScaleIsCheckpointedAndResumed() throws {
        var config = smallConfig(data: data, epochs: 2)
        config.precision = .fp16
        let data = try RunData.load(config.data, seed: config.seed)
        let straightDir = RunDirectory(path: try makeTemporaryDirectory(self))
        let straight = try TrainingRun(config: config, backend: GradientFaultBackend(reporting: .fp16, faultySteps: [1]), data: data)
        XCTAssertEqual(straight.lossScaler, LossScaler(), "fp16 starts at PyTorch's 2^16")
        try straight.fit(in: straightDir)
        XCTAssertEqual(straight.lossScaler?.scale, 32768)
        let metrics = try straightDir.readMetrics()
        XCTAssertEqual(metrics.map(\.skippedSteps), [1, 0])
        XCTAssertEqual(metrics.map(\.lossScale), [32768, 32768])
        let text = try String(contentsOfFile: straightDir.metricsPath, encoding: .utf8)
        XCTAssertTrue(text.contains("\"skippedSteps\""), text)

        let killedDir = RunDirectory(path: try makeTemporaryDirectory(self))
        var oneEpoch = config
        oneEpoch.epochs = 1
        let killed = try TrainingRun(config: oneEpoch, backend: GradientFaultBackend(reporting: .fp16, faultySteps: [1]), data: data)
        try killed.fit(in: killedDir)
        // Resumed with the budget of the straight run, on a backend without faults.
        let resumed = try TrainingRun.resume(from: killedDir, backend: GradientFaultBackend(reporting: .fp16), epochs: 2)
        XCTAssertEqual(resumed.lossScaler, killed.lossScaler, "the checkpoint's scale and good-step count")
        try resumed.fit(in: killedDir, mode: .resume)
        XCTAssertEqual(resumed.lossScaler, straight.lossScaler)
        XCTAssertEqual(try stateValues(resumed), try stateValues(straight))
    }

    func testConfigRecordsPrecisionAndOldConfigsAreFP32() throws {
        var config = smallConfig(data: data, epochs: 1)
        config.precision = .bf16
        let encoded = try JSONEncoder().encode(config)
        let object = try JSONSerialization.jsonObject(with: encoded) as! [String: Any]
        XCTAssertEqual(object["precision"] as? String, "bf16")
        XCTAssertEqual(try JSONDecoder().decode(TrainConfig.self, from: encoded), config)
        var old = object
        old["precision"] = nil
        let decoded = try JSONDecoder().decode(TrainConfig.self, from: JSONSerialization.data(withJSONObject: old))
        XCTAssertEqual(decoded.precision, .fp32, "a config.json from before precisions")

        let file = try makeTemporaryDirectory(self) + "/config.json"
        var bad = object
        bad["precision"] = "fp8"
        try JSONSerialization.data(withJSONObject: bad).write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try ConfigFile.readTrainConfig(file)) { error in
            XCTAssertTrue("\(error)".contains("precision"), "\(error)")
        }
    }

    /// A run keeps its precision: a backend of another is refused with one line naming both.
    func testRunRefusesABackendOfAnotherPrecision() throws {
        var config = smallConfig(data: data, epochs: 1)
        config.precision = .bf16
        let data = try RunData.load(config.data, seed: config.seed)
        XCTAssertThrowsError(try TrainingRun(config: config, backend: CPUBackend(), data: data)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("bf16") && text.contains("fp32") && !text.contains("\n"), text)
        }
        XCTAssertNoThrow(try TrainingRun(config: config, backend: GradientFaultBackend(reporting: .bf16), data: data))
    }

    /// Evaluating a checkpoint works on a backend of any precision (its weights are FP32).
    func testEvaluationTakesTheBackendsPrecision() throws {
        var config = smallConfig(data: data, epochs: 1)
        config.precision = .bf16
        let dir = RunDirectory(path: try makeTemporaryDirectory(self))
        let run = try TrainingRun(config: config, backend: GradientFaultBackend(reporting: .bf16),
                                  data: RunData.load(config.data, seed: config.seed))
        XCTAssertNil(run.lossScaler, "bf16 has FP32's range: no loss scaling")
        try run.fit(in: dir)
        let evaluation = try TrainingRun.forEvaluation(checkpoint: dir.lastCheckpointPath, dataPath: nil, backend: CPUBackend(), batchSize: 32)
        XCTAssertEqual(evaluation.config.precision, .fp32)
        // The checkpoint holds FP32 tensors under the model's (PyTorch) names only, plus optimizer state.
        let file = try SafeTensors.read(from: dir.lastCheckpointPath)
        XCTAssertFalse(file.tensors.isEmpty)
        for entry in file.tensors where !entry.name.hasSuffix("num_batches_tracked") {
            guard case .float32 = entry.values else { return XCTFail("\(entry.name) is not F32") }
        }
    }

    func testWarmBackendsKeepOneBackendPerPrecision() throws {
        _ = try cpuBackend(.bf16)
        WarmBackends.enable()
        defer { WarmBackends.disable() }
        let a = try WarmBackends.make(.cpu, threads: 1, precision: .fp32)
        let b = try WarmBackends.make(.cpu, threads: 1, precision: .bf16)
        XCTAssertFalse(a === b)
        XCTAssertEqual(b.precision, .bf16)
        XCTAssertTrue(try WarmBackends.make(.cpu, threads: 1, precision: .bf16) === b)
        XCTAssertEqual(WarmBackends.hits, 1)
    }

    func testTrialJobsCarryThePrecision() throws {
        var config = smallConfig(data: data, epochs: 1)
        config.precision = .bf16
        var job = TrialJob(id: "x", trial: nil, data: config.data, device: "cpu", threads: 1, directory: "/nonexistent",
                           donor: nil, reuseLayers: 0, prefixPath: nil, prefixKey: nil, cache: false, cacheBudget: 0, attempt: 1)
        XCTAssertEqual(job.runPrecision, .fp32, "a job from before precisions")
        job.precision = .fp16
        XCTAssertEqual(job.runPrecision, .fp16)
        job.train = config
        XCTAssertEqual(job.runPrecision, .bf16, "an explicit training (hpo) carries its own")
        let trial = TrialConfig(convLayers: 1, filters: 4, hidden: [8], lr: 0.01, batchSize: 16, epochs: 1)
        XCTAssertEqual(trial.withConvLayers(1).id, trial.id)
        let tc = try trial.trainConfig(data: config.data, input: .cifar, classes: 10, device: "cpu", reuse: nil, precision: .bf16)
        XCTAssertEqual(tc.precision, .bf16)
    }

    /// A search's trials train in its precision (job.json and each trial's config.json say so);
    /// the same folder with another precision is refused, naming the field; a search.json from
    /// before precisions is the fp32 search.
    func testSearchCarriesPrecisionIntoItsTrials() throws {
        _ = try cpuBackend(.bf16)
        let dir = try makeTemporaryDirectory(self)
        let space = SearchSpace(name: "one", convLayers: [1], filters: [4], hidden: [[8]], lr: [0.01], batchSize: [16], epochs: 1)
        let dataConfig = DataConfig(kind: "cifar10", path: data, validationFraction: 0.25, augment: false)
        let settings = SearchSettings(space: space, reuse: .none, data: dataConfig, device: "cpu", precision: .bf16)
        let records = try SearchEngine(directory: SearchDirectory(path: dir), settings: settings, executor: InProcessExecutor(),
                                       threadsPerTrial: 1).run()
        XCTAssertEqual(records.map(\.status), [.finished], records.compactMap(\.error).joined())
        let trial = SearchDirectory(path: dir).trialDirectory(records[0].id)
        XCTAssertEqual(try SearchJSON.read(TrialJob.self, from: trial + "/job.json").precision, .bf16)
        XCTAssertEqual(try ConfigFile.readTrainConfig(trial + "/run/config.json").precision, .bf16)
        XCTAssertEqual(try SearchDirectory(path: dir).readSettings().precision, .bf16)

        var fp32 = settings
        fp32.precision = .fp32
        XCTAssertThrowsError(try SearchEngine(directory: SearchDirectory(path: dir), settings: fp32, executor: InProcessExecutor(),
                                              threadsPerTrial: 1).run()) { error in
            XCTAssertTrue("\(error)".contains("precision"), "\(error)")
        }
        var old = fp32
        old.precision = nil
        XCTAssertTrue(old.sameSearch(as: fp32), "no precision in search.json: fp32")
        XCTAssertFalse(old.sameSearch(as: settings))
    }
}

/// The `--precision` flag of the CLI (needs the `strata` binary next to the test bundle).
final class PrecisionCommandTests: XCTestCase {
    func strata(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let path = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("strata").path
        guard FileManager.default.isExecutableFile(atPath: path) else { throw XCTSkip("no strata binary next to \(CommandLine.arguments[0])") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, o, e)
    }

    var data = ""

    override func setUpWithError() throws {
        data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 72, test: 20)
    }

    func trainArguments(_ output: String) -> [String] {
        ["train", "--model", "cnn", "--filters", "4", "--hidden", "8", "--data", data, "--batch-size", "16",
         "--epochs", "1", "--device", "cpu", "--threads", "1", "--output", output]
    }

    func testBadPrecisionIsAUsageError() throws {
        for command in [["train"], ["bench", "train"], ["grow"], ["hpo"], ["search", "--space", "seed000-small"], ["selftest"]] {
            let r = try strata(command + ["--precision", "fp8"])
            XCTAssertEqual(r.status, 64, "\(command): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("--precision"), "\(command): \(r.stderr)")
        }
    }

    /// bf16 on the CPU: config.json records it, the header says it, a resume keeps it without
    /// the flag, and a resume with another precision is refused in one line (exit 64).
    func testBF16RunRecordsItsPrecisionAndResumes() throws {
        _ = try cpuBackend(.bf16)
        let output = try makeTemporaryDirectory(self) + "/run"
        let first = try strata(trainArguments(output) + ["--precision", "bf16"])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("bf16"), first.stdout)
        XCTAssertEqual(try ConfigFile.readTrainConfig(output + "/config.json").precision, .bf16)

        let refused = try strata(["train", "--resume", output, "--epochs", "2", "--precision", "fp32"])
        XCTAssertEqual(refused.status, 64, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("--precision fp32") && refused.stderr.contains("bf16"), refused.stderr)

        let resumed = try strata(["train", "--resume", output, "--epochs", "2", "--device", "cpu", "--threads", "1"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("resuming") && resumed.stdout.contains("bf16"), resumed.stdout)
        XCTAssertEqual(try RunDirectory(path: output).readMetrics().count, 2)
    }

    /// fp16 needs CUDA: on the CPU the backend factory refuses it in one line naming it.
    func testFP16OnTheCPUIsRefused() throws {
        if (try? BackendFactory.make(.cpu, precision: .fp16)) != nil {
            throw XCTSkip("this build's CPU backend does not refuse fp16 yet (the CPU bf16 work adds the refusal)")
        }
        let output = try makeTemporaryDirectory(self) + "/run"
        let r = try strata(trainArguments(output) + ["--precision", "fp16"])
        XCTAssertTrue(r.status == 1 || r.status == 64, "\(r.status): \(r.stderr)")
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("fp16"), r.stderr)
    }
}
