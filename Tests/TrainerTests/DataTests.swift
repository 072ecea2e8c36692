import XCTest
import Foundation
import CZlib
@testable import Trainer

/// A fresh directory under the system temp dir, removed at the end of the test.
func makeTemporaryDirectory(_ test: XCTestCase, file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let path = NSTemporaryDirectory() + "strata-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Asserts that `body` throws a DatasetError with `reason`, whose message names `file` (its
/// last path component) and `offset`; returns it for further checks.
@discardableResult
func assertDatasetError<T>(_ reason: DatasetError.Reason, file name: String, offset: Int?,
                           _ body: @autoclosure () throws -> T,
                           file: StaticString = #filePath, line: UInt = #line) -> DatasetError? {
    do {
        _ = try body()
        XCTFail("expected DatasetError.\(reason), nothing thrown", file: file, line: line)
    } catch let error as DatasetError {
        XCTAssertEqual(error.reason, reason, "\(error)", file: file, line: line)
        XCTAssertTrue(error.file.hasSuffix(name), "\(error) does not name \(name)", file: file, line: line)
        XCTAssertTrue(error.description.contains(name), "\(error)", file: file, line: line)
        XCTAssertEqual(error.offset, offset, "\(error)", file: file, line: line)
        if let offset {
            XCTAssertTrue(error.description.contains("at byte \(offset):"), "\(error)", file: file, line: line)
        }
        return error
    } catch {
        XCTFail("expected DatasetError.\(reason), got \(error)", file: file, line: line)
    }
    return nil
}

/// gzip-compresses with zlib (deflateInit2 with windowBits 15 + 16 writes a gzip wrapper).
func gzip(_ input: [UInt8]) -> [UInt8] { zlibCompress(input, windowBits: 15 + 16) }

/// Raw deflate (windowBits -15), as zip members hold it.
func rawDeflate(_ input: [UInt8]) -> [UInt8] { zlibCompress(input, windowBits: -15) }

func zlibCompress(_ input: [UInt8], windowBits: Int32) -> [UInt8] {
    var stream = z_stream()
    precondition(deflateInit2_(&stream, 6, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY,
                               zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK)
    defer { deflateEnd(&stream) }
    var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 32)
    var source = input
    let status = source.withUnsafeMutableBufferPointer { src in
        output.withUnsafeMutableBufferPointer { dst in
            stream.next_in = src.baseAddress
            stream.avail_in = UInt32(src.count)
            stream.next_out = dst.baseAddress
            stream.avail_out = UInt32(dst.count)
            return deflate(&stream, Z_FINISH)
        }
    }
    precondition(status == Z_STREAM_END)
    return Array(output[..<Int(stream.total_out)])
}

// MARK: - Fixtures

/// A CIFAR record: label, then pixel k of the 3072 equal to (seed + k) % 256.
func cifarRecord(label: UInt8, seed: Int) -> [UInt8] {
    [label] + (0..<3072).map { UInt8((seed + $0) % 256) }
}

/// IDX image file of `count` images rows x columns, pixel j of image i = (7i + j) % 256.
func idxImages(count: Int, rows: Int, columns: Int, magic: UInt32 = IDX.imagesMagic, declaredCount: Int? = nil) -> [UInt8] {
    var bytes: [UInt8] = []
    for word in [magic, UInt32(declaredCount ?? count), UInt32(rows), UInt32(columns)] {
        bytes += [UInt8(word >> 24), UInt8((word >> 16) & 0xff), UInt8((word >> 8) & 0xff), UInt8(word & 0xff)]
    }
    for i in 0..<count { bytes += (0..<(rows * columns)).map { UInt8((7 * i + $0) % 256) } }
    return bytes
}

func idxLabels(_ labels: [UInt8], magic: UInt32 = IDX.labelsMagic) -> [UInt8] {
    var bytes: [UInt8] = []
    for word in [magic, UInt32(labels.count)] {
        bytes += [UInt8(word >> 24), UInt8((word >> 16) & 0xff), UInt8((word >> 8) & 0xff), UInt8(word & 0xff)]
    }
    return bytes + labels
}

/// A small dataset: image i has all pixels equal to i (mod 256), label i % classes.
func syntheticDataset(count: Int, channels: Int = 3, height: Int = 4, width: Int = 4, classes: Int = 10) -> ImageDataset {
    let size = channels * height * width
    var pixels = [UInt8](repeating: 0, count: count * size)
    for i in 0..<count { for j in 0..<size { pixels[i * size + j] = UInt8((i + j) % 256) } }
    return ImageDataset(name: "synthetic", channels: channels, height: height, width: width, pixels: pixels,
                        labels: (0..<count).map { Int32($0 % classes) }, classes: classes)
}

final class CIFARTests: XCTestCase {
    func makeCIFAR(_ dir: String, train: [[[UInt8]]], test: [[UInt8]]) throws {
        for (k, records) in train.enumerated() {
            try writeBytes(records.flatMap { $0 }, to: "\(dir)/data_batch_\(k + 1).bin")
        }
        try writeBytes(test.flatMap { $0 }, to: "\(dir)/test_batch.bin")
    }

    func testReadsRecordsInFileOrderAsCHW() throws {
        let dir = try makeTemporaryDirectory(self)
        try makeCIFAR(dir, train: [[cifarRecord(label: 3, seed: 0), cifarRecord(label: 9, seed: 1)],
                                   [cifarRecord(label: 0, seed: 2)]],
                      test: [cifarRecord(label: 5, seed: 3)])
        try writeBytes(Array("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n".utf8), to: "\(dir)/batches.meta.txt")
        let (train, test) = try DatasetLoader.load(kind: .cifar10, path: dir)
        XCTAssertEqual(train.count, 3)
        XCTAssertEqual(test.count, 1)
        XCTAssertEqual(train.labels, [3, 9, 0])
        XCTAssertEqual(test.labels, [5])
        XCTAssertEqual(train.imageShape, [3, 32, 32])
        XCTAssertEqual(train.classNames, ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"])
        // Image 1, channel 1 (green), row 2, column 5: record byte 1 + 1024 + 2*32 + 5.
        let k = 1024 + 2 * 32 + 5
        XCTAssertEqual(train.pixels[1 * 3072 + k], UInt8((1 + k) % 256))
        XCTAssertEqual(test.pixels, Array(cifarRecord(label: 5, seed: 3).dropFirst()))
    }

    func testTarballLayoutAndDetection() throws {
        let root = try makeTemporaryDirectory(self)
        let dir = root + "/cifar-10-batches-bin"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        try makeCIFAR(dir, train: [[cifarRecord(label: 1, seed: 0)]], test: [cifarRecord(label: 2, seed: 0)])
        XCTAssertEqual(try DatasetLoader.detectKind(path: root), .cifar10)
        let (train, test) = try DatasetLoader.load(path: root)
        XCTAssertEqual(train.labels, [1])
        XCTAssertEqual(test.labels, [2])
        XCTAssertEqual(train.classNames, CIFAR10.defaultClassNames)
    }

    func testBatchesReadInNumericOrder() throws {
        let dir = try makeTemporaryDirectory(self)
        try makeCIFAR(dir, train: (0..<10).map { [cifarRecord(label: UInt8($0), seed: 0)] }, test: [])
        try writeBytes(cifarRecord(label: 0, seed: 0), to: "\(dir)/test_batch.bin")
        // data_batch_10 comes after data_batch_9, not after data_batch_1.
        XCTAssertEqual(try CIFAR10.load(directory: dir).train.labels, (0..<10).map { Int32($0) })
    }

    func testTruncatedFileNamesFileAndRecordStart() throws {
        let dir = try makeTemporaryDirectory(self)
        let records = (0..<3).map { cifarRecord(label: UInt8($0), seed: $0) }
        try makeCIFAR(dir, train: [records], test: [records[0]])
        try writeBytes(records.flatMap { $0 } + [1, 2, 3], to: "\(dir)/data_batch_2.bin")
        let error = assertDatasetError(.truncated, file: "data_batch_2.bin", offset: 3 * 3073,
                                       try CIFAR10.load(directory: dir))
        XCTAssertTrue(error?.detail.contains("not a multiple of 3073") ?? false, "\(String(describing: error))")
    }

    func testBadLabelNamesFileAndOffset() throws {
        let dir = try makeTemporaryDirectory(self)
        try makeCIFAR(dir, train: [[cifarRecord(label: 0, seed: 0)]],
                      test: [cifarRecord(label: 1, seed: 0), cifarRecord(label: 2, seed: 0), cifarRecord(label: 10, seed: 0)])
        let error = assertDatasetError(.badLabel, file: "test_batch.bin", offset: 2 * 3073, try CIFAR10.load(directory: dir))
        XCTAssertTrue(error?.detail.contains("label 10") ?? false)
    }

    func testMissingDirectoryAndFiles() throws {
        let dir = try makeTemporaryDirectory(self)
        assertDatasetError(.notFound, file: "nowhere", offset: nil, try CIFAR10.load(directory: dir + "/nowhere"))
        try writeBytes(cifarRecord(label: 0, seed: 0), to: "\(dir)/data_batch_1.bin")
        assertDatasetError(.notFound, file: "test_batch.bin", offset: nil, try CIFAR10.load(directory: dir))
        let empty = try makeTemporaryDirectory(self)
        assertDatasetError(.unrecognizedLayout, file: empty, offset: nil, try DatasetLoader.load(path: empty))
        assertDatasetError(.notFound, file: empty, offset: nil, try CIFAR10.load(directory: empty))
    }

    func testSharedSubset() throws {
        let path = "/work/shared/datasets/cifar10-subset"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) not present") }
        let (train, test) = try DatasetLoader.load(path: path)
        XCTAssertEqual(train.count, 5085)
        XCTAssertEqual(test.count, 1017)
        XCTAssertEqual(train.pixels.count, 5085 * 3072)
        XCTAssertEqual(train.classCounts.reduce(0, +), 5085)
        XCTAssertEqual(test.classCounts.reduce(0, +), 1017)
        XCTAssertTrue(train.classCounts.allSatisfy { $0 > 400 }, "\(train.classCounts)")
        XCTAssertEqual(train.classNames, CIFAR10.defaultClassNames)
        let (mean, std) = train.channelStatistics()
        // The well-known CIFAR-10 statistics (0.491, 0.482, 0.447), (0.247, 0.243, 0.262), loosely.
        for c in 0..<3 {
            XCTAssertEqual(mean[c], [0.491, 0.482, 0.447][c], accuracy: 0.02)
            XCTAssertEqual(std[c], [0.247, 0.243, 0.262][c], accuracy: 0.02)
        }
    }
}

final class IDXTests: XCTestCase {
    func makeIDX(_ dir: String, compress: Bool, trainCount: Int = 5, testCount: Int = 2) throws {
        let suffix = compress ? ".gz" : ""
        func put(_ bytes: [UInt8], _ name: String) throws {
            try writeBytes(compress ? gzip(bytes) : bytes, to: "\(dir)/\(name)\(suffix)")
        }
        try put(idxImages(count: trainCount, rows: 4, columns: 3), "train-images-idx3-ubyte")
        try put(idxLabels((0..<trainCount).map { UInt8($0 % 10) }), "train-labels-idx1-ubyte")
        try put(idxImages(count: testCount, rows: 4, columns: 3), "t10k-images-idx3-ubyte")
        try put(idxLabels((0..<testCount).map { UInt8(9 - $0 % 10) }), "t10k-labels-idx1-ubyte")
    }

    func testRawAndGzipReadTheSame() throws {
        let raw = try makeTemporaryDirectory(self), packed = try makeTemporaryDirectory(self)
        try makeIDX(raw, compress: false)
        try makeIDX(packed, compress: true)
        let a = try DatasetLoader.load(kind: .mnist, path: raw)
        let b = try DatasetLoader.load(path: packed)
        XCTAssertEqual(try DatasetLoader.detectKind(path: packed), .mnist)
        for (x, y) in [(a.train, b.train), (a.test, b.test)] {
            XCTAssertEqual(x.pixels, y.pixels)
            XCTAssertEqual(x.labels, y.labels)
            XCTAssertEqual(x.imageShape, [1, 4, 3])
        }
        XCTAssertEqual(a.train.count, 5)
        XCTAssertEqual(a.test.labels, [9, 8])
        XCTAssertEqual(a.train.pixels, Array(idxImages(count: 5, rows: 4, columns: 3).dropFirst(16)))
    }

    func testConcatenatedGzipMembers() throws {
        let dir = try makeTemporaryDirectory(self)
        let bytes = idxLabels([1, 2, 3, 4])
        try writeBytes(gzip(Array(bytes[..<6])) + gzip(Array(bytes[6...])), to: "\(dir)/l.gz")
        XCTAssertEqual(try IDX.readLabels("\(dir)/l.gz", classes: 10), [1, 2, 3, 4])
    }

    func testBadMagic() throws {
        let dir = try makeTemporaryDirectory(self)
        try writeBytes(idxImages(count: 2, rows: 2, columns: 2, magic: 0x0000_0801), to: "\(dir)/imgs")
        let e = assertDatasetError(.badMagic, file: "imgs", offset: 0, try IDX.readImages("\(dir)/imgs"))
        XCTAssertTrue(e?.detail.contains("0x00000801") ?? false, "\(String(describing: e))")
        try writeBytes(gzip(idxLabels([1], magic: 0x0000_0803)), to: "\(dir)/labels.gz")
        assertDatasetError(.badMagic, file: "labels.gz", offset: 0, try IDX.readLabels("\(dir)/labels.gz", classes: 10))
    }

    func testCountMismatch() throws {
        let dir = try makeTemporaryDirectory(self)
        try writeBytes(idxImages(count: 3, rows: 2, columns: 2), to: "\(dir)/train-images-idx3-ubyte")
        try writeBytes(idxLabels([1, 2]), to: "\(dir)/train-labels-idx1-ubyte")
        let e = assertDatasetError(.mismatch, file: "train-labels-idx1-ubyte", offset: 4,
                                   try IDX.load(images: "\(dir)/train-images-idx3-ubyte", labels: "\(dir)/train-labels-idx1-ubyte",
                                                name: "t", classNames: IDX.mnistClassNames))
        XCTAssertTrue(e?.detail.contains("2 labels") ?? false && e!.detail.contains("3 images"), "\(String(describing: e))")
    }

    func testDimensionsCheckedAgainstLength() throws {
        let dir = try makeTemporaryDirectory(self)
        // Header declares 4 images of 2x2 (32 bytes in all) but holds 3.
        try writeBytes(idxImages(count: 3, rows: 2, columns: 2, declaredCount: 4), to: "\(dir)/short")
        assertDatasetError(.truncated, file: "short", offset: 28, try IDX.readImages("\(dir)/short"))
        try writeBytes(gzip(idxImages(count: 3, rows: 2, columns: 2, declaredCount: 2)), to: "\(dir)/long.gz")
        let e = assertDatasetError(.trailingData, file: "long.gz", offset: 24, try IDX.readImages("\(dir)/long.gz"))
        XCTAssertTrue(e?.detail.contains("decompressed") ?? false)
        try writeBytes([0, 0, 8], to: "\(dir)/tiny")
        assertDatasetError(.truncated, file: "tiny", offset: 3, try IDX.readImages("\(dir)/tiny"))
        try writeBytes(idxLabels([1, 12, 3]), to: "\(dir)/labels")
        assertDatasetError(.badLabel, file: "labels", offset: 9, try IDX.readLabels("\(dir)/labels", classes: 10))
    }

    func testCorruptAndTruncatedGzip() throws {
        let dir = try makeTemporaryDirectory(self)
        let packed = gzip(idxImages(count: 50, rows: 8, columns: 8))
        try writeBytes(Array(packed[..<(packed.count / 2)]), to: "\(dir)/cut.gz")
        let e = assertDatasetError(.badCompression, file: "cut.gz", offset: packed.count / 2, try IDX.readImages("\(dir)/cut.gz"))
        XCTAssertTrue(e?.detail.contains("truncated") ?? false, "\(String(describing: e))")
        var broken = packed
        for i in 20..<40 { broken[i] ^= 0x5a }
        try writeBytes(broken, to: "\(dir)/broken.gz")
        do {
            _ = try IDX.readImages("\(dir)/broken.gz")
            XCTFail("corrupt gzip accepted")
        } catch let error as DatasetError {
            XCTAssertTrue([.badCompression, .badMagic, .truncated, .trailingData].contains(error.reason), "\(error)")
            XCTAssertTrue(error.description.contains("broken.gz"))
        }
    }

    func testMissingFiles() throws {
        let dir = try makeTemporaryDirectory(self)
        try makeIDX(dir, compress: true)
        try FileManager.default.removeItem(atPath: "\(dir)/t10k-labels-idx1-ubyte.gz")
        assertDatasetError(.notFound, file: "t10k-labels-idx1-ubyte[.gz]", offset: nil, try DatasetLoader.load(kind: .mnist, path: dir))
    }

    func testFashionMNIST() throws {
        let path = "/usr/share/datasets/fashion-mnist"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) not present") }
        XCTAssertEqual(try DatasetLoader.detectKind(path: path), .fashionMNIST)
        let (train, test) = try DatasetLoader.load(path: path)
        XCTAssertEqual(train.count, 60000)
        XCTAssertEqual(test.count, 10000)
        XCTAssertEqual(train.imageShape, [1, 28, 28])
        XCTAssertEqual(test.imageShape, [1, 28, 28])
        XCTAssertEqual(train.classCounts, [Int](repeating: 6000, count: 10))
        XCTAssertEqual(test.classCounts, [Int](repeating: 1000, count: 10))
        XCTAssertEqual(train.classNames[9], "Ankle boot")
    }
}

