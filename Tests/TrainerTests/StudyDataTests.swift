import XCTest
@testable import Trainer

/// Journals and session files are checked as data: one problem per line of the error, naming
/// the file and the line; values that would overflow a formatter never reach one.
final class StudyDataTests: XCTestCase {
    let config = TrialConfig(convLayers: 2, filters: 4, hidden: [8], lr: 0.01, batchSize: 8, epochs: 3)

    func line(_ edit: (inout [String: Any]) -> Void) -> String {
        let donorConfig = config.withConvLayers(1)
        var d: [String: Any] = [
            "id": config.id, "config": ["model": "cnn", "conv_layers": 2, "filters": 4, "kernel": 3, "hidden": [8], "lr": 0.01,
                                        "batch_size": 8, "epochs": 3, "optimizer": "adam", "seed": 0],
            "donor": donorConfig.id, "reuse_layers": 1, "status": "finished", "validation_loss": 1.2, "validation_accuracy": 0.5,
            "test_accuracy": 0.4, "seconds": 2.5, "wall_seconds": 3, "flops_executed": 1e9, "flops_skipped": 1e8, "epochs": 3,
            "attempt": 1]
        edit(&d)
        return String(decoding: try! JSONSerialization.data(withJSONObject: d, options: [.sortedKeys]), as: UTF8.self)
    }

    func donorLine() -> String {
        let c = config.withConvLayers(1)
        // A line of the format before `StudyEvent`: the trial's state, `id` and `status`.
        return #"{"attempt":1,"config":"# + SearchJSON.canonical(c) + #","donor":null,"epochs":3,"error":null,"flops_executed":10,"#
            + #""flops_skipped":0,"id":""# + c.id + #"","prefix":null,"reuse_layers":0,"seconds":2,"status":"finished","#
            + #""test_accuracy":0.3,"validation_accuracy":0.4,"validation_loss":1.5,"wall_seconds":3}"#
    }

    func problems(_ lines: [String]) -> [String] {
        do {
            _ = try SearchJournal.parse(Array((lines.joined(separator: "\n") + "\n").utf8), file: "j.jsonl")
            return []
        } catch let e as StudyDataProblems { return e.lines } catch { return ["unexpected \(error)"] }
    }

    func testAValidJournalReads() throws {
        let records = try SearchJournal.parse(Array((donorLine() + "\n" + line { _ in } + "\n").utf8), file: "j.jsonl")
        XCTAssertEqual(records.count, 2)
        XCTAssertEqual(records[1].donor, records[0].id)
    }

