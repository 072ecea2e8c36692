import XCTest
@testable import Trainer
#if canImport(Glibc)
import Glibc
#endif

final class AngleCriterionTests: XCTestCase {
    /// Feeds `curve(epoch)` for epochs 1...maxEpochs; returns the first epoch that says grow.
    private func firstGrowth(_ criterion: inout AngleCriterion, epochs: Int, _ curve: (Int) -> Double) -> Int? {
        for epoch in 1...epochs where criterion.record(curve(epoch)).isGrow { return epoch }
        return nil
    }

    // MARK: Saturating exponential: acc(t) = A - C * exp(-t / tau), t = epoch.
    //
    // Window k covers epochs (k-1)*ws + 1 ... k*ws, so its least-squares slope is
    //   b_k = -C * scale * exp(-(k-1)*ws/tau) * S,  S = LS slope of exp(-j/tau) over j = 1...ws,
    // i.e. b_k = b_1 * r^(k-1) with r = exp(-ws/tau), and alpha_k = atan(b_k) in degrees.
    // Because atan is concave, alpha_k / alpha_(k-1) falls towards r from above: the criterion fires
    // at the first k >= 2 with alpha_k <= gamma * alpha_(k-1), and never if gamma < r.

    /// The expected growth epoch from the closed form above (does not use AngleCriterion).
    private func expectedGrowthEpoch(ws: Int, tau: Double, gamma: Double, c: Double, maxWindows: Int) -> Int? {
        let mid = Double(ws + 1) / 2
        var sxy = 0.0, sxx = 0.0
        for j in 1...ws {
            sxy += (Double(j) - mid) * exp(-Double(j) / tau)
            sxx += (Double(j) - mid) * (Double(j) - mid)
        }
        let b1 = -c * 100 * sxy / sxx
        var previous: Double?
        for k in 1...maxWindows {
            let alpha = atan(b1 * exp(-Double((k - 1) * ws) / tau)) * 180 / Double.pi
            if let p = previous, alpha <= gamma * p { return k * ws }
            previous = alpha
        }
        return nil
    }

    func testSaturatingExponentialGrowsAtThePredictedEpoch() {
        // (ws, tau, gamma, expected): the expected epochs were also checked by hand in Python:
        // ws 5, tau 4: alpha = 84.17, 70.37, 38.77, 12.96 deg; ratios .836, .551, .334 -> window 4.
        // ws 3, tau 12: ratios .965 .955 .942 .926 .906 .885 -> window 7.
        let cases: [(Int, Double, Double, Int)] = [(5, 4, 0.5, 20), (4, 6, 0.7, 20), (3, 12, 0.9, 21)]
        for (ws, tau, gamma, literal) in cases {
            let predicted = expectedGrowthEpoch(ws: ws, tau: tau, gamma: gamma, c: 0.8, maxWindows: 50)
            XCTAssertEqual(predicted, literal, "closed form, ws \(ws) tau \(tau)")
            var criterion = AngleCriterion(window: ws, gamma: gamma)
            let got = firstGrowth(&criterion, epochs: 200) { 0.9 - 0.8 * exp(-Double($0) / tau) }
            XCTAssertEqual(got, predicted, "ws \(ws) tau \(tau) gamma \(gamma)")
        }
    }

    func testSaturatingExponentialNeverGrowsWhenGammaIsBelowTheDecayRatio() {
        // r = exp(-5/10) = 0.607 > gamma = 0.5: the ratio of angles never gets down to gamma, and
        // the angles stay positive however small. (Past ~epoch 400 the slope underflows the
        // accuracy's precision, so stop well before.)
        XCTAssertNil(expectedGrowthEpoch(ws: 5, tau: 10, gamma: 0.5, c: 0.8, maxWindows: 40))
        var criterion = AngleCriterion(window: 5, gamma: 0.5)
        XCTAssertNil(firstGrowth(&criterion, epochs: 200) { 0.9 - 0.8 * exp(-Double($0) / 10) })
    }

    // MARK: Other shapes

    func testLinearRiseNeverGrowsWithGammaBelowOne() {
        for gamma in [0.5, 0.9, 0.999] {
            var criterion = AngleCriterion(window: 4, gamma: gamma)
            XCTAssertNil(firstGrowth(&criterion, epochs: 80) { 0.1 + 0.01 * Double($0) }, "gamma \(gamma)")
            // 1 %/epoch is 45 degrees in percent points.
            XCTAssertEqual(criterion.angles.count, 20)
            for a in criterion.angles { XCTAssertEqual(a, 45, accuracy: 1e-9) }
        }
    }

