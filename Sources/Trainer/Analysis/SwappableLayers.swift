import GPUTensor

/// The kinds of tensor the reusability study swaps one at a time, named as in the published
/// study: convolution weights W and biases B, and the four batch-norm tensors (running mean RM,
/// running variance RV, weight RW, bias RB).
public enum ParameterKind: String, CaseIterable, Codable, Sendable {
    case weight = "W"
    case bias = "B"
    case runningMean = "RM"
    case runningVariance = "RV"
    case normWeight = "RW"
    case normBias = "RB"

    /// The layer type that holds this kind.
    public var layerType: SwappableLayer.LayerType {
        switch self {
        case .weight, .bias: return .convolution
        case .runningMean, .runningVariance, .normWeight, .normBias: return .batchNorm
        }
    }

    /// The last component of the tensor's PyTorch name (`features.1.running_var`).
    var suffix: String {
        switch self {
        case .weight, .normWeight: return "weight"
        case .bias, .normBias: return "bias"
        case .runningMean: return "running_mean"
        case .runningVariance: return "running_var"
        }
    }

    /// `W,B,RM` -> the kinds, in the order given; an unknown name is an error naming it.
    public static func parseList(_ text: String) throws -> [ParameterKind] {
        var kinds: [ParameterKind] = []
        for part in text.split(separator: ",") {
            let name = part.trimmingSpaces().uppercased()
            guard let kind = ParameterKind(rawValue: name) else {
                throw ReuseAnalysisError("--kinds: unknown kind '\(part)' (use W, B, RM, RV, RW, RB)")
            }
            if !kinds.contains(kind) { kinds.append(kind) }
        }
        guard !kinds.isEmpty else { throw ReuseAnalysisError("--kinds: give at least one of W, B, RM, RV, RW, RB") }
        return kinds
    }
}

/// A convolution or batch-norm layer of a model with the tensors a swap can replace.
public struct SwappableLayer {
    public enum LayerType: String, Codable, Sendable {
        case convolution = "conv"
        case batchNorm = "bn"
    }

    /// PyTorch module path (`layer1.0.conv1`, `features.1`).
    public var name: String
    public var type: LayerType
    /// The layer's tensors by kind (a convolution without bias has no B).
    public var tensors: [ParameterKind: Tensor]

    /// The tensor's PyTorch name for `kind`.
    public func tensorName(_ kind: ParameterKind) -> String { name + "." + kind.suffix }

    /// Every convolution and batch norm of `model`, in forward order (containers are walked in
    /// their children's order, which is their forward order). The model must be prepared.
    public static func layers(of model: Model) -> [SwappableLayer] {
        var found: [SwappableLayer] = []
        func visit(_ layer: any Layer) {
            if let conv = layer as? Conv2D {
                var tensors: [ParameterKind: Tensor] = [.weight: conv.weight.value]
                if let bias = conv.bias { tensors[.bias] = bias.value }
                found.append(SwappableLayer(name: conv.name, type: .convolution, tensors: tensors))
            } else if let bn = layer as? BatchNorm2D {
                found.append(SwappableLayer(name: bn.name, type: .batchNorm, tensors: [
                    .normWeight: bn.gamma.value, .normBias: bn.beta.value,
                    .runningMean: bn.runningMean.value, .runningVariance: bn.runningVar.value,
                ]))
            }
            for child in layer.children { visit(child) }
        }
        for layer in model.layers { visit(layer) }
        return found
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
