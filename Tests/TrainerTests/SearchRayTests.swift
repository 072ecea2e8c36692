import XCTest
@testable import Trainer

/// `--engine ray` against a local Ray head on 127.0.0.1 with 2 CPUs: the same 6-trial search with
/// reuse gives the same journal metrics as the local engine (bit-identical on the CPU), on warm
/// actors and with a Ray task per trial (`STRATA_COLD_WORKERS=1`), and no activation cache comes back.
/// Needs a Python with `ray` (`STRATA_RAY_PYTHON`, default python3) and the strata binary next to
/// the test bundle; skipped otherwise.
final class SearchRayTests: XCTestCase {
    func testRayEngineGivesTheLocalEnginesJournal() throws {
        let python = ProcessInfo.processInfo.environment["STRATA_RAY_PYTHON"] ?? "python3"
        let strata = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("strata").path
        guard FileManager.default.isExecutableFile(atPath: strata) else { throw XCTSkip("no strata binary next to the tests") }
        guard (try? runTool(python, ["-c", "import ray"])) == 0 else { throw XCTSkip("\(python) has no ray (set STRATA_RAY_PYTHON)") }
        let ray = URL(fileURLWithPath: python).deletingLastPathComponent().appendingPathComponent("ray").path
        let rayCLI = FileManager.default.isExecutableFile(atPath: ray) ? ray : "ray"

        let data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 160, test: 40)
        let space = data + "/space.json"
        try Data(#"{"grid": {"conv_layers": [1,2,3], "filters": [4], "hidden": [[8], [6]], "lr": [0.01], "batch_size": [16]}, "epochs": 2}"#.utf8)
            .write(to: URL(fileURLWithPath: space))
        let port = 20000 + Int(getpid() % 20000)
        XCTAssertEqual(try runTool(rayCLI, ["start", "--head", "--node-ip-address", "127.0.0.1", "--port", "\(port)", "--num-cpus", "2",
                                        "--include-dashboard", "false", "--disable-usage-stats"]), 0)
        defer { _ = try? runTool(rayCLI, ["stop"]) }

        let common = ["search", "--space", space, "--reuse", "best-prefix", "--data", data, "--validation-fraction", "0.25",
                      "--workers", "2", "--threads", "2"]
        let local = data + "/local"
        XCTAssertEqual(try runTool(strata, common + ["--output", local]), 0)
        let a = try SearchJournal(path: local + "/journal.jsonl").settled()
        XCTAssertEqual(a.count, 6)
        // The same events for every trial, in the same order (proposed, started, its end).
        func events(_ dir: String) throws -> [String: [StudyEvent.Kind]] {
            Dictionary(grouping: try SearchJournal(path: dir + "/journal.jsonl").read(), by: \.id).mapValues { $0.map(\.event) }
        }
        // The executed/skipped split depends on whether a sibling had already cached the trial's
        // frozen prefix (prefixes/<key>.activations); the work in all, and every result, do not.
        func metrics(_ r: [StudyEvent]) -> [String: String] {
            Dictionary(uniqueKeysWithValues: r.map { ($0.id, "\($0.status) \($0.donor ?? "-") \(String(describing: $0.validationLoss)) "
                + "\(String(describing: $0.validationAccuracy)) \(String(describing: $0.testAccuracy)) \(($0.flopsExecuted ?? 0) + ($0.flopsSkipped ?? 0))") })
        }
        // Warm actors (the default), then a Ray task per trial (STRATA_COLD_WORKERS=1).
        for cold in [false, true] {
            let onRay = data + (cold ? "/ray-cold" : "/ray")
            if cold { setenv("STRATA_COLD_WORKERS", "1", 1) }
            defer { unsetenv("STRATA_COLD_WORKERS") }
            XCTAssertEqual(try runTool(strata, common + ["--output", onRay, "--engine", "ray", "--ray-address", "127.0.0.1:\(port)",
                                                     "--python", python]), 0)
            let b = try SearchJournal(path: onRay + "/journal.jsonl").settled()
            XCTAssertEqual(b.count, 6)
            XCTAssertEqual(try events(onRay), try events(local), cold ? "cold" : "warm")
            let log = String(decoding: try FileSystem.readFile(onRay + "/ray.log"), as: UTF8.self)
            XCTAssertTrue(log.contains(cold ? "a Ray task per trial" : "warm actors"), log)
            XCTAssertEqual(metrics(b), metrics(a))
            XCTAssertEqual(b.filter { $0.donor != nil }.count, 4)
            // The trials' files came back from the workers: the report and a resume work as after a local search.
            XCTAssertTrue(FileManager.default.fileExists(atPath: onRay + "/trials/\(b[5].id)/run/best.safetensors"))
            XCTAssertTrue(FileManager.default.fileExists(atPath: onRay + "/report.html"))
            // Activation caches stay on the Ray nodes (large, rebuilt where needed).
            let back = FileManager.default.enumerator(atPath: onRay + "/trials")?.compactMap { $0 as? String } ?? []
            XCTAssertEqual(back.filter { $0.hasSuffix(".activations") }, [], cold ? "cold" : "warm")
            XCTAssertFalse(back.isEmpty)
        }
    }

}
