extension CPUBackend {
    public func softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?, gradScale: Float) {
        fatalError("not implemented")
    }
}
