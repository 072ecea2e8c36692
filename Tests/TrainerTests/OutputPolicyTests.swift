import XCTest
@testable import Trainer
#if canImport(Glibc)
import Glibc
#endif

/// The one output policy (issue 24): nothing a user saved is replaced without --overwrite, and
/// every refusal is one line naming the path and the reason. Also the one reader for file
/// arguments, `SystemCallError`'s description, and the hpo space file's up-front checks.
final class OutputPolicyTests: XCTestCase {
    private func touch(_ path: String, _ text: String = "x") throws { try writeBytes(Array(text.utf8), to: path) }
    /// A folder's names, without the lock file `--overwrite` takes while it removes.
    private func names(_ dir: String) -> [String] { (FileSystem.contents(ofDirectory: dir) ?? []).filter { $0 != RunLock.fileName } }
    private func text(_ path: String) -> String { String(decoding: (try? FileSystem.readFile(path)) ?? [], as: UTF8.self) }

    private func assertRefused(_ body: @autoclosure () throws -> Any, _ fragments: [String], line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { error in
            let t = "\(error)"
            XCTAssertTrue(error is OutputError, "\(type(of: error)): \(t)", line: line)
            for f in fragments { XCTAssertTrue(t.contains(f), "'\(f)' not in: \(t)", line: line) }
            XCTAssertFalse(t.contains("\n") || t.contains("NSCocoaErrorDomain") || t.contains("SystemCallError("), t, line: line)
        }
    }

    // MARK: Files

    func testAnExistingFileIsRefusedWithoutOverwriteAndKeptIntact() throws {
        let dir = try makeTemporaryDirectory(self)
        try touch(dir + "/p.npy", "mine")
        assertRefused(try OutputPolicy().prepareFile(dir + "/p.npy"), ["--output \(dir)/p.npy", "already exists", "--overwrite"])
        XCTAssertEqual(text(dir + "/p.npy"), "mine")
        let notice = try OutputPolicy(overwrite: true).prepareFile(dir + "/p.npy")
        XCTAssertEqual(notice, "--overwrite: replacing \(dir)/p.npy (4 bytes)")
        XCTAssertNil(try OutputPolicy().prepareFile(dir + "/new.npy"), "a new file needs no notice")
    }

    func testAFileOutputNamesAMissingParentAFolderAndADanglingLink() throws {
        let dir = try makeTemporaryDirectory(self)
        assertRefused(try OutputPolicy().prepareFile(dir + "/missing/dir/x.json"), ["the folder \(dir)/missing/dir does not exist"])
        mkdir(dir + "/sub", 0o755)
        assertRefused(try OutputPolicy(overwrite: true).prepareFile(dir + "/sub"), ["is a folder"])
        symlink(dir + "/nowhere", dir + "/link.npy")
        assertRefused(try OutputPolicy(overwrite: true).prepareFile(dir + "/link.npy"), ["dangling symbolic link", "nowhere"])
        XCTAssertTrue(FileSystem.isSymbolicLink(dir + "/link.npy"), "the link is left as it was")
        try touch(dir + "/afile")
        assertRefused(try OutputPolicy().prepareFile(dir + "/afile/x.json"), ["\(dir)/afile is not a folder"])
    }

    func testAReadOnlyFolderIsNamed() throws {
        try XCTSkipIf(geteuid() == 0, "root writes into read-only folders")
        let dir = try makeTemporaryDirectory(self)
        mkdir(dir + "/ro", 0o555)
        defer { chmod(dir + "/ro", 0o755) }
        assertRefused(try OutputPolicy().prepareFile(dir + "/ro/x.npy"), ["\(dir)/ro is not writable"])
        assertRefused(try OutputPolicy().prepareFolder(dir + "/ro", for: .search), ["\(dir)/ro is not writable"])
        assertRefused(try OutputPolicy().prepareFolder(dir + "/ro/s", for: .search), ["cannot be created", "\(dir)/ro is not writable"])
    }

    // MARK: Folders

    func testAFinishedTrainRunIsNotASearchFolder() throws {
        let dir = try makeTemporaryDirectory(self)
        for f in ["config.json", "summary.json", "manifest.json", "metrics.jsonl"] { try touch(dir + "/" + f, "user's") }
        assertRefused(try OutputPolicy().prepareFolder(dir, for: .search),
                      ["--output \(dir)", "is not empty and is not a strata search", "config.json", "--overwrite"])
        XCTAssertEqual(text(dir + "/summary.json"), "user's")
        // --overwrite removes the search's names only and says so.
        let folder = try OutputPolicy(overwrite: true).prepareFolder(dir, for: .search)
        XCTAssertEqual(folder.removed, ["summary.json"])
        XCTAssertEqual(folder.notice, "--overwrite: removed summary.json from \(dir)")
        XCTAssertEqual(names(dir), ["config.json", "manifest.json", "metrics.jsonl"])
    }

