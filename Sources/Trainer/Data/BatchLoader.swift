import Dispatch

/// What to do with the last batch of an epoch when the dataset size is not a multiple of the
/// batch size.
public enum PartialBatchPolicy: Sendable {
    /// Keep it: the last batch is smaller (evaluation, or exact epochs).
    case keep
    /// Drop it: every batch is full (stable BatchNorm statistics; a fixed shape for CUDA graphs).
    case drop
}

/// One batch, valid only inside the closure it is handed to (its memory is reused for a later
/// batch afterwards). Upload it with `backend.upload(batch.images, to: x.slice(0..<batch.count))`.
public struct ImageBatch {
    /// Epoch and batch number within the epoch (to derive augmentation counters from).
    public let epoch: Int
    public let index: Int
    /// Images in this batch: `batchSize`, or fewer for a kept partial last batch.
    public let count: Int
    /// (count, C, H, W): pixels scaled to [0, 1] (byte / 255).
    public let images: UnsafeBufferPointer<Float>
    /// (count): class indices as floats, as the Backend's loss kernels expect.
    public let labels: UnsafeBufferPointer<Float>
    /// (count): the dataset index of each image.
    public let indices: UnsafeBufferPointer<Int>
    /// (C, H, W) of one image.
    public let imageShape: (channels: Int, height: Int, width: Int)

    /// [count, C, H, W].
    public var shape: [Int] { [count, imageShape.channels, imageShape.height, imageShape.width] }
}

/// Batches of an `ImageDataset`, in a seeded order per epoch, prepared on a background queue
/// while the caller computes.
///
/// The order of epoch `e` is `Shuffle.permutation(count:seed:counter: Shuffle.epochStreamBase + e)`:
/// it depends on (seed, epoch) only, so a run resumed at epoch `e`, batch `b` sees exactly the
/// batches the interrupted run would have seen. Batch contents never depend on timing: the
/// background queue only decides *when* a batch is ready, never *what* it holds.
///
///     let loader = BatchLoader(dataset: train, batchSize: 128, seed: 7, partialBatch: .drop)
///     for epoch in startEpoch..<epochs {
///         try loader.forEachBatch(epoch: epoch) { batch in
///             backend.upload(batch.images, to: x.slice(0..<batch.count))
///             backend.upload(batch.labels, to: y.slice(0..<batch.count))
///             try step(batch.count)
///         }
///     }
public final class BatchLoader {
    public let dataset: ImageDataset
    public let batchSize: Int
    public let seed: UInt64
    /// False: every epoch in dataset order (evaluation).
    public let shuffle: Bool
    public let partialBatch: PartialBatchPolicy
    /// Batches prepared ahead of the one the caller holds (0: prepared on the caller's thread).
    public let prefetch: Int

    public init(dataset: ImageDataset, batchSize: Int, seed: UInt64 = 0, shuffle: Bool = true,
                partialBatch: PartialBatchPolicy = .keep, prefetch: Int = 2) {
        precondition(batchSize > 0, "batch size \(batchSize)")
        precondition(prefetch >= 0 && prefetch <= 8, "prefetch \(prefetch) (0...8)")
        self.dataset = dataset
        self.batchSize = batchSize
        self.seed = seed
        self.shuffle = shuffle
        self.partialBatch = partialBatch
        self.prefetch = prefetch
    }

    /// Batches in each epoch.
    public var batchesPerEpoch: Int {
        switch partialBatch {
        case .keep: return (dataset.count + batchSize - 1) / batchSize
        case .drop: return dataset.count / batchSize
        }
    }

    /// Images seen per epoch (all of them unless a partial batch is dropped).
    public var samplesPerEpoch: Int { min(batchesPerEpoch * batchSize, dataset.count) }

    /// Dataset indices in the order epoch `epoch` visits them (all of them, also those a
    /// dropped partial batch skips).
    public func order(epoch: Int) -> [Int] {
        precondition(epoch >= 0, "epoch \(epoch)")
        guard shuffle else { return Array(0..<dataset.count) }
        return Shuffle.permutation(count: dataset.count, seed: seed, counter: Shuffle.epochStreamBase &+ UInt64(epoch))
    }

    /// An iterator over the batches of `epoch`, from batch `startingAt` (to resume mid-epoch).
    /// Background preparation starts at once; it stops when the iterator is released.
    public func batches(epoch: Int, startingAt first: Int = 0) -> BatchIterator {
        precondition(first >= 0 && first <= batchesPerEpoch, "start batch \(first) of \(batchesPerEpoch)")
        return BatchIterator(loader: self, epoch: epoch, first: first)
    }

    /// Calls `body` with each batch of `epoch` from batch `startingAt`, in order. If `body`
    /// throws, the rest of the epoch is skipped and the error rethrown.
    public func forEachBatch(epoch: Int, startingAt first: Int = 0, _ body: (ImageBatch) throws -> Void) rethrows {
        let iterator = batches(epoch: epoch, startingAt: first)
        while try iterator.next(body) != nil {}
    }

    /// 256 floats: byte / 255, rounded as `Float(byte) / 255` (what torchvision's ToTensor gives).
    static let byteToUnit: [Float] = (0..<256).map { Float($0) / 255 }
}

