#if CUDA
import CCuda

// Launchers of the per-batch statistics kernels (`sum_to_slot`, `count_correct_to_slot` in
// CUDAKernelSource): each a single block of `blockSize` threads, queued on the stream like any
// other kernel, so the trainer never waits for the GPU until it reads an epoch's slots.
extension CUDABackend {
    public func sum(_ x: Tensor, into out: Tensor, slot: Int) {
        precondition(out.rank == 1 && (0..<out.count).contains(slot), "sum into slot \(slot) of \(out)")
        guard x.count > 0 else { fill(out.slice(slot..<(slot + 1)), value: 0); return }
        launch(.sum_to_slot, count: x.count, blocks: 1, [.tensor(x), .int(x.count), .tensor(out), .int(slot)])
    }

    public func countCorrect(logits: Tensor, labels: Tensor, into out: Tensor, slot: Int) {
        precondition(logits.rank == 2 && labels.count == logits.shape[0] && logits.shape[1] > 0,
                     "countCorrect of \(logits) against \(labels)")
        precondition(out.rank == 1 && (0..<out.count).contains(slot), "countCorrect into slot \(slot) of \(out)")
        guard logits.shape[0] > 0 else { fill(out.slice(slot..<(slot + 1)), value: 0); return }
        launch(.count_correct_to_slot, count: logits.shape[0], blocks: 1,
               [.tensor(logits), .tensor(labels), .int(logits.shape[0]), .int(logits.shape[1]), .tensor(out), .int(slot)])
    }
}
#endif
