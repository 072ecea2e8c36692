import GPUTensor

/// Labelled images held on the host as bytes (50,000 CIFAR images take 150 MB).
/// Conversion to float, augmentation and normalisation happen per batch (`BatchLoader`, then
/// device kernels).
///
///     let (train, test) = try DatasetLoader.load(path: "/data/cifar10")
///     let (fit, validation) = train.split(validationFraction: 0.1, seed: 42)
///     let stats = fit.channelStatistics()   // feed to Backend.normalizeChannels
public struct ImageDataset: Sendable {
    /// "cifar10/train", "fashion-mnist/test", ...
    public var name: String
    public let channels: Int
    public let height: Int
    public let width: Int
    /// (N, C, H, W) bytes, one image after another, each channel plane row-major.
    public let pixels: [UInt8]
    /// (N) class indices in 0..<classes.
    public let labels: [Int32]
    public let classes: Int
    /// `classes` names, in label order.
    public let classNames: [String]

    /// `pixels` must hold `labels.count` images of C*H*W bytes and every label must be in
    /// 0..<classes (readers check their files before building a dataset).
    public init(name: String, channels: Int, height: Int, width: Int,
                pixels: [UInt8], labels: [Int32], classes: Int, classNames: [String]? = nil) {
        precondition(channels > 0 && height > 0 && width > 0, "image shape \(channels)x\(height)x\(width)")
        precondition(pixels.count == labels.count * channels * height * width,
                     "\(pixels.count) pixel bytes for \(labels.count) images of \(channels)x\(height)x\(width)")
        precondition(classes > 0 && labels.allSatisfy { $0 >= 0 && Int($0) < classes }, "label out of 0..<\(classes)")
        precondition(classNames == nil || classNames!.count == classes, "\(classNames!.count) names for \(classes) classes")
        self.name = name
        self.channels = channels
        self.height = height
        self.width = width
        self.pixels = pixels
        self.labels = labels
        self.classes = classes
        self.classNames = classNames ?? (0..<classes).map { String($0) }
    }

    /// Number of images.
    public var count: Int { labels.count }
    /// Bytes (and floats) per image: C*H*W.
    public var imageSize: Int { channels * height * width }
    /// (C, H, W).
    public var imageShape: [Int] { [channels, height, width] }

    /// Images per class, indexed by label.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: classes)
        for label in labels { counts[Int(label)] += 1 }
        return counts
    }

    /// The images at `indices`, in that order (repeats allowed).
    public func subset(_ indices: [Int], name: String? = nil) -> ImageDataset {
        let size = imageSize
        var newPixels = [UInt8](repeating: 0, count: indices.count * size)
        var newLabels = [Int32](repeating: 0, count: indices.count)
        pixels.withUnsafeBufferPointer { src in
            newPixels.withUnsafeMutableBufferPointer { dst in
                for (k, i) in indices.enumerated() {
                    precondition(i >= 0 && i < count, "index \(i) out of 0..<\(count)")
                    dst.baseAddress!.advanced(by: k * size)
                        .update(from: src.baseAddress!.advanced(by: i * size), count: size)
                    newLabels[k] = labels[i]
                }
            }
        }
        return ImageDataset(name: name ?? self.name, channels: channels, height: height, width: width,
                            pixels: newPixels, labels: newLabels, classes: classes, classNames: classNames)
    }

    /// Per-channel mean and (population) standard deviation of the pixels scaled to [0, 1],
    /// the units `BatchLoader` produces, ready for `Backend.normalizeChannels`.
    /// Sums are exact integers, so the result does not depend on image order.
    public func channelStatistics() -> (mean: [Float], std: [Float]) {
        var sum = [UInt64](repeating: 0, count: channels)
        var sumSquares = [UInt64](repeating: 0, count: channels)
        let plane = height * width
        pixels.withUnsafeBufferPointer { p in
            for n in 0..<count {
                for c in 0..<channels {
                    let start = (n * channels + c) * plane
                    var s: UInt64 = 0, s2: UInt64 = 0
                    for k in start..<(start + plane) {
                        let v = UInt64(p[k])
                        s &+= v
                        s2 &+= v &* v
                    }
                    sum[c] &+= s
                    sumSquares[c] &+= s2
                }
            }
        }
        let total = Double(count * plane)
        guard total > 0 else {
            return ([Float](repeating: 0, count: channels), [Float](repeating: 1, count: channels))
        }
        var mean = [Float](), std = [Float]()
        for c in 0..<channels {
            let m = Double(sum[c]) / total
            let variance = max(Double(sumSquares[c]) / total - m * m, 0)
            mean.append(Float(m / 255))
            std.append(Float(variance.squareRoot() / 255))
        }
        return (mean, std)
    }

    /// A seeded random split into (train, validation), `validationFraction` of the images
    /// (rounded to nearest) going to validation. The same seed gives the same split; both parts
    /// keep the original order of their images.
    public func split(validationFraction: Double = 0.1, seed: UInt64) -> (train: ImageDataset, validation: ImageDataset) {
        precondition(validationFraction >= 0 && validationFraction <= 1, "validation fraction \(validationFraction)")
        // A warm worker's cached dataset: its split is kept too (`WarmDatasets`).
        let key = WarmDatasets.splitKey(self, fraction: validationFraction, seed: seed)
        if let key, let kept = WarmDatasets.split(key) { return kept }
        let validationCount = Int((Double(count) * validationFraction).rounded())
        let order = Shuffle.permutation(count: count, seed: seed, counter: Shuffle.splitStream)
        let validation = order[..<validationCount].sorted()
        let train = order[validationCount...].sorted()
        let parts = (subset(train, name: name + "/train-split"), subset(validation, name: name + "/validation-split"))
        if let key { WarmDatasets.storeSplit(key, parts) }
        return parts
    }
}

/// Seeded permutations from `Philox`, so that shuffles are reproducible from (seed, stream)
/// alone: a resumed run recomputes the order of any epoch without saved state.
public enum Shuffle {
    /// Philox counter of the train/validation split (ASCII "SPLIT").
    public static let splitStream: UInt64 = 0x5350_4C49_5400_0000
    /// Philox counter of epoch e's batch order is `epochStreamBase + e` (ASCII "EPOCH").
    public static let epochStreamBase: UInt64 = 0x4550_4F43_4800_0000

    /// A uniformly random permutation of 0..<count: Fisher-Yates where step k (swapping
    /// position count-1-k) draws a 64-bit word from Philox elements 2k and 2k+1 of stream
    /// (seed, counter) and maps it to 0...i by multiply-high (bias below 2^-32 for any count).
    public static func permutation(count: Int, seed: UInt64, counter: UInt64) -> [Int] {
        var order = Array(0..<count)
        guard count > 1 else { return order }
        var k = 0
        for i in stride(from: count - 1, to: 0, by: -1) {
            let block = Philox.block(seed: seed, counter: counter, index: UInt64(k >> 1))
            let word = (k & 1) == 0
                ? UInt64(block.0) << 32 | UInt64(block.1)
                : UInt64(block.2) << 32 | UInt64(block.3)
            let j = Int(word.multipliedFullWidth(by: UInt64(i + 1)).high)
            order.swapAt(i, j)
            k += 1
        }
        return order
    }
}