    func testTheSameStudyIsContinuedAndOverwriteRemovesItsFoldersToo() throws {
        let dir = try makeTemporaryDirectory(self)
        try touch(dir + "/search.json", "{}")
        mkdir(dir + "/trials", 0o755)
        try touch(dir + "/trials/t1", "x")
        try touch(dir + "/notes.txt", "mine")
        XCTAssertEqual(try OutputPolicy().prepareFolder(dir, for: .search).sameStudy, true)
        XCTAssertEqual(names(dir), ["notes.txt", "search.json", "trials"])
        let folder = try OutputPolicy(overwrite: true).prepareFolder(dir, for: .search)
        XCTAssertFalse(folder.sameStudy)
        XCTAssertEqual(folder.removed, ["search.json", "trials"])
        XCTAssertEqual(names(dir), ["notes.txt"])
        // An hpo folder is not a search.
        let hpo = try makeTemporaryDirectory(self)
        try touch(hpo + "/hpo.json", "{}")
        assertRefused(try OutputPolicy().prepareFolder(hpo, for: .search), ["is not a strata search", "hpo.json"])
        XCTAssertTrue(try OutputPolicy().prepareFolder(hpo, for: .hpo).sameStudy)
    }

    func testOverwriteNeverRemovesAFolderAnotherProcessIsWriting() throws {
        let dir = try makeTemporaryDirectory(self)
        try touch(dir + "/journal.jsonl", "live")
        let holder = try RunLock(directory: dir)   // flock is per open file: a second open conflicts
        XCTAssertThrowsError(try OutputPolicy(overwrite: true).prepareFolder(dir, for: .search)) {
            XCTAssertTrue("\($0)".contains("is in use by another strata process"), "\($0)")
        }
        XCTAssertEqual(text(dir + "/journal.jsonl"), "live")
        holder.release()
        XCTAssertEqual(try OutputPolicy(overwrite: true).prepareFolder(dir, for: .search).removed, ["journal.jsonl"])
    }

    func testRemovingDoesNotFollowSymbolicLinks() throws {
        let outside = try makeTemporaryDirectory(self)
        try touch(outside + "/precious", "keep")
        let dir = try makeTemporaryDirectory(self)
        mkdir(dir + "/trials", 0o755)
        symlink(outside, dir + "/trials/link")
        _ = try OutputPolicy(overwrite: true).prepareFolder(dir, for: .search)
        XCTAssertEqual(text(outside + "/precious"), "keep")
        XCTAssertEqual(names(dir), [])
    }

    func testAReportSharesItsFolderButReplacesOnlyWithOverwrite() throws {
        let dir = try makeTemporaryDirectory(self)
        try touch(dir + "/notes.txt")
        XCTAssertFalse(try OutputPolicy().prepareFolder(dir, for: .reuseReport).sameStudy)
        try touch(dir + "/report.json")
        assertRefused(try OutputPolicy().prepareFolder(dir, for: .reuseReport), ["already holds report.json", "--overwrite"])
        XCTAssertEqual(try OutputPolicy(overwrite: true).prepareFolder(dir, for: .reuseReport).removed, ["report.json"])
        XCTAssertEqual(names(dir), ["notes.txt"])
    }

    func testFolderCreationNamesWhatIsInTheWay() throws {
        let dir = try makeTemporaryDirectory(self)
        XCTAssertTrue(try OutputPolicy().prepareFolder(dir + "/a/b/c", for: .search).created)
        XCTAssertEqual(FileSystem.kind(of: dir + "/a/b/c"), .directory)
        try touch(dir + "/afile")
        assertRefused(try OutputPolicy().prepareFolder(dir + "/afile", for: .hpo), ["exists and is a regular file"])
        assertRefused(try OutputPolicy().prepareFolder(dir + "/afile/x", for: .hpo), ["\(dir)/afile is a regular file"])
        symlink(dir + "/nowhere", dir + "/dangling")
        assertRefused(try OutputPolicy().prepareFolder(dir + "/dangling", for: .search), ["dangling symbolic link"])
        XCTAssertNil(FileSystem.kind(of: dir + "/nowhere"), "nothing is created at the link's target")
    }

    func testARunDirectoryCreatedUnderADanglingLinkSaysSo() throws {
        let dir = try makeTemporaryDirectory(self)
        symlink(dir + "/nowhere", dir + "/run")
        XCTAssertThrowsError(try RunRecorder(RunDirectory(path: dir + "/run"), kind: .train, mode: .new)) { error in
            XCTAssertTrue("\(error)".contains("dangling symbolic link"), "\(error)")
        }
    }

    // MARK: Errors and readers

