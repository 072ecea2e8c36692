import XCTest
@testable import Trainer

/// `--engine ray` against a local Ray head on 127.0.0.1 with 2 CPUs: the same 6-trial search with
/// reuse gives the same journal metrics as the local engine (bit-identical on the CPU).
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
        let local = data + "/local", onRay = data + "/ray"
        XCTAssertEqual(try runTool(strata, common + ["--output", local]), 0)
        XCTAssertEqual(try runTool(strata, common + ["--output", onRay, "--engine", "ray", "--ray-address", "127.0.0.1:\(port)",
                                                 "--python", python]), 0)
        let a = try SearchJournal(path: local + "/journal.jsonl").settled(), b = try SearchJournal(path: onRay + "/journal.jsonl").settled()
        // The same events for every trial, in the same order (proposed, started, its end).
        func events(_ dir: String) throws -> [String: [StudyEvent.Kind]] {
            Dictionary(grouping: try SearchJournal(path: dir + "/journal.jsonl").read(), by: \.id).mapValues { $0.map(\.event) }
        }
        XCTAssertEqual(try events(onRay), try events(local))
        XCTAssertEqual(a.count, 6)
        XCTAssertEqual(b.count, 6)
        // The executed/skipped split depends on whether a sibling had already cached the trial's
        // frozen prefix (prefixes/<key>.activations); the work in all, and every result, do not.
        func metrics(_ r: [StudyEvent]) -> [String: String] {
            Dictionary(uniqueKeysWithValues: r.map { ($0.id, "\($0.status) \($0.donor ?? "-") \(String(describing: $0.validationLoss)) "
                + "\(String(describing: $0.validationAccuracy)) \(String(describing: $0.testAccuracy)) \(($0.flopsExecuted ?? 0) + ($0.flopsSkipped ?? 0))") })
        }
        XCTAssertEqual(metrics(b), metrics(a))
        XCTAssertEqual(b.filter { $0.donor != nil }.count, 4)
        // The trials' files came back from the workers: the report and a resume work as after a local search.
        XCTAssertTrue(FileManager.default.fileExists(atPath: onRay + "/trials/\(b[5].id)/run/best.safetensors"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: onRay + "/report.html"))
    }

}
