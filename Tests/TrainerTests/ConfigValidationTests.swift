import XCTest
import GPUTensor
@testable import Trainer
#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The cases of issue 10 (items 3, 5 and 6) at the library level: one validator, the same
/// message whichever door a configuration came through, checks before allocation, bounded reads.
/// The CLI's side (exit codes, one line) is scripts/bad-input-cases.sh, run by `make test`.
final class ConfigValidationTests: XCTestCase {
    let facts450 = DataFacts(trainCount: 450, validationCount: 50, testCount: 200, imageShape: .cifar, classes: 10)

    func config(_ change: (inout TrainConfig) -> Void = { _ in }) -> TrainConfig {
        var c = smallConfig(data: "unused")
        change(&c)
        return c
    }

    func firstMessage(_ c: TrainConfig, data: DataFacts? = nil, source: ConfigSource = .flags,
                      file: StaticString = #filePath, line: UInt = #line) -> String? {
        do {
            try ConfigValidation.check(c, data: data, memoryLimit: 1e12, source: source)
            return nil
        } catch let e as ConfigError {
            return e.description
        } catch {
            XCTFail("not a ConfigError: \(error)", file: file, line: line)
            return nil
        }
    }

    func testAValidConfigurationPasses() throws {
        XCTAssertNil(firstMessage(config(), data: facts450))
        XCTAssertEqual(ConfigValidation.issues(config(), data: facts450, memoryLimit: 1e12), [])
    }

    // Item 3: values from a config file or checkpoint that skipped the CLI's checks.
    func testBatchSizeZeroAndNegativeNameTheFlagTheFileOrTheCheckpoint() {
        let zero = config { $0.batchSize = 0 }
        XCTAssertEqual(firstMessage(zero), "--batch-size must be at least 2 (batch norm needs two images), got 0")
        XCTAssertEqual(firstMessage(zero, source: .file("bs0.json")),
                       "bs0.json: batchSize must be at least 2 (batch norm needs two images), got 0")
        XCTAssertEqual(firstMessage(zero, source: .checkpoint("c.safetensors", key: "config")),
                       "c.safetensors: metadata config: batchSize must be at least 2 (batch norm needs two images), got 0")
        XCTAssertEqual(firstMessage(config { $0.batchSize = -1 }, source: .file("c.json")),
                       "c.json: batchSize must be at least 2 (batch norm needs two images), got -1")
    }

    func testHugeHiddenLayerIsRefusedBeforeAnyAllocation() {
        let c = config { $0.model.cnn?.hidden = [4_000_000_000] }
        XCTAssertEqual(firstMessage(c, source: .file("h.json")), "h.json: model.cnn.hidden must each be in 1...1048576, got 4000000000")
        // Within the bounds but far beyond memory: the parameter estimate speaks.
        let big = config { $0.model.cnn?.hidden = [1_000_000] }
        let issues = ConfigValidation.issues(big, memoryLimit: 2e9)
        XCTAssertEqual(issues.map(\.field), ["model"])
        XCTAssertTrue(issues[0].problem.contains("parameters"), issues[0].problem)
    }

    func testBatchLargerThanTheTrainingSetIsSaidBeforeAllocating() {
        XCTAssertEqual(firstMessage(config { $0.batchSize = 100_000 }, data: facts450),
                       "--batch-size 100000 is larger than the 450 training images (after holding out 50 for validation): not one batch per epoch")
        // And a batch that fits the data but not the memory.
        let issues = ConfigValidation.issues(config { $0.batchSize = 1 << 20 }, memoryLimit: 1e9)
        XCTAssertTrue(issues.contains { $0.field == "batchSize" && $0.problem.contains("more than the") }, "\(issues)")
    }

    func testTrainingRunRefusesABadConfigurationInsteadOfTrapping() throws {
        let dir = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(dir, train: 40, test: 10)
        var c = smallConfig(data: dir)
        c.batchSize = 0
        let data = try RunData.load(c.data, seed: c.seed)
        XCTAssertThrowsError(try TrainingRun(config: c, backend: CPUBackend(), data: data)) { error in
            XCTAssertEqual("\(error)", "run configuration: batchSize must be at least 2 (batch norm needs two images), got 0")
        }
        c.batchSize = 1000
        XCTAssertThrowsError(try TrainingRun(config: c, backend: CPUBackend(), data: data)) { error in
            XCTAssertTrue("\(error)".contains("batchSize 1000 is larger than the 30 training images"), "\(error)")
        }
    }