    func testFlatCurveGrowsAtTheSecondWindow() {
        // alpha_1 = alpha_2 = 0 and 0 <= gamma * 0: a plateau from the start grows after 2 windows.
        var criterion = AngleCriterion(window: 3, gamma: 0.5)
        for _ in 1...5 { XCTAssertEqual(criterion.record(0.42), .continueTraining) }
        let decision = criterion.record(0.42)
        guard case .grow(let reason) = decision else { return XCTFail("expected grow at epoch 6, got \(decision)") }
        XCTAssertTrue(reason.contains("alpha_2 = 0.0 deg"), reason)
        XCTAssertTrue(reason.contains("alpha_1 = 0.0 deg"), reason)
        XCTAssertEqual(criterion.angles, [0, 0])
    }

    func testFallingCurveGrowsAtTheSecondWindow() {
        var criterion = AngleCriterion(window: 3, gamma: 0.5)
        XCTAssertEqual(firstGrowth(&criterion, epochs: 30) { 0.8 - 0.01 * Double($0) }, 6)
        XCTAssertEqual(criterion.angles.count, 2)
        XCTAssertEqual(criterion.angles[0], -45, accuracy: 1e-9)
    }

    func testNegativePreviousAngleUsesTheClampedRule() {
        // Window 1 falls fast (-10 %/epoch), window 2 falls slowly (-0.5 %/epoch). The literal
        // rule says -26.6 <= 0.5 * -84.3 is false (keep training); the clamped rule grows.
        var criterion = AngleCriterion(window: 2, gamma: 0.5)
        for acc in [0.9, 0.8] { XCTAssertEqual(criterion.record(acc), .continueTraining) }
        XCTAssertEqual(criterion.record(0.795), .continueTraining)
        XCTAssertTrue(criterion.record(0.79).isGrow)
        XCTAssertGreaterThan(criterion.angles[1], 0.5 * criterion.angles[0], "the literal rule would keep training")
    }

    func testRecoveryAfterAFallingWindowKeepsTraining() {
        // A dip right after a stage is inserted, then a rise: not a plateau.
        var criterion = AngleCriterion(window: 3, gamma: 0.5)
        let curve = [0.60, 0.55, 0.50, 0.55, 0.60, 0.65]
        for acc in curve { XCTAssertEqual(criterion.record(acc), .continueTraining) }
        XCTAssertLessThan(criterion.angles[0], 0)
        XCTAssertGreaterThan(criterion.angles[1], 0)
    }

    func testGammaOneGrowsWhenTheAngleStopsIncreasing() {
        var criterion = AngleCriterion(window: 2, gamma: 1)
        // Slopes 2, 2 %/epoch: equal angles, alpha_2 <= 1 * alpha_1.
        XCTAssertEqual(firstGrowth(&criterion, epochs: 10) { 0.02 * Double($0) }, 4)
    }

    func testNoisyCurvesAreDeterministicAndSane() {
        // Gaussian noise (sd 0.5 percent points, seeded) on a steep linear rise (2 %/epoch, i.e.
        // an angle near 63 deg): the noise moves the slope of a 5-epoch window by about
        // 0.5/sqrt(10) = 0.16 %/epoch, far too little to halve the angle.
        var rng = SplitMix64(seed: 7)
        let rising = (1...40).map { 0.10 + 0.02 * Double($0) + 0.005 * rng.gaussian() }
        var criterion = AngleCriterion(window: 5, gamma: 0.5)
        XCTAssertNil(firstGrowth(&criterion, epochs: rising.count) { rising[$0 - 1] })

        // The same noise on a plateau: the angles hover around 0 deg and growth comes within a
        // few windows (each window after the first grows with probability >= 1/2 given its
        // predecessor); the exact epoch is fixed by the seed.
        var rng2 = SplitMix64(seed: 11)
        let plateau = (1...60).map { _ in 0.70 + 0.005 * rng2.gaussian() }
        var a = AngleCriterion(window: 5, gamma: 0.5), b = a
        let first = firstGrowth(&a, epochs: plateau.count) { plateau[$0 - 1] }
        XCTAssertEqual(first, firstGrowth(&b, epochs: plateau.count) { plateau[$0 - 1] })
        XCTAssertNotNil(first)
        if let first {
            XCTAssertEqual(first % 5, 0, "decisions only at window ends")
            XCTAssertGreaterThanOrEqual(first, 10)
            XCTAssertLessThanOrEqual(first, 30)
        }
    }

    // MARK: Windows, stages and limits

    func testNoDecisionBeforeTheSecondFullWindow() {
        var criterion = AngleCriterion(window: 10, gamma: 1)
        for epoch in 1...19 {
            XCTAssertEqual(criterion.record(0.5), .continueTraining, "epoch \(epoch)")
            XCTAssertEqual(criterion.angles.count, epoch / 10)
        }
        XCTAssertNil(AngleCriterion(window: 10, gamma: 1).lastAngle)
        XCTAssertTrue(criterion.record(0.5).isGrow)
    }

