import XCTest
import GPUTensor
@testable import Trainer

/// Several trials per GPU (`DeviceSharing`, `--trials-per-device`): the per-trial memory
/// estimate, how many fit a card, the cards of the worker slots, the flag's refusals, the
/// workers it implies, and that each worker process gets its slot's environment.
final class DeviceSharingTests: XCTestCase {
    func testTheEstimateCountsParametersOptimizerStateAndActivationsAtTheBatchSize() throws {
        // fc 4 -> 3: 15 parameters; per image a 4-wide input and a 3-wide output (and its gradient).
        let model = Model(inputShape: [4], stages: [], classifier: [Dense(name: "fc", inFeatures: 4, outFeatures: 3)])
        XCTAssertEqual(model.parameterCount, 15)
        let adam = try OptimizerConfig.named("adam", learningRate: 0.001)
        // 15 x (value, gradient, exp_avg, exp_avg_sq) + 10 x (input 4 + output 3 + its gradient 3), FP32.
        XCTAssertEqual(TrialMemory.estimate(model: model, optimizer: adam, batchSize: 10), (15 * 4 + 10 * 10) * 4 + TrialMemory.processOverhead)
        XCTAssertEqual(TrialMemory.estimate(parameters: 15, optimizerSlots: 0, activationsPerImage: 3, inputPerImage: 4, batchSize: 1),
                       (15 * 2 + 10) * 4 + TrialMemory.processOverhead)

        // A search trial: linear in the batch size, two Adam slots against RMSprop's one, and the
        // largest of a study's trials is its widest at its biggest batch.
        let input = ImageShape(channels: 3, height: 32, width: 32)
        func trial(_ batch: Int, _ optimizer: String = "adam", filters: Int = 8) -> TrialConfig {
            TrialConfig(convLayers: 2, filters: filters, hidden: [16], lr: 0.01, batchSize: batch, epochs: 1, optimizer: optimizer)
        }
        let e8 = try TrialMemory.estimate(trial: trial(8), input: input, classes: 10)
        let e16 = try TrialMemory.estimate(trial: trial(16), input: input, classes: 10)
        let e32 = try TrialMemory.estimate(trial: trial(32), input: input, classes: 10)
        XCTAssertGreaterThan(e16, e8)
        XCTAssertEqual(e32 - e16, 2 * (e16 - e8))
        let spec = try trial(8).modelSpec(input: input, classes: 10)
        let parameters = try Model(spec: spec).parameterCount
        XCTAssertEqual(e8 - (try TrialMemory.estimate(trial: trial(8, "rmsprop"), input: input, classes: 10)), parameters * 4)
        let data = DataConfig(kind: "cifar10", path: "/nonexistent")
        let largest = try TrialMemory.largest([trial(8), trial(32, filters: 16), trial(16)], data: data)
        XCTAssertEqual(largest, try TrialMemory.estimate(trial: trial(32, filters: 16), input: input, classes: 100))
        // MNIST kinds are one 28x28 channel: smaller.
        XCTAssertLessThan(try TrialMemory.largest([trial(32)], data: DataConfig(kind: "fashion-mnist", path: "/x")),
                          try TrialMemory.largest([trial(32)], data: data))
    }

    func testTrialsThatFitAreCappedAtEight() {
        let gib = 1 << 30
        XCTAssertEqual(DeviceSharing.fitting(freeBytes: 10 * gib, perTrialBytes: gib), 8)   // 80% of 10 GiB
        XCTAssertEqual(DeviceSharing.fitting(freeBytes: 4 * gib, perTrialBytes: gib), 3)
        XCTAssertEqual(DeviceSharing.fitting(freeBytes: 80 * gib, perTrialBytes: gib), 8)
        XCTAssertEqual(DeviceSharing.fitting(freeBytes: gib / 2, perTrialBytes: gib), 1, "at least one: the trial says if it does not fit")
    }

