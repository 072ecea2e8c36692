import GPUTensor

/// An epoch's per-batch loss sums and correct counts, kept on the device (one slot per batch,
/// written by `Backend.sum(_:into:slot:)` and `Backend.countCorrect`) and read back in bulk:
/// once per epoch, when the slots are full, or when a progress display asks (`running`).
///
/// The host adds the slots in Double in batch order, exactly as a per-batch `sum` read back
/// after each batch would, so the metrics are bit-identical to that (TrainingRunTests checks it)
/// without a host sync per batch. A non-finite slot is remembered as the first diverged batch.
final class BatchStatistics {
    let backend: Backend
    let losses: Tensor    // (capacity) loss sum of each pending batch
    let correct: Tensor   // (capacity) correct predictions of each pending batch
    var capacity: Int { losses.count }

    private var pendingImages: [Int] = []
    /// Per pending batch: its optimizer step was skipped (loss scaling).
    private var pendingSkipped: [Bool] = []
    private var host: [Float]
    /// Folded so far (batches before the pending ones).
    private(set) var lossSum = 0.0
    private(set) var correctCount = 0
    private(set) var images = 0
    private(set) var batches = 0
    /// 0-based index of the first batch whose loss sum is NaN or infinite.
    private(set) var firstNonFiniteBatch: Int?

    init(backend: Backend, capacity: Int) throws {
        self.backend = backend
        losses = try backend.allocate([max(capacity, 1)])
        correct = try backend.allocate([max(capacity, 1)])
        host = [Float](repeating: 0, count: 2 * max(capacity, 1))
        pendingImages.reserveCapacity(max(capacity, 1))
    }

    func reset() {
        pendingImages.removeAll(keepingCapacity: true)
        pendingSkipped.removeAll(keepingCapacity: true)
        lossSum = 0
        correctCount = 0
        images = 0
        batches = 0
        firstNonFiniteBatch = nil
    }

    /// Queues the statistics of one batch: `losses` (n) per-sample losses, `logits` (n, K), `labels` (n).
    func record(losses l: Tensor, logits: Tensor, labels: Tensor) throws {
        if pendingImages.count == capacity { try fold() }
        let slot = pendingImages.count
        backend.sum(l, into: losses, slot: slot)
        backend.countCorrect(logits: logits, labels: labels, into: correct, slot: slot)
        pendingImages.append(l.count)
        pendingSkipped.append(false)
    }

    /// Marks the batch recorded last as one whose step was skipped (loss scaling backed off): a
    /// non-finite loss there is left out of the sums and is no divergence; a finite one counts.
    func skipped() {
        if let last = pendingSkipped.indices.last { pendingSkipped[last] = true }
    }

    /// Reads the pending slots back (one host sync) and adds them in batch order.
    func fold() throws {
        let n = pendingImages.count
        guard n > 0 else { return }
        try host.withUnsafeMutableBufferPointer { buf in
            try backend.download(losses.slice(0..<n), into: UnsafeMutableBufferPointer(rebasing: buf[0..<n]))
            try backend.download(correct.slice(0..<n), into: UnsafeMutableBufferPointer(rebasing: buf[n..<(2 * n)]))
        }
        for i in 0..<n {
            let loss = host[i]
            if !loss.isFinite && pendingSkipped[i] { continue }
            if !loss.isFinite && firstNonFiniteBatch == nil { firstNonFiniteBatch = batches + i }
            lossSum += Double(loss)
            correctCount += Int(host[n + i])
            images += pendingImages[i]
        }
        batches += n
        pendingImages.removeAll(keepingCapacity: true)
        pendingSkipped.removeAll(keepingCapacity: true)
    }

    /// Mean loss and accuracy of the batches recorded so far (folds first: a host sync).
    func running() throws -> (loss: Double, accuracy: Double) {
        try fold()
        return (lossSum / Double(max(images, 1)), Double(correctCount) / Double(max(images, 1)))
    }
}

/// The loss, or the weights, became NaN or infinite. `trainEpoch` throws it before the epoch is
/// counted, so nothing of the diverged state is recorded; the run directory's driver fills in
/// `lastGoodEpoch` (the checkpoint a resume would start from) before it reaches the user.
public struct DivergenceError: Error, CustomStringConvertible, Equatable {
    /// 1-based epoch that diverged.
    public let epoch: Int
    /// 1-based batch of that epoch whose loss was first non-finite; nil when found elsewhere.
    public let batch: Int?
    /// What was non-finite: "non-finite loss", "non-finite validation loss", "non-finite weights (fc.weight)".
    public let what: String
    /// The newest checkpoint on disk, when the driver knows it.
    public var lastGoodEpoch: Int?

    public init(epoch: Int, batch: Int?, what: String, lastGoodEpoch: Int? = nil) {
        self.epoch = epoch
        self.batch = batch
        self.what = what
        self.lastGoodEpoch = lastGoodEpoch
    }

    /// `loss diverged at epoch 3 (batch 41): non-finite loss; the last good checkpoint is epoch 2`.
    public var description: String {
        "loss diverged at epoch \(epoch)" + (batch.map { " (batch \($0))" } ?? "") + ": \(what); "
            + (lastGoodEpoch.map { "the last good checkpoint is epoch \($0)" } ?? "no checkpoint was written")
            + " (try a smaller --lr)"
    }
}
