import GPUTensor

extension ImageDataset {
    /// Random images with random labels from Philox `seed`: for benchmarks and tests that need
    /// data of a given shape, not a task to learn.
    public static func synthetic(count: Int, shape: ImageShape, classes: Int, seed: UInt64) -> ImageDataset {
        let size = shape.channels * shape.height * shape.width
        let pixels = (0..<(count * size)).map { UInt8(truncatingIfNeeded: Philox.bits(seed: seed, counter: 0x5359_4E, index: $0)) }
        let labels = (0..<count).map { Int32(Philox.bits(seed: seed, counter: 0x4C41_42, index: $0) % UInt32(classes)) }
        return ImageDataset(name: "synthetic", channels: shape.channels, height: shape.height, width: shape.width,
                            pixels: pixels, labels: labels, classes: classes,
                            classNames: (0..<classes).map { "class \($0)" })
    }
}
