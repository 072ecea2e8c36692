/// How a learning rate found on a pruned proxy carries over to the full model.
///
/// A pruned layer sees fewer input channels: its fan-in F falls, so its weights start larger
/// (He initialisation, standard deviation sqrt(2 / F)). Adam and RMSProp move every weight by
/// about the learning rate whatever its gradient's scale, so the same lr is a smaller step
/// relative to the weights in the proxy than in the full model, and a search on the proxy
/// prefers larger rates than the full model trains best with (bench/hpo/RESULTS.md: the proxy's
/// winners had 1.6-4.6x the full search's lr). The transfer gives each proxy weight the step the
/// full model's weight of the same name would take relative to its initial scale: its learning
/// rate times sqrt(F_full / F_proxy). A search on the proxy then finds the full model's lr itself.
///
/// Only for the adaptive optimizers. SGD's step is the gradient times the lr, and a weight's
/// gradient already grows with its layer's fan-in, so SGD gets no multipliers.
public enum LearningRateTransfer: String, Codable, CaseIterable, Sendable {
    /// Each proxy weight's lr times sqrt(its full fan-in / its proxy fan-in) (Adam, AdamW, RMSProp).
    case scaled
    /// The proxy trains with the lr as sampled.
    case same

    /// The per-parameter lr multipliers for training `proxy` in place of `full` with `optimizer`;
    /// empty when there is nothing to scale. Weights (rank >= 2) whose fan-in the pruning
    /// narrowed get a multiplier above 1; biases, batch-norm parameters and weights whose inputs
    /// were all kept get none.
    public func scales(full: ModelSpec, proxy: ModelSpec, optimizer: OptimizerConfig.Kind) throws -> [String: Float] {
        guard self == .scaled, optimizer != .sgd else { return [:] }
        let fullShapes = Dictionary(uniqueKeysWithValues: try Model(spec: full).parameters.map { ($0.name, $0.shape) })
        var scales: [String: Float] = [:]
        for p in try Model(spec: proxy).parameters where p.shape.count >= 2 {
            guard let fullShape = fullShapes[p.name], fullShape.count == p.shape.count else {
                throw PruningError("the proxy's parameter \(p.name) \(p.shape) has no counterpart in the full model")
            }
            let fanIn = p.shape.dropFirst().reduce(1, *), fullFanIn = fullShape.dropFirst().reduce(1, *)
            guard fanIn > 0, fullFanIn > fanIn else { continue }
            scales[p.name] = Float((Double(fullFanIn) / Double(fanIn)).squareRoot())
        }
        return scales
    }
}