final class ImageDatasetTests: XCTestCase {
    func testSubsetAndStatistics() {
        // Two 1x1x2 images: channel values 0 and 255 -> mean 0.5, std 0.5.
        let d = ImageDataset(name: "d", channels: 2, height: 1, width: 1, pixels: [0, 10, 255, 10],
                             labels: [0, 1], classes: 2)
        let (mean, std) = d.channelStatistics()
        XCTAssertEqual(mean, [0.5, Float(10.0 / 255.0)])
        XCTAssertEqual(std[0], 0.5, accuracy: 1e-7)
        XCTAssertEqual(std[1], 0)
        let s = d.subset([1, 1, 0])
        XCTAssertEqual(s.pixels, [255, 10, 255, 10, 0, 10])
        XCTAssertEqual(s.labels, [1, 1, 0])
    }

    func testSplitIsSeededDisjointAndComplete() {
        let d = syntheticDataset(count: 1000)
        let (train, validation) = d.split(seed: 42)
        XCTAssertEqual(validation.count, 100)
        XCTAssertEqual(train.count, 900)
        let again = d.split(validationFraction: 0.1, seed: 42)
        XCTAssertEqual(again.validation.pixels, validation.pixels)
        XCTAssertEqual(again.train.labels, train.labels)
        let other = d.split(seed: 43)
        XCTAssertNotEqual(other.validation.pixels, validation.pixels)
        // Image i is identified by its first pixel i % 256 plus label i % 10: use a full key.
        let size = d.imageSize
        func keys(_ s: ImageDataset) -> [[UInt8]] { (0..<s.count).map { Array(s.pixels[($0 * size)..<($0 * size + 4)]) + [UInt8(s.labels[$0])] } }
        var all = keys(train) + keys(validation)
        all.sort { $0.lexicographicallyPrecedes($1) }
        var expected = keys(d)
        expected.sort { $0.lexicographicallyPrecedes($1) }
        XCTAssertEqual(all, expected)
    }