    func testEachBadValueIsOneLineNamingFileAndLine() {
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("seconds 1e+308", { $0["seconds"] = 1e308 }),
            ("wall_seconds -1", { $0["wall_seconds"] = -1.0 }),
            ("validation_accuracy 1.5 is not in [0, 1]", { $0["validation_accuracy"] = 1.5 }),
            ("test_accuracy -0.1", { $0["test_accuracy"] = -0.1 }),
            ("a finished trial has no validation_accuracy", { $0["validation_accuracy"] = NSNull() }),
            ("is not the id of its config", { $0["id"] = "0123456789abcdef" }),
            ("donor ffffffffffffffff is not a trial", { $0["donor"] = "ffffffffffffffff" }),
            ("flops_executed 1e+300", { $0["flops_executed"] = 1e300 }),
            ("epochs 9 is not in 0...3", { $0["epochs"] = 9 }),
            ("attempt 0", { $0["attempt"] = 0 }),
            ("config.lr", { c in var cfg = c["config"] as! [String: Any]; cfg["lr"] = -1.0; c["config"] = cfg }),
            ("is not valid", { $0["seconds"] = "soon" }),
            ("is not valid", { $0.removeValue(forKey: "status") }),
        ]
        for (expected, edit) in cases {
            let found = problems([donorLine(), line(edit)])
            XCTAssertEqual(found.count, 1, "\(expected): \(found)")
            XCTAssertTrue(found.first?.hasPrefix("j.jsonl line 2: ") ?? false, "\(found)")
            XCTAssertTrue(found.first?.contains(expected) ?? false, "\(expected) not in \(found)")
        }
        // Every problem of the file at once, one line each.
        let many = problems([donorLine(), line { $0["seconds"] = 1e308 }, "{", line { $0["validation_accuracy"] = 2.0 }])
        XCTAssertEqual(many.map { $0.prefix(15) }, ["j.jsonl line 2:", "j.jsonl line 3:", "j.jsonl line 4:"])
    }

    func testAResumeRefusesAJournalWithAHugeNumberInsteadOfTrapping() throws {
        let dir = try makeTemporaryDirectory(self)
        let space = SearchSpace(name: "t", convLayers: [1], filters: [4], hidden: [[8]], lr: [0.01], batchSize: [8], epochs: 1)
        let settings = SearchSettings(space: space, reuse: .none, data: DataConfig(kind: "cifar10", path: "/x", augment: false))
        try SearchJSON.write(settings, to: dir + "/search.json")
        try (donorLine().replacingOccurrences(of: #""seconds":2"#, with: #""seconds":1e+308"#) + "\n")
            .write(toFile: dir + "/journal.jsonl", atomically: true, encoding: .utf8)
        let engine = SearchEngine(directory: SearchDirectory(path: dir), settings: settings,
                                  executor: InProcessExecutor(body: { fakeOutcome($0) }), threadsPerTrial: 1)
        XCTAssertThrowsError(try engine.run()) { XCTAssertTrue("\($0)".contains("journal.jsonl line 1: seconds 1e+308"), "\($0)") }
        XCTAssertThrowsError(try SearchDirectory(path: dir).writeSummaryAndReport())
    }

    func testSessionsAreChecked() throws {
        XCTAssertEqual(try StudySession.parse(Array(#"{"seconds":3,"trials":2}"#.utf8 + [0x0A]), file: "s").first?.seconds, 3)
        XCTAssertThrowsError(try StudySession.parse(Array(#"{"seconds":1e308,"trials":2}"#.utf8 + [0x0A]), file: "s")) {
            XCTAssertTrue("\($0)".hasPrefix("s line 1: seconds"), "\($0)")
        }
        XCTAssertThrowsError(try StudySession.parse(Array(#"{"seconds":1,"trials":-2}"#.utf8 + [0x0A]), file: "s"))
    }

    /// Lines of the hpo's older format are converted and checked as events are (problems name
    /// the event's fields).
    func testHPOJournalLinesAreChecked() throws {

        func parse(_ lines: [String], trials: Int? = 4) throws -> [StudyEvent] {
            try HPORun.parseJournal(Array((lines.joined(separator: "\n") + "\n").utf8), file: "h.jsonl", trials: trials)
        }
        // The encoding of HPOValue may differ: take a line the event writes, in the old format.
        let good = try legacyLine(StudyEvent.hpoTrial(0, .finished, params: ["lr": .float(0.01)], values: [-0.5],
                                                      validationAccuracy: 0.5, seconds: 1))

        XCTAssertEqual(try parse([good]).count, 1)
        func bad(_ from: String, _ to: String, _ expected: String, trials: Int? = 4) {
            let edited = good.replacingOccurrences(of: from, with: to)
            XCTAssertNotEqual(edited, good, from)
            XCTAssertThrowsError(try parse([good, edited], trials: trials)) {
                XCTAssertTrue("\($0)".hasPrefix("h.jsonl line 2: ") && "\($0)".contains(expected), "\(expected): \($0)")
            }
        }
        bad(#""seconds":1"#, #""seconds":1e308"#, "seconds 1e+308")
        bad(#""validationAccuracy":0.5"#, #""validationAccuracy":7"#, "validation_accuracy 7.0 is not in [0, 1]")
        bad(#""trial":0"#, #""trial":9"#, "trial 9 is not a trial number")
        bad(#""values":[-0.5]"#, #""values":["inf"]"#, "values[0] inf is not a finite number")
        bad(#""values":[-0.5]"#, #""values":[]"#, "a finished trial has no values")
        bad(#""status":"complete""#, #""status":"done""#, "is not valid")
        let final = #"{"epochs":3,"event":"final","params":{},"status":"finished","testAccuracy":0.5,"trial":0}"#
        XCTAssertEqual(try parse([good, final]).count, 2)
        XCTAssertThrowsError(try parse([good, final.replacingOccurrences(of: #""trial":0"#, with: #""trial":3"#)])) {
            XCTAssertTrue("\($0)".contains("line 2: the final names trial 3, which no earlier line proposed"), "\($0)")
        }
        XCTAssertThrowsError(try parse([good, final.replacingOccurrences(of: "0.5", with: "1e308")])) {
            XCTAssertTrue("\($0)".contains("test_accuracy 1e+308"), "\($0)")
        }
        XCTAssertThrowsError(try parse([good, #"{"event":"party"}"#])) { XCTAssertTrue("\($0)".contains("unknown event 'party'")) }
        // A last line cut by a kill (no newline) is not a problem.
        XCTAssertEqual(try HPORun.parseJournal(Array((good + "\n" + #"{"tri"#).utf8), file: "h", trials: 4).count, 1)
    }

    /// The journal's own format (`StudyEvent` lines), one checker for search's and hpo's events:
    /// both read back as they were written, each bad field one line naming it, a line of a newer
    /// format refused by name, and a search journal refuses an hpo's event.
    func testStudyEventLinesAreChecked() throws {
        let records = try SearchJournal.parse(Array((donorLine() + "\n" + line { _ in } + "\n").utf8), file: "j.jsonl")
        let events = records.map(\.line)
        XCTAssertTrue(events.allSatisfy { $0.contains(#""format":1"#) && $0.contains(#""event":"finished""#) }, "\(events)")
        XCTAssertEqual(try SearchJournal.parse(Array((events.joined(separator: "\n") + "\n").utf8), file: "j.jsonl"), records)
        func eventProblems(_ from: String, _ to: String) -> [String] {
            let edited = events[1].replacingOccurrences(of: from, with: to)
            XCTAssertNotEqual(edited, events[1], from)
            return problems([events[0], edited])
        }
        for (from, to, expected) in [(#""seconds":2.5"#, #""seconds":1e308"#, "j.jsonl line 2: seconds 1e+308"),
                                     (#""validation_accuracy":0.5"#, #""validation_accuracy":1.5"#, "validation_accuracy 1.5 is not in [0, 1]"),
                                     (#""reuse_layers":1"#, #""reuse_layers":5"#, "reuse_layers 5 does not fit"),
                                     (#""format":1"#, #""format":2"#, "format 2 is not one this strata reads (1): a newer strata wrote it"),
                                     (#""event":"finished""#, #""event":"party""#, "is not valid")] {
            let found = eventProblems(from, to)
            XCTAssertEqual(found.count, 1, "\(expected): \(found)")
            XCTAssertTrue(found.first?.contains(expected) ?? false, "\(expected): \(found)")
        }
        // hpo: a trial's event and its final's, round trip; nan values are null.
        let trial = StudyEvent.hpoTrial(2, .rung, params: ["lr": .float(0.01)], values: [-0.5, .nan], seconds: 1)
        var final = StudyEvent(.finalFinished, trial: StudyEvent.hpoID(2))
        (final.number, final.params, final.epochs, final.testAccuracy) = (2, ["lr": .float(0.01)], 3, 0.5)
        let hpoLines = [trial.line, final.line]
        XCTAssertTrue(hpoLines[0].contains(#""event":"rung""#) && hpoLines[0].contains("null"), hpoLines[0])
        XCTAssertTrue(hpoLines[1].contains(#""event":"final_finished""#), hpoLines[1])
        let read = try HPORun.parseJournal(Array((hpoLines.joined(separator: "\n") + "\n").utf8), file: "h", trials: 4)
        guard read.count == 2 else { return XCTFail("\(read)") }
        let (t, f) = (read[0], read[1])
        XCTAssertEqual(t.objectives.count, 2)
        XCTAssertTrue(t.objectives[1].isNaN)
        XCTAssertEqual(t.params, trial.params)
        XCTAssertEqual(f, final)
        XCTAssertThrowsError(try HPORun.parseJournal(Array((hpoLines[0] + "\n").utf8), file: "h", trials: 2)) {
            XCTAssertTrue("\($0)".contains("trial 2 is not a trial number (0..<2)"), "\($0)")
        }
        XCTAssertThrowsError(try HPORun.parseJournal(Array((hpoLines[1] + "\n").utf8), file: "h", trials: 4)) {
            XCTAssertTrue("\($0)".contains("the final names trial 2, which no earlier line proposed"), "\($0)")
        }
        XCTAssertEqual(problems([hpoLines[0]]), ["j.jsonl: an hpo event (rung of trial-0002) is no search trial: not a strata search journal"])
        XCTAssertThrowsError(try HPORun.parseJournal(Array((events[0] + "\n").utf8), file: "h")) {
            XCTAssertTrue("\($0)".contains("is no hpo trial: not a strata hpo journal"), "\($0)")
        }
    }

    /// The fuzz seeds of both journal formats are valid journals (the fuzzer starts from what
    /// the readers accept): the older state lines and the `StudyEvent` lines.
    func testFuzzSeedJournalsOfBothFormatsRead() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fuzz/corpus").path
        var formats = Set<Bool>()
        for (folder, parse) in [("search-journal", { (b: [UInt8], f: String) in _ = try SearchJournal.parse(b, file: f) }),
                                ("hpo-journal", { (b: [UInt8], f: String) in _ = try HPORun.parseJournal(b, file: f) })] {
            for name in try FileManager.default.contentsOfDirectory(atPath: corpus + "/" + folder) where name != "sessions.jsonl" {
                let bytes = [UInt8](try XCTUnwrap(FileManager.default.contents(atPath: corpus + "/\(folder)/\(name)")))
                XCTAssertNoThrow(try parse(bytes, name), "\(folder)/\(name)")
                formats.insert(String(decoding: bytes, as: UTF8.self).contains(#""format":1"#))
            }
        }
        XCTAssertEqual(formats, [true, false], "seeds of both formats")
    }
}
