extension CPUBackend {
    public func fill(_ x: Tensor, value: Float) {
        fatalError("not implemented")
    }

    public func add(_ a: Tensor, _ b: Tensor, output out: Tensor) {
        fatalError("not implemented")
    }

    public func scale(_ x: Tensor, by alpha: Float, output out: Tensor) {
        fatalError("not implemented")
    }

    public func axpy(alpha: Float, x: Tensor, y: Tensor) {
        fatalError("not implemented")
    }

    public func sum(_ x: Tensor) throws -> Float {
        fatalError("not implemented")
    }

    public func argmax(rows x: Tensor, output out: Tensor) {
        fatalError("not implemented")
    }
}
