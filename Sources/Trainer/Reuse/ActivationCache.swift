import GPUTensor

/// Outputs of a frozen prefix, kept across epochs (no other tool does this automatically).
///
/// A frozen prefix runs in inference mode, so when its input does not change between epochs (no
/// random augmentation in front of it) its output for a training image is the same every epoch.
/// The first epoch stores each image's prefix output by dataset index; later epochs gather the
/// batch from the cache and start the forward pass after the prefix. Storage is host memory,
/// bounded by a budget; a prefix whose outputs do not fit is simply not cached.
final class ActivationCache {
    /// Blocks whose output is cached.
    let blocks: Int
    /// Per-image output shape of the prefix.
    let featureShape: [Int]
    let featureSize: Int
    private let storage: UnsafeMutablePointer<Float>   // (images, featureSize)
    private var filled: [Bool]
    /// Host staging for one batch, (maxBatch, featureSize).
    private var staging: [Float]
    private(set) var hits = 0
    private(set) var misses = 0

    /// Nil when `images * featureSize` floats exceed `budget` bytes.
    init?(images: Int, blocks: Int, featureShape: [Int], maxBatch: Int, budget: Int) {
        let size = featureShape.reduce(1, *)
        let bytes = images * size * MemoryLayout<Float>.stride
        guard blocks > 0, bytes <= budget else { return nil }
        self.blocks = blocks
        self.featureShape = featureShape
        featureSize = size
        storage = .allocate(capacity: max(1, images * size))
        filled = [Bool](repeating: false, count: images)
        staging = [Float](repeating: 0, count: maxBatch * size)
    }

    deinit { storage.deallocate() }

    var bytes: Int { filled.count * featureSize * MemoryLayout<Float>.stride }

    func contains(all indices: UnsafeBufferPointer<Int>) -> Bool {
        indices.allSatisfy { filled[$0] }
    }

    /// Uploads the cached features of `indices` into `destination` (N, featureShape...).
    func gather(_ indices: UnsafeBufferPointer<Int>, into destination: Tensor, backend: Backend) {
        let n = indices.count
        staging.withUnsafeMutableBufferPointer { buf in
            for (row, index) in indices.enumerated() {
                (buf.baseAddress! + row * featureSize).update(from: storage + index * featureSize, count: featureSize)
            }
            backend.upload(UnsafeBufferPointer(rebasing: buf[0..<(n * featureSize)]), to: destination)
        }
        hits += n
    }

    /// Stores the prefix outputs `features` (N, featureShape...) of the images `indices`.
    func store(_ features: Tensor, for indices: UnsafeBufferPointer<Int>, backend: Backend) throws {
        let n = indices.count
        try staging.withUnsafeMutableBufferPointer { buf in
            try backend.download(features, into: UnsafeMutableBufferPointer(rebasing: buf[0..<(n * featureSize)]))
            for (row, index) in indices.enumerated() {
                (storage + index * featureSize).update(from: buf.baseAddress! + row * featureSize, count: featureSize)
                filled[index] = true
            }
        }
        misses += n
    }
}

extension Model {
    /// Runs only the first `count` blocks (a frozen prefix, in inference mode).
    func forwardPrefix(_ x: Tensor, blocks count: Int) -> Tensor {
        forwardChain(Array(blocks[0..<count]), x, mode: .inference)
    }

    /// Runs the blocks from `first` on and the classifier, on features the prefix produced.
    func forward(features: Tensor, fromBlock first: Int, mode: ForwardMode) -> Tensor {
        forwardChain(Array(blocks[first...]) + classifier, features, mode: mode)
    }

    /// Per-image shape entering block `index`.
    func inputShape(ofBlock index: Int) -> [Int] { blockInputShapes[index] }
}