    // Item 6: nonsense that was accepted.
    func testNonsenseValuesAreRefusedWithTheFlagNamed() {
        XCTAssertEqual(firstMessage(config { $0.optimizer.learningRate = .nan }), "--lr must be a finite number greater than 0, got nan")
        XCTAssertEqual(firstMessage(config { $0.optimizer.learningRate = -0.1 }), "--lr must be a finite number greater than 0, got -0.1")
        XCTAssertEqual(firstMessage(config { $0.optimizer.weightDecay = -1 }), "--weight-decay must be at least 0 (and finite), got -1.0")
        XCTAssertEqual(firstMessage(config { $0.schedule.warmupEpochs = -2 }), "--warmup must be at least 0 (and finite), got -2.0")
        XCTAssertEqual(firstMessage(config { $0.optimizer.momentum = 1.5 }), "--momentum must be in [0, 1), got 1.5")
        XCTAssertEqual(firstMessage(config { $0.epochs = 0 }), "--epochs must be at least 1, got 0")
        XCTAssertEqual(firstMessage(config { $0.optimizer = .rmsprop(alpha: 2) }), "--rmsprop-alpha must be in [0, 1), got 2.0")
        XCTAssertEqual(firstMessage(config { $0.optimizer = .rmsprop(epsilon: 0) }), "--rmsprop-eps must be a finite number greater than 0, got 0.0")
        XCTAssertEqual(firstMessage(config { $0.data.validationFraction = 1 }), "--validation-fraction must be in [0, 1), got 1.0")
    }

    func testKernelLargerThanTheImageIsRefused() {
        let c = config { $0.model.cnn?.kernel = 99 }
        XCTAssertEqual(firstMessage(c), "--kernel 99 is larger than the 32x32 images")
        XCTAssertEqual(firstMessage(c, source: .file("k.json")), "k.json: model.cnn.kernel 99 is larger than the 32x32 images")
    }

    func testEmptyTestSetAndWrongImageShapeAreRefused() {
        var facts = facts450
        facts.testCount = 0
        XCTAssertEqual(firstMessage(config(), data: facts), "--data has an empty test set")
        facts = facts450
        facts.imageShape = .fashionMNIST
        XCTAssertEqual(firstMessage(config(), data: facts), "--data is 3x32x32 but the dataset's images are 1x28x28")
    }

    func testGrowTargetAccuracyAndStartStages() {
        var g = GrowConfig(train: config(), startStages: 1, maxEpochs: 4, targetAccuracy: 7)
        XCTAssertEqual(ConfigValidation.issues(g).first?.description,
                       "targetAccuracy must be in (0, 1] (a fraction: 0.9 for 90%), got 7.0")
        g.targetAccuracy = 0.9
        g.startStages = 5
        XCTAssertEqual(ConfigValidation.issues(g).map(\.flag), ["--start-stages"])
        g.startStages = 1
        g.train.batchSize = 0
        XCTAssertThrowsError(try ConfigValidation.check(g, source: .file("g.json"))) { error in
            XCTAssertEqual("\(error)", "g.json: train.batchSize must be at least 2 (batch norm needs two images), got 0")
        }
    }

    func testCheckpointNormalizationMustBePositive() {
        XCTAssertThrowsError(try ConfigValidation.checkNormalization(mean: [0.5, 0.5, 0.5], std: [0, 1, 1], channels: 3,
                                                                     source: .checkpoint("s.safetensors", key: "strata"))) { error in
            XCTAssertEqual("\(error)", "s.safetensors: metadata strata: normalizationStd[0] must be a finite number greater than 0, got 0.0")
        }
        XCTAssertNoThrow(try ConfigValidation.checkNormalization(mean: [0.5], std: [0.2], channels: 1, source: .unnamed))
        XCTAssertThrowsError(try ConfigValidation.checkNormalization(mean: [0.5], std: [0.2], channels: 3, source: .unnamed))
    }

    func testCheckpointWithZeroStdIsRefusedByEvaluation() throws {
        let dir = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(dir, train: 40, test: 10)
        let c = smallConfig(data: dir, epochs: 1)
        let run = try TrainingRun(config: c, backend: CPUBackend(), data: try RunData.load(c.data, seed: c.seed))
        var file = try run.checkpoint()
        var info = try decodeJSON(CheckpointInfo.self, file.metadata["strata"], file: "x", key: "strata")
        info.normalizationStd = [1, 0, 1]
        file.metadata["strata"] = try jsonString(info)
        let path = dir + "/std0.safetensors"
        try file.write(to: path)
        XCTAssertThrowsError(try TrainingRun.forEvaluation(checkpoint: path, dataPath: nil, backend: CPUBackend(), batchSize: 8)) { error in
            XCTAssertEqual("\(error)", "\(path): metadata strata: normalizationStd[1] must be a finite number greater than 0, got 0.0")
        }
    }

