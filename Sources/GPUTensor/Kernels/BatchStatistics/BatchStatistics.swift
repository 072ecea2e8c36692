/// Per-batch statistics kept on the device (a trainer reads an epoch's once, at its end).
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol BatchStatisticsKernels: AnyObject {
    // MARK: Per-batch statistics kept on the device (a trainer reads an epoch's once, at its end)

    /// `out[slot] = sum of all elements of x`, as a float32, without waiting for the device.
    /// The value is the one `sum(x)` would return on the same backend up to the summation order
    /// (CPU: bit-identical; CUDA: float64 accumulation in one block, rounded once). A non-finite
    /// element makes the slot non-finite, which is how a trainer detects divergence without a
    /// per-batch host sync. `out` is a 1-D tensor, `0 <= slot < out.count`.
    func sum(_ x: Tensor, into out: Tensor, slot: Int)
    /// `out[slot] = #{n : argmax(logits[n]) == labels[n]}` as a float (exact below 2^24), with
    /// `argmax` the index of the row's first maximum (as `argmax(rows:output:)`).
    /// logits (N, K), labels (N) holding class indices; `0 <= slot < out.count`.
    func countCorrect(logits: Tensor, labels: Tensor, into out: Tensor, slot: Int)
}

// MARK: Shape checks (ShapeChecks.swift: preconditions every backend calls first)

extension ShapeChecks {
    @inline(__always)
    public static func slot(_ out: Tensor, _ slot: Int, _ what: StaticString) {
        precondition(out.rank == 1 && (0..<out.count).contains(slot), "\(what) into slot \(slot) of \(out)")
    }

    @inline(__always)
    public static func countCorrect(logits: Tensor, labels: Tensor, into out: Tensor, slot: Int) {
        precondition(logits.rank == 2 && labels.count == logits.shape[0] && logits.shape[1] > 0,
                     "countCorrect of \(logits) against \(labels)")
        Self.slot(out, slot, "countCorrect")
    }
}