    func testStartStageDiscardsTheOldStagesEpochs() {
        var criterion = AngleCriterion(window: 3, gamma: 0.5)
        // One full window (alpha_1 = 0) and two epochs of the next.
        for _ in 1...5 { _ = criterion.record(0.5) }
        criterion.startStage()
        XCTAssertEqual(criterion.stage, 2)
        XCTAssertEqual(criterion.epochsInStage, 0)
        XCTAssertNil(criterion.lastAngle)
        // Had the two leftover epochs counted, epoch 1 of the new stage would end a window and,
        // flat after a flat window, grow. Instead the new stage needs two full windows again.
        for epoch in 1...5 { XCTAssertEqual(criterion.record(0.5), .continueTraining, "epoch \(epoch)") }
        XCTAssertEqual(criterion.angles.count, 1)
        guard case .grow(let reason) = criterion.record(0.5) else { return XCTFail("expected grow") }
        XCTAssertTrue(reason.contains("stage 2"), reason)
    }

    func testMaximumEpochsPerStageFallback() {
        var criterion = AngleCriterion(window: 4, gamma: 0.5, maxEpochsPerStage: 7)
        // A linear rise would never grow; the limit makes it grow at epoch 7, mid-window.
        XCTAssertEqual(firstGrowth(&criterion, epochs: 20) { 0.01 * Double($0) }, 7)
        guard case .grow(let reason) = criterion.record(0.08) else { return XCTFail("keeps saying grow past the limit") }
        XCTAssertTrue(reason.contains("maximum of 7 epochs"), reason)
        criterion.startStage()
        XCTAssertEqual(firstGrowth(&criterion, epochs: 20) { 0.01 * Double($0) }, 7)
    }

    func testAngleUnitsAndScale() {
        // 1 %/epoch is 45 deg read in percent points; the same numbers given in percent with
        // scale 1 give the same angle; scale 1 on fractions gives atan(0.01) = 0.573 deg.
        XCTAssertEqual(AngleCriterion.angleDegrees([0.50, 0.51, 0.52].map { $0 * 100 }), 45, accuracy: 1e-9)
        var percent = AngleCriterion(window: 3, gamma: 0.5, accuracyScale: 1)
        for v in [50.0, 51, 52] { _ = percent.record(v) }
        XCTAssertEqual(percent.lastAngle!, 45, accuracy: 1e-9)
        var fraction = AngleCriterion(window: 3, gamma: 0.5, accuracyScale: 1)
        for v in [0.50, 0.51, 0.52] { _ = fraction.record(v) }
        XCTAssertEqual(fraction.lastAngle!, atan(0.01) * 180 / Double.pi, accuracy: 1e-9)
        // Least squares, not end points: y = 0, 3, 1, 5 has slope 1.3 (numpy.polyfit(range(4), y, 1)),
        // where the end points would say 5/3.
        XCTAssertEqual(AngleCriterion.angleDegrees([0, 3, 1, 5]), atan(1.3) * 180 / Double.pi, accuracy: 1e-12)
    }

    func testValidation() {
        XCTAssertNotNil(AngleCriterion.validationError(window: 1, gamma: 0.5))
        XCTAssertNotNil(AngleCriterion.validationError(window: 3, gamma: 0))
        XCTAssertNotNil(AngleCriterion.validationError(window: 3, gamma: 1.01))
        XCTAssertNotNil(AngleCriterion.validationError(window: 3, gamma: .nan))
        XCTAssertNotNil(AngleCriterion.validationError(window: 3, gamma: 0.5, accuracyScale: 0))
        XCTAssertNotNil(AngleCriterion.validationError(window: 3, gamma: 0.5, maxEpochsPerStage: 0))
        XCTAssertNil(AngleCriterion.validationError(window: 2, gamma: 1, maxEpochsPerStage: 1))
    }

    func testCodableResumeMidWindowGivesTheSameDecisions() throws {
        let curve = (1...60).map { 0.9 - 0.8 * exp(-Double($0) / 4) }
        var straight = AngleCriterion(window: 5, gamma: 0.5, maxEpochsPerStage: 50)
        let expected = curve.map { straight.record($0) }

        var first = AngleCriterion(window: 5, gamma: 0.5, maxEpochsPerStage: 50)
        var got = curve[0..<13].map { first.record($0) }
        let data = try JSONEncoder().encode(first)
        var resumed = try JSONDecoder().decode(AngleCriterion.self, from: data)
        XCTAssertEqual(resumed, first)
        got += curve[13...].map { resumed.record($0) }
        XCTAssertEqual(got, expected)

        // A corrupt state is a decoding error, not a trap.
        let bad = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\"window\":5", with: "\"window\":1")
        XCTAssertNotEqual(bad, String(decoding: data, as: UTF8.self))
        XCTAssertThrowsError(try JSONDecoder().decode(AngleCriterion.self, from: Data(bad.utf8)))
    }
}

/// A small seeded generator for test curves (SplitMix64; Box-Muller for normals).
private struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in (0, 1].
    mutating func uniform() -> Double { (Double(next() >> 11) + 1) / 9_007_199_254_740_992 }
    mutating func gaussian() -> Double { sqrt(-2 * log(uniform())) * cos(2 * Double.pi * uniform()) }
}