    func testPermutationIsAPermutationAndSeeded() {
        for n in [0, 1, 2, 7, 1000] {
            let p = Shuffle.permutation(count: n, seed: 5, counter: 9)
            XCTAssertEqual(p.sorted(), Array(0..<n))
            XCTAssertEqual(p, Shuffle.permutation(count: n, seed: 5, counter: 9))
        }
        XCTAssertNotEqual(Shuffle.permutation(count: 100, seed: 5, counter: 9), Shuffle.permutation(count: 100, seed: 6, counter: 9))
        XCTAssertNotEqual(Shuffle.permutation(count: 100, seed: 5, counter: 9), Shuffle.permutation(count: 100, seed: 5, counter: 10))
    }
}

final class BatchLoaderTests: XCTestCase {
    /// (indices, labels, first image value) of every batch of an epoch.
    func record(_ loader: BatchLoader, epoch: Int, from first: Int = 0) -> [([Int], [Float], [Float])] {
        var out: [([Int], [Float], [Float])] = []
        loader.forEachBatch(epoch: epoch, startingAt: first) { batch in
            XCTAssertEqual(batch.index, first + out.count)
            out.append((Array(batch.indices), Array(batch.labels), Array(batch.images)))
        }
        return out
    }

    func testEachEpochCoversEverySampleOnce() {
        let d = syntheticDataset(count: 103)
        let loader = BatchLoader(dataset: d, batchSize: 10, seed: 1)
        XCTAssertEqual(loader.batchesPerEpoch, 11)
        for epoch in 0..<3 {
            let batches = record(loader, epoch: epoch)
            XCTAssertEqual(batches.count, 11)
            XCTAssertEqual(batches.last?.0.count, 3)
            XCTAssertEqual(batches.flatMap { $0.0 }.sorted(), Array(0..<103))
        }
        let dropping = BatchLoader(dataset: d, batchSize: 10, seed: 1, partialBatch: .drop)
        XCTAssertEqual(dropping.batchesPerEpoch, 10)
        let batches = record(dropping, epoch: 0)
        XCTAssertEqual(batches.count, 10)
        XCTAssertTrue(batches.allSatisfy { $0.0.count == 10 })
        XCTAssertEqual(Set(batches.flatMap { $0.0 }).count, 100)
    }

