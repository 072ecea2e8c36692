import XCTest
@testable import Trainer

final class FlopLedgerTests: XCTestCase {
    /// A two-stage toy: stage1 frozen and cached, stage2 and fc trained, for `batches` batches.
    private func trainToyEpoch(_ ledger: inout FlopLedger, batches: Int) {
        let stage2 = ledger.slot(for: "stage2")
        let fc = ledger.slot(for: "fc")
        for _ in 0..<batches {
            ledger.skip(.cachedForward, 100, key: "stage1")
            ledger.skip(.frozenBackward, 200, key: "stage1")
            ledger.add(.forward, 50, slot: stage2)
            ledger.add(.backwardData, 50, slot: stage2)
            ledger.add(.backwardWeights, 50, slot: stage2)
            ledger.add(.forward, 10, slot: fc)
            ledger.add(.backwardData, 10, slot: fc)
            ledger.add(.backwardWeights, 10, slot: fc)
            ledger.add(.optimizer, 3, slot: fc)
        }
    }

    func testTotalsByPhaseKeyAndReason() {
        var ledger = FlopLedger()
        trainToyEpoch(&ledger, batches: 4)
        XCTAssertEqual(ledger.total(.forward), 4 * 60)
        XCTAssertEqual(ledger.total(.backwardData), 4 * 60)
        XCTAssertEqual(ledger.total(.backwardWeights), 4 * 60)
        XCTAssertEqual(ledger.total(.optimizer), 4 * 3)
        XCTAssertEqual(ledger.total(.cachedForward), 4 * 100)
        XCTAssertEqual(ledger.total(.frozenBackward), 4 * 200)
        XCTAssertEqual(ledger.executedTotal, 4 * 183)
        XCTAssertEqual(ledger.skippedTotal, 4 * 300)
        XCTAssertEqual(ledger.totals.executed, ledger.executedTotal)
        XCTAssertEqual(ledger.counters(for: "fc").executed, 4 * 33)
        XCTAssertEqual(ledger.counters(for: "stage1").executed, 0)
        XCTAssertEqual(ledger.counters(for: "stage1").skipped, 4 * 300)
        XCTAssertEqual(ledger.counters(for: "never"), FlopLedger.Counters())
        XCTAssertEqual(ledger.sortedKeys, ["fc", "stage1", "stage2"])
    }

    func testSlotAndKeyPathsAgree() {
        var a = FlopLedger(), b = FlopLedger()
        let s = a.slot(for: "conv1")
        XCTAssertEqual(a.slot(for: "conv1"), s, "a key registers once")
        a.add(.forward, 7, slot: s)
        b.add(.forward, 7, key: "conv1")
        XCTAssertEqual(a, b)
    }

    func testMergeAddsKeyByKeyWhateverTheOrder() {
        var run = FlopLedger()
        run.add(.forward, 1, key: "b")
        var stage = FlopLedger()
        stage.add(.forward, 2, key: "a")
        stage.add(.forward, 3, key: "b")
        stage.skip(.frozenBackward, 5, key: "a")
        run.merge(stage)
        XCTAssertEqual(run.counters(for: "a").forward, 2)
        XCTAssertEqual(run.counters(for: "a").skippedFrozenBackward, 5)
        XCTAssertEqual(run.counters(for: "b").forward, 4)

        var expected = FlopLedger()
        expected.add(.forward, 2, key: "a")
        expected.skip(.frozenBackward, 5, key: "a")
        expected.add(.forward, 4, key: "b")
        XCTAssertEqual(run, expected, "equality ignores first-use order")
    }

    func testEpochDeltaIsTheDifferenceOfSnapshots() {
        var ledger = FlopLedger()
        trainToyEpoch(&ledger, batches: 2)
        let afterOne = ledger.snapshot()
        trainToyEpoch(&ledger, batches: 3)
        ledger.add(.forward, 9, key: "stage3")  // a key that appears in the second epoch
        let afterTwo = ledger.snapshot()

        let epoch2 = EpochFlops(from: afterOne, to: afterTwo)
        XCTAssertEqual(epoch2.epoch.executed, 3 * 183 + 9)
        XCTAssertEqual(epoch2.epoch.skipped, 3 * 300)
        XCTAssertEqual(epoch2.epoch.byKey["stage3"]?.forward, 9)
        XCTAssertEqual(epoch2.epoch.byKey["fc"]?.optimizer, 9)
        XCTAssertEqual(epoch2.cumulativeExecuted, 5 * 183 + 9)
        XCTAssertEqual(epoch2.cumulativeSkipped, 5 * 300)
        let epoch1 = EpochFlops(from: FlopLedger().snapshot(), to: afterOne)
        XCTAssertEqual(epoch1.epoch, afterOne)
    }

    func testSnapshotJSONIsSortedAndRoundTrips() throws {
        var ledger = FlopLedger()
        for key in ["zeta", "alpha", "layer1.0.conv1", "fc", "Mid"] { ledger.add(.forward, 1, key: key) }
        let snapshot = ledger.snapshot()

        // With sorted keys (as RunDirectory writes), names come out sorted, and equal counts give
        // equal bytes whatever the order in which keys were first used.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = String(decoding: try encoder.encode(snapshot), as: UTF8.self)
        let positions = ["Mid", "alpha", "fc", "layer1.0.conv1", "zeta"].map { name in
            text.range(of: "\"\(name)\"")!.lowerBound
        }
        XCTAssertEqual(positions, positions.sorted(), text)
        XCTAssertTrue(text.hasPrefix("{\"byKey\":{\"Mid\":{\"backwardData\":0,"), text)
        XCTAssertTrue(text.contains("\"executed\":5"), text)
        XCTAssertEqual(try JSONDecoder().decode(FlopSnapshot.self, from: Data(text.utf8)), snapshot)
        var reversed = FlopLedger()
        for key in ["Mid", "fc", "layer1.0.conv1", "alpha", "zeta"].reversed() { reversed.add(.forward, 1, key: key) }
        XCTAssertEqual(try encoder.encode(reversed.snapshot()), try encoder.encode(snapshot))

        // A resumed run carries on from a snapshot.
        var resumed = FlopLedger(restoring: snapshot)
        XCTAssertEqual(resumed, ledger)
        resumed.add(.optimizer, 2, key: "fc")
        XCTAssertEqual(resumed.executedTotal, 7)

        let epoch = EpochFlops(from: FlopSnapshot(byKey: [:]), to: snapshot)
        XCTAssertEqual(try JSONDecoder().decode(EpochFlops.self, from: try encoder.encode(epoch)), epoch)
    }

    func testLargeCountsKeepTheirRelativePrecision() {
        // Ten ImageNet epochs of ResNet-50 forward are ~1.6e17 FLOPs, beyond 2^53 = 9e15.
        var ledger = FlopLedger()
        let s = ledger.slot(for: "all")
        let perBatch = 3 * 4.1e9 * 256
        for _ in 0..<(1_281_167 / 256 * 10) { ledger.add(.forward, perBatch, slot: s) }
        let exact = perBatch * Double(1_281_167 / 256 * 10)
        XCTAssertEqual(ledger.executedTotal, exact, accuracy: exact * 1e-12)
    }
}