    func testSystemCallErrorsNameThePathAndTheReason() throws {
        let dir = try makeTemporaryDirectory(self)
        XCTAssertThrowsError(try FileSystem.writeAtomically([1], to: dir + "/missing/x.json")) { error in
            let t = "\(error)"
            XCTAssertTrue(t.hasPrefix(dir + "/missing/"), t)
            XCTAssertTrue(t.contains("No such file or directory"), t)
            XCTAssertFalse(t.contains("SystemCallError("), t)
        }
        XCTAssertThrowsError(try RunDirectory(path: dir).writeJSON(["a": 1], to: dir + "/missing/x.json")) { error in
            XCTAssertTrue("\(error)".hasPrefix(dir + "/missing/x.json cannot be written"), "\(error)")
        }
    }

    func testTheInputReaderRefusesSpecialFilesAtOnce() throws {
        let dir = try makeTemporaryDirectory(self)
        mkfifo(dir + "/fifo", 0o644)
        for (path, fragment) in [("/dev/zero", "not a regular file"), (dir + "/fifo", "not a regular file"),
                                 (dir, "is a directory"), (dir + "/none.json", "does not exist")] {
            XCTAssertThrowsError(try InputFile.read(path, flag: "--space")) { error in
                XCTAssertEqual("\(error)".hasPrefix("--space \(path): "), true, "\(error)")
                XCTAssertTrue("\(error)".contains(fragment), "\(error)")
            }
        }
        try touch(dir + "/big", String(repeating: "x", count: 100))
        XCTAssertThrowsError(try InputFile.read(dir + "/big", limit: 10)) { XCTAssertTrue("\($0)".contains("more than the 10"), "\($0)") }
        XCTAssertThrowsError(try SearchSpace.load("/dev/zero")) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
        XCTAssertThrowsError(try SearchSpace.load(dir + "/fifo")) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
        XCTAssertThrowsError(try HPOParameter.readSpace(dir + "/fifo")) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
    }

    func testAnHPOSpaceFileWithValuesTheTrainerRefusesIsRefusedUpFront() throws {
        let dir = try makeTemporaryDirectory(self)
        let cases: [(String, String)] = [
            (#"{"optimizer": {"choices": ["sgd", "lion"]}}"#, "optimizer choice 'lion' is not one of sgd"),
            (#"{"batch_size": {"choices": [1, 64]}}"#, "batch_size 1 is not a batch size"),
            (#"{"batch_size": {"low": 1, "high": 64, "int": true}}"#, "batch_size 1 is not a batch size"),
            (#"{"batch_size": {"low": 2, "high": 64}}"#, "batch_size must be whole numbers"),
            (#"{"lr": {"low": 0, "high": 0.1}}"#, "lr 0 is not a learning rate"),
            (#"{"momentum": {"low": 0.5, "high": 1}}"#, "momentum 1 must be in [0, 1)"),
            (#"{"weight_decay": {"choices": [-1]}}"#, "weight_decay -1 must be at least 0"),
        ]
        for (i, (json, fragment)) in cases.enumerated() {
            let path = dir + "/space\(i).json"
            try touch(path, json)
            XCTAssertThrowsError(try HPOParameter.readSpace(path), json) { error in
                XCTAssertTrue("\(error)".hasPrefix(path + ": "), "\(error)")
                XCTAssertTrue("\(error)".contains(fragment), "'\(fragment)' not in: \(error)")
            }
        }
        try touch(dir + "/good.json", #"{"optimizer": {"choices": ["sgd", "adam"]}, "batch_size": {"choices": [32, 64]}, "lr": {"low": 1e-4, "high": 0.1, "log": true}}"#)
        XCTAssertEqual(try HPOParameter.readSpace(dir + "/good.json").dimensions.count, 3)
    }

    func testAnUnknownKeyInAConfigFileIsRefusedNamingIt() throws {
        let dir = try makeTemporaryDirectory(self)
        let config = TrainConfig(modelName: "cnn", model: try ModelZoo.spec("cnn", input: .cifar, classes: 10),
                                 data: DataConfig(path: dir), epochs: 1, batchSize: 8, optimizer: .adam(learningRate: 1e-3))
        try RunDirectory(path: dir).writeJSON(config, to: dir + "/good.json")
        XCTAssertNoThrow(try ConfigFile.readTrainConfig(dir + "/good.json"))
        let good = text(dir + "/good.json")
        try touch(dir + "/top.json", good.replacingOccurrences(of: "\"epochs\"", with: "\"epochz\": 3, \"epochs\""))
        XCTAssertThrowsError(try ConfigFile.readTrainConfig(dir + "/top.json")) {
            XCTAssertEqual("\($0)", "\(dir)/top.json: unknown key 'epochz' (a misspelt field would be ignored)")
        }
        try touch(dir + "/nested.json", good.replacingOccurrences(of: "\"learningRate\"", with: "\"learnignRate\": 1, \"learningRate\""))
        XCTAssertThrowsError(try ConfigFile.readTrainConfig(dir + "/nested.json")) {
            XCTAssertTrue("\($0)".contains("unknown key 'optimizer.learnignRate'"), "\($0)")
        }
    }
}