    func testBatchContents() {
        let d = syntheticDataset(count: 20)
        let loader = BatchLoader(dataset: d, batchSize: 8, seed: 3)
        loader.forEachBatch(epoch: 0) { batch in
            XCTAssertEqual(batch.shape, [batch.count, 3, 4, 4])
            XCTAssertEqual(batch.images.count, batch.count * 48)
            for k in 0..<batch.count {
                let i = batch.indices[k]
                XCTAssertEqual(batch.labels[k], Float(d.labels[i]))
                for j in 0..<48 {
                    XCTAssertEqual(batch.images[k * 48 + j], Float(d.pixels[i * 48 + j]) / 255)
                }
            }
        }
    }

    func testOrderIsDeterministicAcrossLoadersPrefetchAndResume() {
        let d = syntheticDataset(count: 250)
        let a = BatchLoader(dataset: d, batchSize: 16, seed: 77, prefetch: 2)
        let b = BatchLoader(dataset: d, batchSize: 16, seed: 77, prefetch: 0)
        let c = BatchLoader(dataset: d, batchSize: 16, seed: 77, prefetch: 1)
        for epoch in [0, 1, 5] {
            let ra = record(a, epoch: epoch), rb = record(b, epoch: epoch), rc = record(c, epoch: epoch)
            XCTAssertEqual(ra.map { $0.0 }, rb.map { $0.0 })
            XCTAssertEqual(ra.map { $0.2 }, rb.map { $0.2 })
            XCTAssertEqual(ra.map { $0.2 }, rc.map { $0.2 })
            XCTAssertEqual(ra.map { $0.1 }, rc.map { $0.1 })
            // Resuming at batch 6 sees exactly the rest of the epoch.
            let resumed = record(a, epoch: epoch, from: 6)
            XCTAssertEqual(resumed.map { $0.0 }, ra[6...].map { $0.0 })
            XCTAssertEqual(resumed.map { $0.2 }, ra[6...].map { $0.2 })
        }
        XCTAssertNotEqual(a.order(epoch: 0), a.order(epoch: 1))
        XCTAssertNotEqual(a.order(epoch: 0), BatchLoader(dataset: d, batchSize: 16, seed: 78).order(epoch: 0))
        XCTAssertEqual(BatchLoader(dataset: d, batchSize: 16, shuffle: false).order(epoch: 3), Array(0..<250))
    }

