/// The argument table of a multi-tensor optimizer launch (`sgd_multi`, `adam_multi` in
/// CUDAMultiTensor.swift): one kernel launch updates every parameter tensor of a step, instead of
/// one launch per tensor (ResNet-56 has 170; at small batches the per-tensor launches are
/// launch-bound). No CUDA in it, so it is tested without a GPU and without the CUDA trait.
///
/// The table is 64-bit words, uploaded to the device and read by the kernel:
///
/// ```
/// [ tensor 0's K pointers, tensor 1's K pointers, ...      ]  K = pointersPerTensor
/// [ tensor 0's F scalars,  tensor 1's F scalars, ...       ]  F = scalarsPerTensor, Float bits in the low 32 bits
/// [ chunk 0: tensor, start, count;  chunk 1: ...           ]  3 words a chunk
/// ```
///
/// Every tensor is cut into chunks of at most `chunkSize` elements, in order; block b of the
/// launch updates chunks b, b + gridDim, ... Empty tensors get no chunk.
struct MultiTensorTable: Equatable {
    struct Chunk: Equatable {
        var tensor: Int
        var start: Int
        var count: Int
    }

    /// One tensor's entry: its pointers (0 for an absent one, such as SGD's velocity without
    /// momentum), its scalars (e.g. its learning rate) and its element count.
    struct Entry {
        var pointers: [UInt64]
        var scalars: [Float]
        var count: Int
    }

    let tensors: Int
    let pointersPerTensor: Int
    let scalarsPerTensor: Int
    let chunks: [Chunk]
    let words: [UInt64]

    /// 64 Ki elements: a block of 256 threads does 256 elements a thread, big enough that the
    /// chunk lookup costs nothing and small enough that a few large tensors still spread over
    /// every multiprocessor.
    static let defaultChunkSize = 1 << 16

    init(_ entries: [Entry], pointersPerTensor k: Int, scalarsPerTensor f: Int, chunkSize: Int = defaultChunkSize) {
        precondition(chunkSize > 0, "chunk size \(chunkSize)")
        precondition(entries.allSatisfy { $0.pointers.count == k && $0.scalars.count == f && $0.count >= 0 },
                     "every entry needs \(k) pointers, \(f) scalars and a count of at least 0")
        tensors = entries.count
        pointersPerTensor = k
        scalarsPerTensor = f
        var chunks: [Chunk] = []
        for (t, entry) in entries.enumerated() {
            var start = 0
            while start < entry.count {
                let count = min(chunkSize, entry.count - start)
                chunks.append(Chunk(tensor: t, start: start, count: count))
                start += count
            }
        }
        self.chunks = chunks
        var words: [UInt64] = []
        words.reserveCapacity(entries.count * (k + f) + 3 * chunks.count)
        for entry in entries { words += entry.pointers }
        for entry in entries { words += entry.scalars.map { UInt64($0.bitPattern) } }
        for chunk in chunks { words += [UInt64(chunk.tensor), UInt64(chunk.start), UInt64(chunk.count)] }
        self.words = words
    }

    /// Where each part starts, in words.
    var scalarsOffset: Int { tensors * pointersPerTensor }
    var chunksOffset: Int { tensors * (pointersPerTensor + scalarsPerTensor) }
}
