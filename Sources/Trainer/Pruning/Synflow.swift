import GPUTensor

/// Structured, single-shot Synflow at initialisation (Tanaka et al. 2020), scored per output
/// channel of every convolution.
///
/// Every tensor of the model (weights, biases, batch-norm tensors) is replaced by its absolute
/// value, an input of ones goes forward in inference mode, R is the sum of the outputs, and the
/// score of a weight is |theta * dR/dtheta|; a channel's score is the sum over its weights (the
/// bias, zero at initialisation, adds nothing). Batch norm runs in inference mode with its
/// initial statistics (running mean 0, variance 1), so it is the per-channel scale
/// |gamma| / sqrt(1 + eps); this is the usual choice, and it keeps the network linear and positive.
///
/// Deep networks overflow Float32 here (ResNet-56's R is of order 1e69 with He-initialised
/// weights; the reference implementation switches to float64). Instead, the activations are
/// rescaled to mean 1 between blocks, and the gradient by the same factors on the way back. With
/// every bias and running mean zero at initialisation, each block is positively homogeneous of
/// degree 1 in its input (convolutions, batch norm, ReLU on non-negative values, pooling, the
/// residual sum), so the rescaling multiplies every score by the same constant (the product of
/// the factors): the ranking, and any percentile over the whole network, are those of exact
/// Synflow. `renormalize: false` turns it off (the test compares both on a small ResNet).
public enum Synflow {
    /// The scores of one convolution's output channels.
    public struct LayerScores: Equatable, Sendable {
        public var layer: String
        public var scores: [Double]
    }

    /// Scores of every convolution of `model` (built, not yet prepared), in forward order.
    /// The model is prepared for a batch of one on `backend`, initialised from `seed` and then
    /// modified (absolute values): score a scratch copy, not the model you train.
    public static func channelScores(of model: Model, seed: UInt64, backend: Backend,
                                     renormalize: Bool = true) throws -> [LayerScores] {
        try model.prepare(on: backend, maxBatch: 1)
        model.initialize(seed: seed)
        for (_, tensor) in model.stateDict {
            backend.upload(try backend.download(tensor).map { abs($0) }, to: tensor)
        }
        // Batch norms frozen: inference mode, and a backward that is their per-channel scale.
        func freezeNorms(_ layer: any Layer) {
            if let bn = layer as? BatchNorm2D { bn.setFrozen(true) }
            layer.children.forEach(freezeNorms)
        }
        model.layers.forEach(freezeNorms)

        // Forward, an input of ones, block by block with the rescaling.
        var a = try backend.tensor([Float](repeating: 1, count: model.inputShape.reduce(1, *)), shape: [1] + model.inputShape)
        var factors: [Float] = []
        for (i, block) in model.blocks.enumerated() {
            let out = block.forward(a, mode: .inference)
            var factor: Float = 1
            if renormalize {
                let m = try backend.sum(out) / Float(out.count)
                guard m.isFinite && m > 0 else {
                    throw PruningError("synflow: the activations of block \(i + 1) are \(m) on average; cannot score this model")
                }
                factor = 1 / m
            }
            // A copy, not in place: a block's backward may read its own output (ReLU, max-pool).
            let scaled = try backend.allocate(out.shape)
            backend.scale(out, by: factor, output: scaled)
            factors.append(factor)
            a = scaled
        }
        for layer in model.classifier { a = layer.forward(a, mode: .inference) }

        // Backward from dR/d(outputs) = 1.
        var g = try backend.tensor([Float](repeating: 1, count: a.count), shape: a.shape)
        for layer in model.classifier.reversed() { g = layer.backward(g, computeInputGradient: true)! }
        for i in model.blocks.indices.reversed() {
            let t = try backend.allocate(g.shape)
            backend.scale(g, by: factors[i], output: t)
            guard let dx = model.blocks[i].backward(t, computeInputGradient: i > 0) else { break }
            g = dx
        }

        var result: [LayerScores] = []
        for conv in convolutions(of: model) {
            let w = try backend.download(conv.weight.value), gw = try backend.download(conv.weight.grad)
            let per = w.count / conv.outChannels
            var scores = [Double](repeating: 0, count: conv.outChannels)
            for c in 0..<conv.outChannels {
                var s = 0.0
                for j in c * per..<(c + 1) * per { s += abs(Double(w[j]) * Double(gw[j])) }
                scores[c] = s
            }
            guard scores.allSatisfy(\.isFinite) else {
                throw PruningError("synflow: non-finite scores in \(conv.name) (the model is too deep to score in Float32)")
            }
            result.append(LayerScores(layer: conv.name, scores: scores))
        }
        return result
    }

    /// Every convolution of `model`, in forward order (containers walked child by child).
    static func convolutions(of model: Model) -> [Conv2D] {
        var found: [Conv2D] = []
        func visit(_ layer: any Layer) {
            if let conv = layer as? Conv2D { found.append(conv) }
            for child in layer.children { visit(child) }
        }
        for layer in model.layers { visit(layer) }
        return found
    }
}

public struct PruningError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