/// Batches of one epoch (see `BatchLoader.batches(epoch:startingAt:)`). Not thread-safe: use it
/// from one thread.
public final class BatchIterator {
    public let epoch: Int
    /// Number of the batch the next call to `next` hands out.
    public private(set) var nextIndex: Int
    private let pipeline: Pipeline

    init(loader: BatchLoader, epoch: Int, first: Int) {
        self.epoch = epoch
        self.nextIndex = first
        pipeline = Pipeline(loader: loader, epoch: epoch, first: first)
        pipeline.start()
    }

    deinit { pipeline.stop() }

    /// Hands the next batch to `body` and returns its result, or returns nil at the end of the
    /// epoch. The batch's memory is reused once `body` returns.
    public func next<R>(_ body: (ImageBatch) throws -> R) rethrows -> R? {
        guard nextIndex < pipeline.end else { return nil }
        let index = nextIndex
        nextIndex += 1
        let slot = pipeline.acquire(index)
        defer { pipeline.release() }
        let batch = slot.batch(epoch: epoch, index: index, shape: pipeline.imageShape)
        return try body(batch)
    }
}

/// The producer side: `prefetch + 1` preallocated slots in a ring; batch b goes to slot
/// b % slots. `free` counts slots the producer may fill, `ready` counts filled ones.
private final class Pipeline: @unchecked Sendable {
    let dataset: ImageDataset
    let batchSize: Int
    let order: [Int]
    let first: Int
    let end: Int
    let imageShape: (channels: Int, height: Int, width: Int)
    let background: Bool
    let slots: [Slot]
    let free: DispatchSemaphore
    let ready = DispatchSemaphore(value: 0)
    let finished = DispatchSemaphore(value: 0)
    // Guarded by `lock`; written by the consumer, read by the producer.
    private let lock = DispatchSemaphore(value: 1)
    private var cancelled = false

    init(loader: BatchLoader, epoch: Int, first: Int) {
        dataset = loader.dataset
        batchSize = loader.batchSize
        order = loader.order(epoch: epoch)
        self.first = first
        end = loader.batchesPerEpoch
        imageShape = (dataset.channels, dataset.height, dataset.width)
        background = loader.prefetch > 0
        let slotCount = background ? min(loader.prefetch + 1, max(end - first, 1)) : 1
        slots = (0..<slotCount).map { _ in Slot(capacity: loader.batchSize, imageSize: loader.dataset.imageSize) }
        // Created at 0 and raised: libdispatch traps when a semaphore is freed below its
        // initial value, which a cancelled epoch leaves it.
        free = DispatchSemaphore(value: 0)
        for _ in 0..<slotCount { free.signal() }
    }

    var isCancelled: Bool {
        lock.wait(); defer { lock.signal() }
        return cancelled
    }

    func start() {
        guard background, first < end else { finished.signal(); return }
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            for b in first..<end {
                free.wait()
                if isCancelled { break }
                fill(slots[b % slots.count], batch: b)
                ready.signal()
            }
            finished.signal()
        }
    }

    /// Stops the producer and waits until it no longer touches the slots.
    func stop() {
        lock.wait(); cancelled = true; lock.signal()
        free.signal()   // wake a producer waiting for a slot
        finished.wait()
    }

    func acquire(_ b: Int) -> Slot {
        let slot = slots[b % slots.count]
        if background { ready.wait() } else { fill(slot, batch: b) }
        return slot
    }

    func release() {
        if background { free.signal() }
    }

    /// Writes batch b: images as byte / 255, labels as floats.
    func fill(_ slot: Slot, batch b: Int) {
        let start = b * batchSize
        let n = min(batchSize, order.count - start)
        let size = dataset.imageSize
        slot.count = n
        BatchLoader.byteToUnit.withUnsafeBufferPointer { table in
            dataset.pixels.withUnsafeBufferPointer { pixels in
                for k in 0..<n {
                    let i = order[start + k]
                    slot.indices[k] = i
                    slot.labels[k] = Float(dataset.labels[i])
                    let src = pixels.baseAddress! + i * size
                    let dst = slot.images.baseAddress! + k * size
                    for j in 0..<size { dst[j] = table[Int(src[j])] }
                }
            }
        }
    }
}

/// One batch's buffers, allocated once per iterator and reused.
private final class Slot {
    let images: UnsafeMutableBufferPointer<Float>   // (batchSize, C, H, W)
    let labels: UnsafeMutableBufferPointer<Float>   // (batchSize)
    let indices: UnsafeMutableBufferPointer<Int>    // (batchSize)
    let imageSize: Int
    var count = 0

    init(capacity: Int, imageSize: Int) {
        self.imageSize = imageSize
        images = .allocate(capacity: capacity * imageSize)
        images.initialize(repeating: 0)
        labels = .allocate(capacity: capacity)
        labels.initialize(repeating: 0)
        indices = .allocate(capacity: capacity)
        indices.initialize(repeating: 0)
    }

    deinit {
        images.deallocate()
        labels.deallocate()
        indices.deallocate()
    }

    func batch(epoch: Int, index: Int, shape: (channels: Int, height: Int, width: Int)) -> ImageBatch {
        ImageBatch(epoch: epoch, index: index, count: count,
              images: UnsafeBufferPointer(rebasing: images[..<(count * imageSize)]),
              labels: UnsafeBufferPointer(rebasing: labels[..<count]),
              indices: UnsafeBufferPointer(rebasing: indices[..<count]),
              imageShape: shape)
    }
}
