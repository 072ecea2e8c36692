@testable import Trainer
import XCTest
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

final class HPOTests: XCTestCase {
    /// Optuna's default_gamma and default_weights, values worked out from their source.
    func testGammaAndWeightsFollowOptuna() {
        XCTAssertEqual([1, 9, 10, 11, 100, 250, 300].map(TPESampler.gamma), [1, 1, 1, 2, 10, 25, 25])
        XCTAssertEqual(TPESampler.weights(3), [1, 1, 1])
        XCTAssertEqual(TPESampler.weights(25), [Double](repeating: 1, count: 25), "np.linspace(.., num=0) is empty")
        let w = TPESampler.weights(30)   // ramp = linspace(1/30, 1, 5), then 25 ones
        XCTAssertEqual(w.count, 30)
        XCTAssertEqual(w[0], 1.0 / 30, accuracy: 1e-15)
        XCTAssertEqual(w[2], 1.0 / 30 + (1 - 1.0 / 30) / 2, accuracy: 1e-15)
        XCTAssertEqual(w[4], 1, accuracy: 1e-15)
        XCTAssertEqual(Array(w[5...]), [Double](repeating: 1, count: 25))
    }

    /// Bandwidths of observations 2, 3, 7 on [0, 10]: neighbour distances max(2,1)=2, max(1,4)=4,
    /// max(4,3)=4; the outermost use their inner neighbour (1 and 4); clip to [10/5, 10].
    func testBandwidthsUseNeighboursAndTheMagicClip() {
        XCTAssertEqual(ParzenEstimator.bandwidths([7, 2, 3], low: 0, high: 10), [4, 2, 4])
        XCTAssertEqual(ParzenEstimator.bandwidths([5], low: 0, high: 10), [5], "one point: the larger distance to an end")
    }

    func testEstimatorDensitiesIntegrateToOne() throws {
        let space = try HPOSpace([("x", .float(low: -1, high: 2, log: false)), ("c", .categorical(["a", "b", "c"]))])
        let obs = [HPOObservation(params: ["x": .float(0.1), "c": .choice("b")], value: 1),
                   HPOObservation(params: ["x": .float(1.5), "c": .choice("a")], value: 2)]
        let p = ParzenEstimator(space, observations: obs, priorWeight: 1)
        // Numeric marginal: a midpoint rule over [-1, 2].
        var integral = 0.0
        let n = 30_000, h = 3.0 / Double(n)
        for i in 0..<n { integral += exp(p.logDensity(dimension: 0, -1 + (Double(i) + 0.5) * h)) * h }
        XCTAssertEqual(integral, 1, accuracy: 1e-6)
        let mass = (0..<3).reduce(0.0) { $0 + exp(p.logDensity(dimension: 1, Double($1))) }
        XCTAssertEqual(mass, 1, accuracy: 1e-12)
        // Joint density of a product kernel mixture: also normalised (summing the choice out).
        var joint = 0.0
        for i in 0..<n { for c in 0..<3 { joint += exp(p.logDensity([-1 + (Double(i) + 0.5) * h, Double(c)])) * h } }
        XCTAssertEqual(joint, 1, accuracy: 1e-6)
    }