    // Item 5: raw decoder dumps become one line naming the file and the field.
    func testConfigFileErrorsNameTheField() throws {
        let good = String(decoding: try JSONEncoder().encode(config()), as: UTF8.self)
        let wrongType = good.replacingOccurrences(of: "\"learningRate\":0.05", with: "\"learningRate\":\"fast\"")
        XCTAssertNotEqual(wrongType, good)
        XCTAssertThrowsError(try ConfigFile.decode(TrainConfig.self, from: Array(wrongType.utf8), file: "c.json")) { error in
            XCTAssertEqual("\(error)", "c.json: optimizer.learningRate must be a number, found a string")
        }
        XCTAssertThrowsError(try ConfigFile.decode(TrainConfig.self, from: Array("{\"epochs\": 3}".utf8), file: "c.json")) { error in
            XCTAssertEqual("\(error)", "c.json: modelName is missing")
        }
        XCTAssertThrowsError(try ConfigFile.decode(TrainConfig.self, from: Array("{not json".utf8), file: "c.json")) { error in
            XCTAssertEqual("\(error)", "c.json: is not valid JSON")
        }
        XCTAssertThrowsError(try ConfigFile.decode(GrowConfig.self, from: Array(good.utf8), file: "run/config.json",
                                                   other: (TrainConfig.self, "a strata train run's config"))) { error in
            XCTAssertEqual("\(error)", "run/config.json: is a strata train run's config")
        }
    }

    func testConfigFileIsValidatedOnRead() throws {
        let dir = try makeTemporaryDirectory(self)
        var c = config()
        c.batchSize = -1
        try writeBytes(Array(try JSONEncoder().encode(c)), to: dir + "/bs.json")
        XCTAssertThrowsError(try ConfigFile.readTrainConfig(dir + "/bs.json")) { error in
            XCTAssertEqual("\(error)", "\(dir)/bs.json: batchSize must be at least 2 (batch norm needs two images), got -1")
        }
        XCTAssertThrowsError(try ConfigFile.readTrainConfig("/dev/zero")) { error in
            XCTAssertEqual("\(error)", "/dev/zero: not a regular file (a device, FIFO or socket); refusing to read it")
        }
    }