    func testWorkerSlotsGoRoundRobinOverTheCards() throws {
        let gib = 1 << 30
        let gpus = [GPUMemory(index: 0, freeBytes: 70 * gib, totalBytes: 80 * gib), GPUMemory(index: 1, freeBytes: 5 * gib, totalBytes: 80 * gib)]
        // Default: as many as fit the card with the least free memory.
        let s = try XCTUnwrap(try DeviceSharing.plan(device: "cuda", requested: nil, hasCUDA: true, gpus: gpus, visible: nil, perTrialBytes: gib))
        XCTAssertEqual(s.devices, ["0", "1"])
        XCTAssertEqual(s.trialsPerDevice, 4)
        XCTAssertEqual(s.workers, 8)
        XCTAssertEqual((0..<5).map { s.device(ofSlot: $0) }, ["0", "1", "0", "1", "0"])
        XCTAssertEqual(s.environment(ofSlot: 3), ["CUDA_VISIBLE_DEVICES=1", "CUDA_DEVICE_ORDER=PCI_BUS_ID"])
        XCTAssertEqual(s.perTrialBytes, gib)
        // Given: that many; auto is CUDA when a card is there.
        let given = try XCTUnwrap(try DeviceSharing.plan(device: "auto", requested: 3, hasCUDA: true, gpus: gpus, visible: nil, perTrialBytes: gib))
        XCTAssertEqual(given.trialsPerDevice, 3)
        XCTAssertEqual(given.workers, 6)
        XCTAssertNil(given.perTrialBytes)
        // CUDA_VISIBLE_DEVICES names the cards (in its own numbering: no bus order forced).
        let visible = try XCTUnwrap(try DeviceSharing.plan(device: "cuda", requested: 2, hasCUDA: true, gpus: gpus, visible: "1, 0", perTrialBytes: gib))
        XCTAssertEqual(visible.devices, ["1", "0"])
        XCTAssertEqual(visible.environment(ofSlot: 0), ["CUDA_VISIBLE_DEVICES=1"])
        // cuda:N: every worker on that card as its job says; no renumbering environment.
        let one = try XCTUnwrap(try DeviceSharing.plan(device: "cuda:1", requested: nil, hasCUDA: true, gpus: gpus, visible: nil, perTrialBytes: gib))
        XCTAssertEqual(one.trialsPerDevice, 4)
        XCTAssertEqual(one.workers, 4)
        XCTAssertEqual(one.environment(ofSlot: 2), [])
        // nvidia-smi missing: nothing known, no sharing unless asked for (then on the visible cards, or card 0).
        XCTAssertNil(try DeviceSharing.plan(device: "cuda", requested: nil, hasCUDA: true, gpus: nil, visible: nil, perTrialBytes: gib))
        XCTAssertEqual(try DeviceSharing.plan(device: "cuda", requested: 2, hasCUDA: true, gpus: nil, visible: nil, perTrialBytes: gib)?.devices, ["0"])
        // No GPU: no sharing unless asked for, then one line.
        XCTAssertNil(try DeviceSharing.plan(device: "auto", requested: nil, hasCUDA: true, gpus: [], visible: nil, perTrialBytes: gib))
        XCTAssertNil(try DeviceSharing.plan(device: "auto", requested: nil, hasCUDA: false, gpus: nil, visible: nil, perTrialBytes: gib))
        XCTAssertNil(try DeviceSharing.plan(device: "cpu", requested: nil, hasCUDA: true, gpus: gpus, visible: nil, perTrialBytes: gib))
        XCTAssertThrowsError(try DeviceSharing.plan(device: "auto", requested: 2, hasCUDA: true, gpus: [], visible: nil, perTrialBytes: gib)) {
            XCTAssertEqual("\($0)", "--trials-per-device 2: no CUDA GPU was found (nvidia-smi lists none), so the study runs on the CPU")
        }
        XCTAssertThrowsError(try DeviceSharing.plan(device: "cuda", requested: 2, hasCUDA: false, gpus: nil, visible: nil, perTrialBytes: gib)) {
            XCTAssertTrue("\($0)".hasPrefix("--trials-per-device 2: this strata was built without CUDA"), "\($0)")
        }
    }

    func testTheFlagIsRefusedInOneLineWhereItMeansNothing() throws {
        XCTAssertNil(DeviceSharing.problem(trialsPerDevice: nil, device: "cpu", hasCUDA: false))
        XCTAssertNil(DeviceSharing.problem(trialsPerDevice: 4, device: "auto", hasCUDA: true))
        XCTAssertNil(DeviceSharing.problem(trialsPerDevice: 8, device: "cuda:0", hasCUDA: true))
        XCTAssertEqual(DeviceSharing.problem(trialsPerDevice: 0, device: "cuda", hasCUDA: true), "--trials-per-device must be in 1...8, not 0")
        XCTAssertEqual(DeviceSharing.problem(trialsPerDevice: 9, device: "cuda", hasCUDA: true), "--trials-per-device must be in 1...8, not 9")
        XCTAssertEqual(DeviceSharing.problem(trialsPerDevice: 2, device: "cpu", hasCUDA: true),
                       "--trials-per-device shares a GPU between trials; this study runs on the CPU (--device cpu): use --workers")
        XCTAssertEqual(DeviceSharing.problem(trialsPerDevice: 2, device: "auto", hasCUDA: false),
                       "--trials-per-device shares a GPU between trials; this strata was built without CUDA, so trials run on the CPU: use --workers")
        for problem in [DeviceSharing.problem(trialsPerDevice: 2, device: "cpu", hasCUDA: true)!] { XCTAssertFalse(problem.contains("\n")) }
        // A CPU study: withSharing refuses the flag and leaves the request alone without it.
        var request = ExecutionRequest()
        XCTAssertNil(try request.withSharing(device: "cpu", perTrialBytes: { XCTFail("no estimate for the CPU"); return 0 }).sharing)
        request.trialsPerDevice = 2
        XCTAssertThrowsError(try request.withSharing(device: "cpu", perTrialBytes: { 0 }))
        // Ray: the cluster's cards are not asked of this machine; each trial takes 1/N of one.
        if BackendFactory.hasCUDA {
            request.engine = "ray"
            let ray = try request.withSharing(device: "cuda", perTrialBytes: { XCTFail("no estimate on Ray"); return 0 })
            XCTAssertEqual(ray.sharing, DeviceSharing(devices: [], trialsPerDevice: 2))
            request.trialsPerDevice = nil
            XCTAssertNil(try request.withSharing(device: "cuda", perTrialBytes: { 0 }).sharing)
        }
    }