    func testValuesKeepTheirKindInJSON() throws {
        let values: [String: HPOValue] = ["a": .float(1), "b": .int(1), "c": .choice("1")]
        let json = try JSONEncoder().encode(values)
        XCTAssertEqual(try JSONDecoder().decode([String: HPOValue].self, from: json), values)
        XCTAssertTrue(String(decoding: json, as: UTF8.self).contains(#"{"int":1}"#))
    }

    func testSamplersAreDeterministicAndStayInTheSpace() throws {
        let f = try HPOTestFunction.named("mixed")
        for sampler in [TPESampler(seed: 4) as HPOSampler, TPESampler(seed: 4, multivariate: false), UniformSampler(seed: 4)] {
            let a = f.minimise(with: sampler, trials: 30).history, b = f.minimise(with: sampler, trials: 30).history
            XCTAssertEqual(a, b, "the same seed proposes the same trials")
            for o in a {
                guard case .float(let lr) = o.params["lr"]!, case .int(let units) = o.params["units"]!,
                      case .choice(let act) = o.params["activation"]! else { return XCTFail("kinds") }
                XCTAssertTrue((1e-5...1).contains(lr) && (1...100).contains(units) && ["relu", "tanh", "sigmoid"].contains(act))
            }
        }
        XCTAssertNotEqual(f.minimise(with: TPESampler(seed: 4), trials: 15).history,
                          f.minimise(with: TPESampler(seed: 5), trials: 15).history)
    }

    /// Not a benchmark (bench/hpo/tpe-vs-optuna.sh is): a sanity check that TPE uses what it has
    /// seen, on fixed seeds, so the outcome is deterministic.
    func testTPEBeatsRandomSearchOnBranin() throws {
        let f = try HPOTestFunction.named("branin")
        let seeds = 0..<6
        let tpe = seeds.map { f.minimise(with: TPESampler(seed: UInt64($0)), trials: 40).best }.reduce(0, +)
        let random = seeds.map { f.minimise(with: UniformSampler(seed: UInt64($0)), trials: 40).best }.reduce(0, +)
        XCTAssertLessThan(tpe, random)
    }

    func testSuccessiveHalvingPromotesTheBestThirdAtEachRung() {
        var p = SuccessiveHalvingPruner(minResource: 1, reductionFactor: 3)
        XCTAssertEqual((0..<4).map { p.rungStep($0) }, [1, 3, 9, 27])
        XCTAssertEqual(p.report(trial: 0, step: 1, value: 0.5), .continue, "first at a rung: nothing to compare with")
        XCTAssertEqual(p.report(trial: 1, step: 1, value: 0.7), .prune, "1 of 2 at the rung: top index 0 holds 0.5")
        XCTAssertEqual(p.report(trial: 2, step: 1, value: 0.4), .continue)
        XCTAssertEqual(p.report(trial: 0, step: 2, value: 0.1), .continue, "not a rung")
        XCTAssertEqual(p.report(trial: 3, step: 1, value: 0.45), .prune, "4 values: only the best (4 / 3 = 1) goes on")
        // Six values at rung 0: the best two (6 / 3) go on.
        XCTAssertEqual(p.report(trial: 4, step: 1, value: 0.6), .prune)
        XCTAssertEqual(p.report(trial: 5, step: 1, value: 0.42), .continue, "0.42 <= second best 0.42")
        XCTAssertEqual(p.report(trial: 6, step: 1, value: .nan), .prune)
        var late = SuccessiveHalvingPruner(minResource: 2, reductionFactor: 2, minEarlyStoppingRate: 1)
        XCTAssertEqual(late.rungStep(0), 4)
        XCTAssertEqual(late.report(trial: 0, step: 2, value: 9), .continue, "below the first rung")
    }

    func testHyperbandBracketsAndBudgets() {
        let h = HyperbandPruner(minResource: 1, maxResource: 27, reductionFactor: 3)
        XCTAssertEqual(h.brackets.count, 4, "rungs 1, 3, 9, 27")
        XCTAssertEqual(h.brackets.map(\.minEarlyStoppingRate), [0, 1, 2, 3])
        XCTAssertEqual(h.budgets, [27, 12, 6, 4], "ceil(4 * 3^(3-s) / (4-s))")
        var counts = [0, 0, 0, 0]
        for t in 0..<2000 { counts[h.bracket(of: t)] += 1 }
        XCTAssertGreaterThan(counts[0], counts[1])
        XCTAssertGreaterThan(counts[1], counts[3])
        XCTAssertTrue(counts.allSatisfy { $0 > 0 })
    }
}

/// TPE as a search's sampler: start-up trials first, then one per free worker from what
/// finished; resumed searches count the journal's trials as proposed.
final class TPETrialSamplerTests: XCTestCase {
    func record(_ t: TrialConfig, loss: Double) -> StudyEvent {
        .searchTrial(t, validationLoss: loss, seconds: 1, wallSeconds: 1, epochs: 1)
    }

    func testProposesStartupTrialsThenLearns() throws {
        var space = SearchSpace.seed000Small(epochs: 2)
        space.ranges["lr"] = .logUniform(1e-4, 1e-1)
        var s = try SearchStrategy.tpe(trials: 14, seed: 3).makeSampler(space: space)
        let first = s.propose(limit: .max, finished: [])
        XCTAssertEqual(first.count, 10, "the random start-up trials only")
        XCTAssertEqual(Set(first.map(\.id)).count, 10)
        for t in first {
            XCTAssertTrue([1, 2, 3].contains(t.convLayers) && (1e-4...1e-1).contains(t.lr) && SearchSpace.seed000Hidden.contains(t.hidden))
        }
        // Losses that favour a small learning rate.
        let finished = first.map { record($0, loss: abs(log10($0.lr) + 3.5)) }
        let next = s.propose(limit: 2, finished: finished)
        XCTAssertEqual(next.count, 2)
        XCTAssertFalse(s.isExhausted)
        XCTAssertEqual(s.propose(limit: 5, finished: finished).count, 2, "14 in all")
        XCTAssertTrue(s.isExhausted)
        // A resumed search: the journal's 10 trials count; the same history gives the same proposals.
        var resumed = try SearchStrategy.tpe(trials: 14, seed: 3).makeSampler(space: space)
        XCTAssertEqual(resumed.propose(limit: 2, finished: finished), next)
    }
}

/// Donors and hpo trials (docs/hpo.md, "Donors"): the engine's donor rule needs a finished trial
/// with fewer conv layers of the same prefix shape; an hpo space varies only training
/// hyperparameters, all its trials are one network, so none is ever another's donor and
/// `strata hpo` has no `--reuse`. When a parameter that changes the network is added, this fails: the rule must be decided then.
final class HPODonorTests: XCTestCase {
    func testNoHyperparameterChangesTheNetworkSoNoTrialIsADonor() throws {
        let base = smallConfig(data: "/nonexistent", epochs: 2)
        let samples: [HPOParameter: HPOValue] = [.lr: .float(0.07), .weightDecay: .float(1e-3), .momentum: .float(0.5),
                                                 .batchSize: .int(24), .optimizer: .choice("adam")]
        XCTAssertEqual(Set(samples.keys), Set(HPOParameter.allCases), "a sample of every hyperparameter an hpo space may hold")
        for (p, v) in samples {
            let trial = try HPOParameter.apply([p.rawValue: v], to: base)
            XCTAssertNotEqual(trial, base, "\(p.rawValue) changes the trial")
            XCTAssertEqual(trial.model, base.model, "\(p.rawValue) changes the network: decide the hpo's donor rule (docs/hpo.md)")
        }
        // The search's rule on trials of one network that differ only in training, as hpo trials
        // do: no donor (a donor has fewer conv layers); one conv layer fewer would make one.
        let one = TrialConfig(convLayers: 2, filters: 4, hidden: [8], lr: 0.01, batchSize: 8, epochs: 1)
        var other = one
        (other.lr, other.batchSize) = (0.02, 16)
        XCTAssertNotNil(SearchPlan.make([one.withConvLayers(1), one], reuse: .paper)[1].fixedDonor)
        for reuse in [ReuseStrategy.paper, .bestPrefix] {
            let plan = SearchPlan.make([one, other], reuse: reuse)
            XCTAssertTrue(plan.allSatisfy { $0.fixedDonor == nil && $0.dependencies.isEmpty }, "\(reuse): \(plan)")
        }
    }
}
