import GPUTensor

/// Outputs of a frozen prefix, kept across epochs (no other tool does this automatically).
///
/// A frozen prefix runs in inference mode, so when its input does not change between epochs (no
/// random augmentation in front of it) its output for a training image is the same every epoch.
/// The first epoch stores each image's prefix output by dataset index; later epochs gather the
/// batch from the cache and start the forward pass after the prefix. Storage is host memory,
/// bounded by a budget; a prefix whose outputs do not fit is simply not cached.
///
/// With a `file`, the cache is shared between runs: it is loaded at start when the file's
/// fingerprint (of the prefix's weights, the data, the split and the normalisation) matches, and
/// written (atomically) once, after the first epoch. Layout: "STRATAAC",
/// fingerprint, image count and floats per image as little-endian UInt64; one byte per image
/// (1: cached); then the floats, little-endian.
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
    /// The shared file, its fingerprint, and how many images it held when last read or written.
    let file: String?
    let fingerprint: UInt64
    private(set) var loadedFromFile = 0
    private var persistedCount = 0
    static let magic = Array("STRATAAC".utf8)

    /// Nil when `images * featureSize` floats exceed `budget` bytes.
    init?(images: Int, blocks: Int, featureShape: [Int], maxBatch: Int, budget: Int, file: String? = nil,
          fingerprint: UInt64 = 0) {
        let size = featureShape.reduce(1, *)
        let bytes = images * size * MemoryLayout<Float>.stride
        guard blocks > 0, bytes <= budget else { return nil }
        self.blocks = blocks
        self.featureShape = featureShape
        featureSize = size
        storage = .allocate(capacity: max(1, images * size))
        filled = [Bool](repeating: false, count: images)
        staging = [Float](repeating: 0, count: maxBatch * size)
        self.file = file
        self.fingerprint = fingerprint
        if let file { load(file) }
    }

    private var header: [UInt8] {
        var h = Self.magic
        for v in [fingerprint, UInt64(filled.count), UInt64(featureSize)] {
            withUnsafeBytes(of: v.littleEndian) { h += $0 }
        }
        return h
    }

    private var fileSize: Int { header.count + filled.count + filled.count * featureSize * 4 }

    /// Takes the file's images when its header matches; anything else (absent, short, another
    /// prefix or data) leaves the cache empty, to be filled and written anew.
    private func load(_ path: String) {
        let count = filled.count * featureSize
        guard let reader = try? RegularFile(path, limit: fileSize), reader.size == fileSize,
              let head = try? reader.read(header.count), head == header,
              let mask = try? reader.read(filled.count), let bytes = try? reader.read(count * 4) else { return }
        bytes.withUnsafeBytes { raw in
            if Self.hostIsLittleEndian {
                UnsafeMutableRawPointer(storage).copyMemory(from: raw.baseAddress!, byteCount: count * 4)
            } else {
                for i in 0..<count {
                    storage[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
            }
        }
        for i in filled.indices { filled[i] = mask[i] == 1 }
        loadedFromFile = filled.filter { $0 }.count
        persistedCount = loadedFromFile
    }

    /// Writes the cache to its file (atomically) once, after the first epoch that filled it.
    /// The images a dropped last batch left out fill in later epochs, but are not written again:
    /// a run that loads the file computes those few itself, and a second write of the whole file
    /// (84 MB for a 1-conv seed-000 prefix on 4.6k images) cost more than it saved.
    func persist() throws {
        guard let file, persistedCount == 0 else { return }
        let count = filled.filter { $0 }.count
        guard count > 0 else { return }
        let head = header + filled.map { $0 ? 1 : 0 }
        let floats = filled.count * featureSize
        try head.withUnsafeBytes { headBytes in
            if Self.hostIsLittleEndian {
                // The file's floats are little-endian: on this host, the storage as it lies.
                try FileSystem.writeAtomically(parts: [headBytes, UnsafeRawBufferPointer(start: storage, count: floats * 4)],
                                               to: file)
            } else {
                let swapped = (0..<floats).map { storage[$0].bitPattern.littleEndian }
                try swapped.withUnsafeBytes { try FileSystem.writeAtomically(parts: [headBytes, $0], to: file) }
            }
        }
        persistedCount = count
    }

    private static let hostIsLittleEndian = 1.littleEndian == 1

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