    func testNvidiaSMIsAnswerIsParsedOrRefused() throws {
        XCTAssertEqual(try GPUQuery.parse("0, 81000, 81559\n1, 500, 81559\n\n"),
                       [GPUMemory(index: 0, freeBytes: 81000 << 20, totalBytes: 81559 << 20),
                        GPUMemory(index: 1, freeBytes: 500 << 20, totalBytes: 81559 << 20)])
        XCTAssertEqual(try GPUQuery.parse(""), [])
        XCTAssertThrowsError(try GPUQuery.parse("0, [N/A], 81559"))
        XCTAssertThrowsError(try GPUQuery.parse("0, 900, 800"))
        XCTAssertNil(GPUQuery.query(tool: "/nonexistent/nvidia-smi"))
    }

    /// Workers default to cards x trials per card for a search; --workers wins; an hpo keeps its
    /// default of 1 unless --trials-per-device is given; a resumed study keeps its stored workers
    /// unless --trials-per-device is given now.
    func testWorkersFollowTheSharingUnlessToldOtherwise() {
        let sharing = DeviceSharing(devices: ["0", "1"], trialsPerDevice: 3)
        var search = ExecutionRequest(threads: 12)
        search.sharing = sharing
        XCTAssertEqual(search.resolve(was: nil).workers, 6)
        XCTAssertEqual(search.resolve(was: nil).threadsPerTrial, 2)
        XCTAssertEqual(search.resolve(was: nil).sharing, sharing)
        let stored = StudyExecution(workers: 5, threads: 12, threadsPerTrial: 2, engine: "local")
        XCTAssertEqual(search.resolve(was: stored).workers, 5)
        search.trialsPerDevice = 3
        XCTAssertEqual(search.resolve(was: stored).workers, 6)
        search.workers = 4
        XCTAssertEqual(search.resolve(was: stored).workers, 4)
        var hpo = ExecutionRequest(threads: 12, defaultWorkers: 1)
        hpo.sharing = sharing
        XCTAssertEqual(hpo.resolve(was: nil).workers, 1)
        hpo.trialsPerDevice = 3
        XCTAssertEqual(hpo.resolve(was: nil).workers, 6)
        // Not stored: the cards belong to the machine of each session.
        let encoded = String(decoding: try! JSONEncoder().encode(search.resolve(was: nil)), as: UTF8.self)
        XCTAssertFalse(encoded.contains("sharing") || encoded.contains("devices"), encoded)
        var execution = search.resolve(was: nil)
        execution.sharing = nil
        XCTAssertEqual(try! JSONDecoder().decode(StudyExecution.self, from: Data(encoded.utf8)), execution)
    }

    /// Each worker process gets the environment of its slot (the lowest free one), cold and warm.
    func testEachWorkerProcessGetsItsSlotsEnvironment() throws {
        let root = try makeTemporaryDirectory(self)
        let script = root + "/worker.sh"
        // Warm: a job path per line on descriptor 3; cold: the job path as the argument.
        try writeBytes(Array("""
            #!/bin/sh
            one() { echo "$TEST_SLOT" > "$(dirname "$1")/slot"; }
            if [ -n "$1" ]; then one "$1"; exit 0; fi
            while read -r path <&3; do one "$path"; echo "done 0" >&3; done

            """.utf8), to: script)
        XCTAssertEqual(chmod(script, 0o755), 0)
        for warm in [false, true] {
            let executor = ProcessExecutor(executable: "/bin/sh", arguments: [script], workers: 2, warm: warm)
            executor.slotEnvironment = { ["TEST_SLOT=\($0)"] }
            let folder = root + (warm ? "/warm" : "/cold")
            func job(_ id: String) throws -> TrialJob {
                let dir = folder + "/" + id
                try makeSearchFolder(dir)
                return TrialJob(id: id, trial: nil, data: DataConfig(path: "/x"), device: "cuda", threads: 1, directory: dir, donor: nil,
                                reuseLayers: 0, prefixPath: nil, prefixKey: nil, cache: false, cacheBudget: 0, attempt: 1)
            }
            func slot(_ id: String) throws -> String {
                String(decoding: try FileSystem.readFile(folder + "/" + id + "/slot"), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            func finish(_ n: Int) throws {
                var got = 0
                let deadline = monotonicNow() + 30
                while got < n && monotonicNow() < deadline { got += try executor.poll(timeout: 0.2).count }
                XCTAssertEqual(got, n)
            }
            try executor.submit(try job("a"))
            try executor.submit(try job("b"))
            try finish(2)
            XCTAssertEqual(Set([try slot("a"), try slot("b")]), ["0", "1"], warm ? "warm" : "cold")
            try executor.submit(try job("c"))
            try finish(1)
            XCTAssertEqual(try slot("c"), "0", "the lowest free slot, or the idle worker of slot 0")
            XCTAssertEqual(executor.processesStarted, warm ? 2 : 3)
        }
    }
}