    // RMSProp's alpha and epsilon: old files decode to the values runs always had.
    func testOptimizerConfigWithoutAlphaAndEpsilonDecodesToTheOldFixedValues() throws {
        let old = #"{"kind":"rmsprop","learningRate":0.0001,"momentum":0.9,"nesterov":false,"weightDecay":0.0001,"beta1":0.9,"beta2":0.999}"#
        let rms = try JSONDecoder().decode(OptimizerConfig.self, from: Data(old.utf8))
        XCTAssertEqual(rms, .rmsprop())
        XCTAssertEqual(rms.alpha, 0.9)
        XCTAssertEqual(rms.epsilon, 1e-7)
        let adam = try JSONDecoder().decode(OptimizerConfig.self, from: Data(#"{"kind":"adam","learningRate":0.001}"#.utf8))
        XCTAssertEqual(adam, .adam())
        let pytorch = OptimizerConfig.rmsprop(alpha: 0.99, epsilon: 1e-8)
        XCTAssertEqual(try JSONDecoder().decode(OptimizerConfig.self, from: try JSONEncoder().encode(pytorch)), pytorch)
    }

    // Bounded reads.
    func testSafeTensorsRefusesDevicesFIFOsAndDirectoriesWithoutReading() throws {
        XCTAssertThrowsError(try SafeTensors.read(from: "/dev/zero")) { error in
            XCTAssertEqual((error as? CheckpointError)?.reason, .unreadable)
            XCTAssertTrue("\(error)".contains("not a regular file"), "\(error)")
        }
        let dir = try makeTemporaryDirectory(self)
        let fifo = dir + "/pipe.safetensors"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertThrowsError(try SafeTensors.read(from: fifo)) { error in   // returns at once: no writer needed
            XCTAssertTrue("\(error)".contains("not a regular file"), "\(error)")
        }
        XCTAssertThrowsError(try SafeTensors.read(from: dir)) { error in
            XCTAssertEqual("\(error)", "\(dir): is a directory with no checkpoint in it (no best.safetensors or last.safetensors)")
        }
    }

    func testSafeTensorsChecksTheHeaderLengthAgainstTheFileSize() throws {
        let dir = try makeTemporaryDirectory(self)
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes[0] = 0x40; bytes[1] = 0x42; bytes[2] = 0x0F   // 1,000,000
        try writeBytes(bytes, to: dir + "/h.safetensors")
        XCTAssertThrowsError(try SafeTensors.read(from: dir + "/h.safetensors")) { error in
            XCTAssertEqual((error as? CheckpointError)?.reason, .badHeaderLength)
            XCTAssertTrue("\(error)".contains("header length 1000000 exceeds the 8 bytes"), "\(error)")
        }
    }

    func testEmptyDatasetFilesAreRefused() throws {
        var pixels: [UInt8] = [], labels: [Int32] = []
        XCTAssertThrowsError(try CIFAR10.parseBatch([], file: "test_batch.bin", pixels: &pixels, labels: &labels)) { error in
            XCTAssertEqual("\(error)", "test_batch.bin at byte 0: holds no images (the file is empty)")
        }
        let header: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28]
        XCTAssertThrowsError(try IDX.parseImages(header, file: "t10k")) { error in
            XCTAssertEqual("\(error)", "t10k at byte 4: holds no images (the header's count is 0)")
        }
    }

    func testDatasetPathThatIsARegularFileSaysSo() throws {
        let dir = try makeTemporaryDirectory(self)
        try writeBytes([1, 2, 3], to: dir + "/file")
        XCTAssertThrowsError(try DatasetLoader.detectKind(path: dir + "/file")) { error in
            XCTAssertEqual("\(error)", "\(dir)/file: is a regular file, not a dataset directory")
        }
        XCTAssertThrowsError(try DatasetLoader.detectKind(path: dir + "/missing")) { error in
            XCTAssertEqual("\(error)", "\(dir)/missing: dataset directory does not exist")
        }
    }

    func testGzipDoesNotTrustACorruptSizeAndStopsAtItsLimit() throws {
        // gzip of 1000 zero bytes with ISIZE patched to 4 GiB - 1: a clear error (zlib's length
        // check), after a buffer sized by what deflate can expand to, not by the 4 GiB claimed.
        let zeros = [UInt8](repeating: 0, count: 1000)
        var gz = gzip(zeros)
        let n = gz.count
        for i in 1...4 { gz[n - i] = 0xFF }
        XCTAssertThrowsError(try Gzip.decompress(gz, file: "z.gz")) { error in
            XCTAssertEqual((error as? DatasetError)?.reason, .badCompression)
        }
        XCTAssertEqual(try Gzip.decompress(gzip(zeros), file: "z.gz", limit: 1000), zeros)
        XCTAssertThrowsError(try Gzip.decompress(gzip(zeros), file: "z.gz", limit: 100)) { error in
            XCTAssertTrue("\(error)".contains("decompresses to more than 100 bytes"), "\(error)")
        }
    }

    func testRunDirectoryUnderARegularFileSaysWhichComponent() throws {
        let dir = try makeTemporaryDirectory(self)
        try writeBytes([1], to: dir + "/afile")
        XCTAssertThrowsError(try RunDirectory(path: dir + "/afile/run").create()) { error in
            XCTAssertEqual("\(error)", "\(dir)/afile/run cannot create the run directory: \(dir)/afile is a regular file")
        }
    }

    func testPredictAgreesWithEvaluate() throws {
        let dir = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(dir, train: 40, test: 21)
        let c = smallConfig(data: dir, epochs: 1)
        let run = try TrainingRun(config: c, backend: CPUBackend(), data: try RunData.load(c.data, seed: c.seed))
        try run.trainEpoch()
        let test = try XCTUnwrap(run.data.test)
        let p = try run.predict(test)
        XCTAssertEqual(p.count, 21)
        XCTAssertEqual(p.labels, test.labels.map { Int($0) })
        XCTAssertEqual(p.accuracy, try run.evaluate(test).accuracy, accuracy: 1e-12)
    }

    // strata predict's files.
    func testPredictionsCSVAndNPY() throws {
        let p = Predictions(classes: 3, logits: [0, 2, 1, 5, -1, 5], labels: [1, 2])
        XCTAssertEqual(p.predicted, [1, 0])
        XCTAssertEqual(p.accuracy, 0.5)
        XCTAssertEqual(p.csv(), "index,label,predicted,logit_0,logit_1,logit_2\n0,1,1,0.0,2.0,1.0\n1,2,0,5.0,-1.0,5.0\n")
        let npy = p.npy()
        XCTAssertEqual(Array(npy[0..<8]), [0x93] + Array("NUMPY".utf8) + [1, 0])
        let headerLength = Int(npy[8]) | Int(npy[9]) << 8
        XCTAssertEqual((10 + headerLength) % 64, 0)
        let header = String(decoding: npy[10..<(10 + headerLength)], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{'descr': [('logits', '<f4', (3,)), ('predicted', '<i8'), ('label', '<i8')], 'fortran_order': False, 'shape': (2,), }"), header)
        XCTAssertEqual(npy.count, 10 + headerLength + 2 * (3 * 4 + 16))
        // The second record's predicted (int64 after three floats) is 0, its label 2.
        let second = 10 + headerLength + 28
        XCTAssertEqual(Array(npy[(second + 12)..<(second + 28)]), [0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0])
    }
}