    func testStoppingEarlyAndThrowing() {
        let d = syntheticDataset(count: 100)
        let loader = BatchLoader(dataset: d, batchSize: 10, seed: 2)
        for _ in 0..<20 {
            let it = loader.batches(epoch: 0)
            XCTAssertNotNil(it.next { $0.count })
            // Released here with the producer blocked on a full ring: must not hang.
        }
        struct Stop: Error {}
        var seen = 0
        XCTAssertThrowsError(try loader.forEachBatch(epoch: 1) { _ in
            seen += 1
            if seen == 3 { throw Stop() }
        })
        XCTAssertEqual(seen, 3)
        let it = loader.batches(epoch: 0, startingAt: 10)
        XCTAssertNil(it.next { $0.count })
    }

    func testSlowConsumerSeesSameBatches() {
        let d = syntheticDataset(count: 64)
        let loader = BatchLoader(dataset: d, batchSize: 8, seed: 9, prefetch: 2)
        let reference = record(BatchLoader(dataset: d, batchSize: 8, seed: 9, prefetch: 0), epoch: 2)
        var got: [[Float]] = []
        loader.forEachBatch(epoch: 2) { batch in
            usleep(2000)   // let the producer run ahead as far as it may
            got.append(Array(batch.images))
        }
        XCTAssertEqual(got, reference.map { $0.2 })
    }
}

/// Runs `executable` (a path, or a name looked up on PATH) with `arguments`, output discarded;
/// its exit status.
@discardableResult
func runTool(_ executable: String, _ arguments: [String]) throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable.contains("/") ? executable : "/usr/bin/env")
    p.arguments = executable.contains("/") ? arguments : [executable] + arguments
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    return p.terminationStatus
}

