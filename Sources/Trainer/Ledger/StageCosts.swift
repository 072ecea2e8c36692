/// Per-stage work of one training image, for the FLOP ledger.
public struct StageStepCost: Sendable {
    /// Stage name, or `classifier`.
    public var key: String
    /// Work a training step runs with the current freezing.
    public var performed: LayerCost
    /// Work it does not run because of freezing, relative to training every layer.
    public var skipped: LayerCost
}

extension Model {
    /// Per-image training-step cost of each stage and of the classifier, split into what runs and
    /// what freezing skips. Mirrors `backwardChain`: layers before the first trainable one run
    /// forward only, that one computes no input gradient, and frozen layers no weight gradients.
    public func stageStepCosts() -> [StageStepCost] {
        let layers = self.layers
        var shapes: [[Int]] = []
        var s = inputShape
        for l in layers { shapes.append(s); s = l.outputShape(input: s) }
        let stop = layers.firstIndex { $0.hasTrainableParameters } ?? layers.count
        let stopIgnoringFreezing = layers.firstIndex { !$0.parameters.isEmpty } ?? layers.count

        func cost(_ i: Int, stop: Int, ignoreFreezing: Bool) -> LayerCost {
            if i < stop {
                let c = layers[i].cost(input: shapes[i])
                return LayerCost(parameters: c.parameters, forward: c.forward)
            }
            return layers[i].stepCost(input: shapes[i], computeInputGradient: i > stop, ignoreFreezing: ignoreFreezing)
        }
        func group(_ key: String, _ range: Range<Int>) -> StageStepCost {
            var performed = LayerCost.zero, full = LayerCost.zero
            for i in range {
                performed += cost(i, stop: stop, ignoreFreezing: false)
                full += cost(i, stop: stopIgnoringFreezing, ignoreFreezing: true)
            }
            let skipped = LayerCost(parameters: 0, forward: full.forward - performed.forward,
                                    backwardData: full.backwardData - performed.backwardData,
                                    backwardWeight: full.backwardWeight - performed.backwardWeight)
            return StageStepCost(key: key, performed: performed, skipped: skipped)
        }
        return stages.map { group($0.name, $0.blocks) } + [group("classifier", blocks.count..<layers.count)]
    }
}
