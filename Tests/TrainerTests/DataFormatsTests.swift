import XCTest
import Foundation
import CZlib
@testable import Trainer

/// A `.npy` file: version 1 header padded to 64 bytes, then `data`.
func npy(_ descr: String, _ shape: [Int], _ data: [UInt8]) -> [UInt8] {
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
    while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
    header += "\n"
    let n = header.utf8.count
    return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 0xFF), UInt8(n >> 8)] + Array(header.utf8) + data
}

func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
}

/// A zip archive of `members` (name, bytes), each stored or raw-deflated, as `np.savez` writes.
func zipArchive(_ members: [(String, [UInt8])], deflate: Bool) -> [UInt8] {
    var out: [UInt8] = [], directory: [UInt8] = []
    func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    func u32(_ v: Int) -> [UInt8] { u16(v & 0xFFFF) + u16(v >> 16 & 0xFFFF) }
    for (name, data) in members {
        let crc = data.withUnsafeBufferPointer { Int(crc32(0, $0.baseAddress, UInt32($0.count))) }
        let body = deflate ? rawDeflate(data) : data
        let method = deflate ? 8 : 0
        let offset = out.count
        let common = u16(20) + u16(0) + u16(method) + u16(0) + u16(0) + u32(crc) + u32(body.count) + u32(data.count)
            + u16(name.utf8.count) + u16(0)
        out += u32(0x0403_4b50) + common + Array(name.utf8) + body
        directory += u32(0x0201_4b50) + u16(20) + common + u16(0) + u16(0) + u16(0) + u32(0) + u32(offset) + Array(name.utf8)
    }
    let start = out.count
    out += directory
    out += u32(0x0605_4b50) + u16(0) + u16(0) + u16(members.count) + u16(members.count) + u32(directory.count) + u32(start) + u16(0)
    return out
}


func octal(_ value: Int, _ width: Int) -> String {
    let digits = String(value, radix: 8)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}

/// A ustar archive of regular files.
func tarArchive(_ files: [(String, [UInt8])], type: UInt8 = UInt8(ascii: "0")) -> [UInt8] {
    var out: [UInt8] = []
    for (name, data) in files {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int) { for (i, b) in text.utf8.enumerated() { header[offset + i] = b } }
        put(name, at: 0)
        put("0000644\0", at: 100)
        put("0000000\0", at: 108)
        put("0000000\0", at: 116)
        put(octal(data.count, 11) + "\0", at: 124)
        put("00000000000\0", at: 136)
        header[156] = type
        put("ustar\0", at: 257)
        put("00", at: 263)
        for i in 148..<156 { header[i] = 32 }
        let sum = header.reduce(0) { $0 + Int($1) }
        put(octal(sum, 6) + "\0 ", at: 148)
        out += header + data + [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
    }
    return out + [UInt8](repeating: 0, count: 1024)
}

/// CIFAR-100 records: (coarse, fine, pixel value).
func cifar100Records(_ records: [(UInt8, UInt8, UInt8)]) -> [UInt8] {
    records.flatMap { [$0.0, $0.1] + [UInt8](repeating: $0.2, count: 3072) }
}

final class DataFormatsTests: XCTestCase {
    override func setUp() {
        super.setUp()
        // Every test gets its own dataset cache.
        let dir = NSTemporaryDirectory() + "strata-cache-" + UUID().uuidString
        setenv("STRATA_CACHE_DIR", dir, 1)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    }

    // MARK: digests

    func testDigestsMatchKnownVectors() {
        XCTAssertEqual(SHA256.hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(MD5.hex([]), "d41d8cd98f00b204e9800998ecf8427e")
        XCTAssertEqual(MD5.hex(Array("abc".utf8)), "900150983cd24fb0d6963f7d28e17f72")
        XCTAssertEqual(MD5.hex(Array("The quick brown fox jumps over the lazy dog".utf8)), "9e107d9d372bb6826bd81d3542a419d6")
        // Chunked updates (across block edges) equal one update.
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        var sha = SHA256(), md5 = MD5()
        for chunk in stride(from: 0, to: data.count, by: 37) {
            let part = Array(data[chunk..<min(chunk + 37, data.count)])
            sha.update(part)
            md5.update(part)
        }
        XCTAssertEqual(sha.finalize(), SHA256.hex(data))
        XCTAssertEqual(md5.finalize(), MD5.hex(data))
    }

    // MARK: tar

    func testTarReadsFilesAndRefusesEscapesAndBadHeaders() throws {
        let archive = tarArchive([("cifar-10-batches-bin/a.bin", [1, 2, 3]), ("cifar-10-batches-bin/b.txt", Array("hi".utf8))])
        let entries = try Tar.entries(archive, file: "x.tar")
        XCTAssertEqual(entries.map(\.name), ["cifar-10-batches-bin/a.bin", "cifar-10-batches-bin/b.txt"])
        XCTAssertEqual(Array(archive[entries[0].data]), [1, 2, 3])
        let dir = try makeTemporaryDirectory(self)
        XCTAssertEqual(try Tar.extract(archive, file: "x.tar", into: dir), 2)
        XCTAssertEqual(try FileSystem.readFile(dir + "/cifar-10-batches-bin/b.txt"), Array("hi".utf8))

        assertDatasetError(.badHeader, file: "x.tar", offset: 0, try Tar.entries(tarArchive([("../evil", [1])]), file: "x.tar"))
        assertDatasetError(.badHeader, file: "x.tar", offset: 0, try Tar.entries(tarArchive([("/etc/evil", [1])]), file: "x.tar"))
        assertDatasetError(.badHeader, file: "x.tar", offset: 0,
                           try Tar.entries(tarArchive([("link", [])], type: UInt8(ascii: "2")), file: "x.tar"))
        var corrupt = archive
        corrupt[0] ^= 0xFF
        assertDatasetError(.badHeader, file: "x.tar", offset: 0, try Tar.entries(corrupt, file: "x.tar"))
        assertDatasetError(.truncated, file: "x.tar", offset: 0, try Tar.entries(Array(archive.prefix(514)), file: "x.tar"))
        // The last member's data unpadded and no end blocks (found by fuzz/FuzzTar): still read.
        let unpadded = Array(tarArchive([("a", [1, 2, 3])]).prefix(515))
        XCTAssertEqual(try Tar.entries(unpadded, file: "x.tar").map(\.name), ["a"])
    }

    // MARK: CIFAR-100

    func testCIFAR100ReadsFineAndCoarseLabels() throws {
        let dir = try makeTemporaryDirectory(self)
        try FileManager.default.createDirectory(atPath: dir + "/cifar-100-binary", withIntermediateDirectories: true)
        try writeBytes(cifar100Records([(3, 42, 7), (19, 99, 9), (0, 0, 1)]), to: dir + "/cifar-100-binary/train.bin")
        try writeBytes(cifar100Records([(5, 50, 2)]), to: dir + "/cifar-100-binary/test.bin")
        XCTAssertEqual(try DatasetLoader.detectKind(path: dir), .cifar100)
        let (train, test) = try DatasetLoader.load(path: dir)
        XCTAssertEqual(train.labels, [42, 99, 0])
        XCTAssertEqual(train.classes, 100)
        XCTAssertEqual(test.labels, [50])
        XCTAssertEqual(train.imageShape, [3, 32, 32])
        XCTAssertEqual(train.pixels[3072], 9)
        let (coarse, _) = try DatasetLoader.load(kind: .cifar100, path: dir, options: DatasetOptions(labels: .coarse))
        XCTAssertEqual(coarse.labels, [3, 19, 0])
        XCTAssertEqual(coarse.classes, 20)
    }

    func testCIFAR100RefusesBadFilesWithOneLine() throws {
        var pixels: [UInt8] = [], labels: [Int32] = []
        assertDatasetError(.truncated, file: "train.bin", offset: 3074,
                           try CIFAR100.parse(cifar100Records([(1, 1, 1)]) + [1, 2], file: "train.bin", labels: .fine, pixels: &pixels, classes: &labels))
        assertDatasetError(.badLabel, file: "train.bin", offset: 3074 + 1,
                           try CIFAR100.parse(cifar100Records([(1, 1, 1), (1, 100, 1)]), file: "train.bin", labels: .fine, pixels: &pixels, classes: &labels))
        assertDatasetError(.badLabel, file: "train.bin", offset: 0,
                           try CIFAR100.parse(cifar100Records([(20, 1, 1)]), file: "train.bin", labels: .fine, pixels: &pixels, classes: &labels))
        assertDatasetError(.truncated, file: "test.bin", offset: 0,
                           try CIFAR100.parse([], file: "test.bin", labels: .coarse, pixels: &pixels, classes: &labels))
    }

    // MARK: NumPy

    /// (x_train NHWC uint8 2x2x2x3, y_train int64, x_test NCHW, y_test uint8) members.
    func numpyMembers() -> [(String, [UInt8])] {
        let nhwc = (0..<24).map { UInt8($0) }
        // The same two images in NCHW order.
        var nchw = [UInt8](repeating: 0, count: 24)
        for n in 0..<2 { for p in 0..<4 { for c in 0..<3 { nchw[n * 12 + c * 4 + p] = nhwc[n * 12 + p * 3 + c] } } }
        return [("x_train.npy", npy("|u1", [2, 2, 2, 3], nhwc)),
                ("y_train.npy", npy("<i8", [2], littleEndian([Int64(1), 4]))),
                ("x_test.npy", npy("|u1", [2, 3, 2, 2], nchw)),
                ("y_test.npy", npy("|u1", [2], [0, 2]))]
    }

    func testNumPyNPZStoredAndDeflatedAndNPYDirectory() throws {
        let dir = try makeTemporaryDirectory(self)
        for deflate in [false, true] {
            let path = dir + "/data-\(deflate).npz"
            try writeBytes(zipArchive(numpyMembers(), deflate: deflate), to: path)
            XCTAssertEqual(try DatasetLoader.detectKind(path: path), .numpy)
            let (train, test) = try DatasetLoader.load(path: path, options: DatasetOptions(useCache: false))
            XCTAssertEqual(train.imageShape, [3, 2, 2])
            XCTAssertEqual(train.labels, [1, 4])
            XCTAssertEqual(train.classes, 5)
            // NHWC pixel (n=0, y=0, x=1, c=2) = 5 lands at CHW index c*4 + 1.
            XCTAssertEqual(train.pixels[2 * 4 + 1], 5)
            XCTAssertEqual(test.pixels, train.pixels, "NCHW test images are the same images")
            XCTAssertEqual(test.labels, [0, 2])
        }
        let npyDir = dir + "/arrays"
        try FileManager.default.createDirectory(atPath: npyDir, withIntermediateDirectories: true)
        for (name, bytes) in numpyMembers() { try writeBytes(bytes, to: npyDir + "/" + name) }
        XCTAssertEqual(try DatasetLoader.detectKind(path: npyDir), .numpy)
        XCTAssertEqual(try DatasetLoader.load(path: npyDir).train.labels, [1, 4])
    }

    func testNumPyFloatImagesAreScaledAndOutOfRangeRefused() throws {
        let values: [Float] = [0, 1, 0.5, 0.25]
        let a = try NumPy.parse(npy("<f4", [1, 2, 2], littleEndian(values.map(\.bitPattern))), file: "x.npy")
        XCTAssertEqual(try NumPy.images(a, file: "x.npy").pixels, [0, 255, 128, 64])
        let bad = try NumPy.parse(npy("<f4", [1, 2, 2], littleEndian(([0, 1, 2, 0] as [Float]).map(\.bitPattern))), file: "x.npy")
        assertDatasetError(.badHeader, file: "x.npy", offset: 8, try NumPy.images(bad, file: "x.npy"))
    }

    func testNumPyRefusesBadFilesWithOneLine() throws {
        assertDatasetError(.badMagic, file: "x.npy", offset: 0, try NumPy.parse(Array("hello world".utf8), file: "x.npy"))
        let good = npy("|u1", [2, 2, 2], [UInt8](repeating: 1, count: 8))
        assertDatasetError(.truncated, file: "x.npy", offset: good.count - 1, try NumPy.parse(Array(good.dropLast()), file: "x.npy"))
        assertDatasetError(.trailingData, file: "x.npy", offset: good.count, try NumPy.parse(good + [0], file: "x.npy"))
        assertDatasetError(.badHeader, file: "x.npy", offset: 10, try NumPy.parse(npy(">f8", [1], [UInt8](repeating: 0, count: 8)), file: "x.npy"))
        let labels = try NumPy.parse(npy("<i4", [2], littleEndian([Int32(1), -3])), file: "y.npy")
        assertDatasetError(.badLabel, file: "y.npy", offset: 4, try NumPy.labels(labels, file: "y.npy"))
        let shape = try NumPy.parse(npy("|u1", [2, 5, 5, 5], [UInt8](repeating: 0, count: 250)), file: "x.npy")
        assertDatasetError(.badHeader, file: "x.npy", offset: 0, try NumPy.images(shape, file: "x.npy"))

        // .npz: a missing member, a corrupt member (CRC), an unsupported method, not a zip.
        let members = numpyMembers()
        assertDatasetError(.notFound, file: "d.npz", offset: nil,
                           try NumPy.archiveArrays(zipArchive(Array(members.dropLast()), deflate: true), file: "d.npz"))
        var corrupt = zipArchive(members, deflate: false)
        corrupt[110] ^= 0xFF   // inside x_train.npy's data (41 + 64 header bytes + 5)
        assertDatasetError(.badCompression, file: "d.npz", offset: 30 + "x_train.npy".utf8.count,
                           try NumPy.archiveArrays(corrupt, file: "d.npz"))
        var method = zipArchive(members, deflate: false)
        method[8] = 12   // bzip2 in the local header; the central directory still says 0
        let directoryStart = method.count - 22 - members.reduce(0) { $0 + 46 + $1.0.utf8.count }
        method[directoryStart + 10] = 12
        assertDatasetError(.badCompression, file: "d.npz", offset: 0, try NumPy.archiveArrays(method, file: "d.npz"))
        // A deflated member declaring far more than its bytes can inflate to (a zip bomb, or a
        // corrupt size) is refused before anything is allocated.
        var bomb = zipArchive(members, deflate: true)
        let bombDirectory = bomb.count - 22 - members.reduce(0) { $0 + 46 + $1.0.utf8.count }
        for (i, b) in [0xFF, 0xFF, 0xFF, 0x7F].enumerated() { bomb[bombDirectory + 24 + i] = UInt8(b) }
        assertDatasetError(.badHeader, file: "d.npz", offset: 0, try NumPy.archiveArrays(bomb, file: "d.npz"))
        assertDatasetError(.badMagic, file: "d.npz", offset: 8, try NumPy.archiveArrays([UInt8](repeating: 7, count: 30), file: "d.npz"))
        // Labels that disagree with the images in count.
        var mismatched = members
        mismatched[1] = ("y_train.npy", npy("|u1", [3], [0, 1, 2]))
        let dir = try makeTemporaryDirectory(self)
        try writeBytes(zipArchive(mismatched, deflate: true), to: dir + "/m.npz")
        assertDatasetError(.mismatch, file: "m.npz:y_train.npy", offset: nil, try NumPy.load(path: dir + "/m.npz"))
    }

    // MARK: image folders

    func image(_ width: Int, _ height: Int, _ channels: Int, _ value: UInt8) -> DecodedImage {
        DecodedImage(width: width, height: height, channels: channels,
                     pixels: (0..<(width * height * channels)).map { UInt8(truncatingIfNeeded: Int(value) + $0) })
    }

    func testImageFolderDecodesPNGAndJPEGWithTrainAndTestFolders() throws {
        let dir = try makeTemporaryDirectory(self)
        for (part, count) in [("train", 3), ("test", 1)] {
            for cls in ["cat", "dog"] {
                try FileManager.default.createDirectory(atPath: "\(dir)/\(part)/\(cls)", withIntermediateDirectories: true)
                for i in 0..<count {
                    let img = image(4, 3, 3, UInt8(10 * i))
                    let bytes = i == 1 ? ImageDecoding.encodeJPEG(img, quality: 100)! : ImageDecoding.encodePNG(img)!
                    try writeBytes(bytes, to: "\(dir)/\(part)/\(cls)/\(i).\(i == 1 ? "jpg" : "png")")
                }
            }
        }
        try writeBytes(Array("not an image".utf8), to: "\(dir)/train/cat/notes.txt")   // ignored
        XCTAssertEqual(try DatasetLoader.detectKind(path: dir), .imageFolder)
        let (train, test) = try DatasetLoader.load(path: dir)
        XCTAssertEqual(train.classNames, ["cat", "dog"])
        XCTAssertEqual(train.count, 6)
        XCTAssertEqual(test.count, 2)
        XCTAssertEqual(train.imageShape, [3, 3, 4])
        XCTAssertEqual(train.labels, [0, 0, 0, 1, 1, 1])
        // PNG is lossless: pixel (y=0, x=1) channel 1 of image 0 is value + (1*3 + 1).
        XCTAssertEqual(train.pixels[1 * 12 + 1], 4)
        // JPEG at quality 100 is close.
        let jpegFirst = Int(train.pixels[train.imageSize * 1 + 0])
        XCTAssertLessThanOrEqual(abs(jpegFirst - 10), 3)

        // Second load comes from the cache file, which is memory-mapped: tamper with it to see.
        let files = try FileManager.default.contentsOfDirectory(atPath: DatasetCache.directory())
        XCTAssertEqual(files.count, 1)
        let cacheFile = DatasetCache.directory() + "/" + files[0]
        var cache = try FileSystem.readFile(cacheFile)
        let firstPixel = cache.count - 4 * 8 - 2 * train.imageSize - 6 * train.imageSize
        cache[firstPixel] = 201
        try writeBytes(cache, to: cacheFile)
        XCTAssertEqual(try DatasetLoader.load(path: dir).train.pixels[0], 201)
        // A corrupt cache is ignored and rewritten.
        try writeBytes(Array(cache.prefix(40)), to: cacheFile)
        XCTAssertEqual(try DatasetLoader.load(path: dir).train.pixels, train.pixels)
        XCTAssertEqual(try FileSystem.readFile(cacheFile).count, cache.count)
    }

    func testImageFolderSizesGreyAndSplit() throws {
        let dir = try makeTemporaryDirectory(self)
        for (cls, n) in [("a", 4), ("b", 6)] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(cls)", withIntermediateDirectories: true)
            for i in 0..<n { try writeBytes(ImageDecoding.encodePNG(image(8, 8, 1, UInt8(i)))!, to: "\(dir)/\(cls)/\(i).png") }
        }
        let (train, test) = try DatasetLoader.load(kind: .imageFolder, path: dir, options: DatasetOptions(useCache: false))
        XCTAssertEqual(train.imageShape, [1, 8, 8])
        XCTAssertEqual(train.count + test.count, 10)
        XCTAssertEqual(test.count, 2)   // the fixed fifth

        // A different size is refused without --image-size, resized with it.
        try writeBytes(ImageDecoding.encodePNG(image(16, 16, 1, 0))!, to: "\(dir)/b/big.png")
        assertDatasetError(.mismatch, file: "b/big.png", offset: nil,
                           try DatasetLoader.load(kind: .imageFolder, path: dir, options: DatasetOptions(useCache: false)))
        let resized = try DatasetLoader.load(kind: .imageFolder, path: dir,
                                             options: DatasetOptions(imageHeight: 4, imageWidth: 4, resizeFilter: .bilinear, useCache: false))
        XCTAssertEqual(resized.train.imageShape, [1, 4, 4])

        // A corrupt image names its file.
        let png = ImageDecoding.encodePNG(image(8, 8, 1, 0))!
        try writeBytes(Array(png.prefix(png.count / 2)), to: "\(dir)/a/broken.png")
        assertDatasetError(.badHeader, file: "a/broken.png", offset: nil,
                           try DatasetLoader.load(kind: .imageFolder, path: dir, options: DatasetOptions(imageHeight: 4, imageWidth: 4, useCache: false)))
        try FileManager.default.removeItem(atPath: "\(dir)/a/broken.png")
        let jpeg = ImageDecoding.encodeJPEG(image(8, 8, 1, 0))!
        try writeBytes(Array(jpeg.prefix(jpeg.count - 40)), to: "\(dir)/a/broken.jpg")
        assertDatasetError(.badHeader, file: "a/broken.jpg", offset: nil,
                           try DatasetLoader.load(kind: .imageFolder, path: dir, options: DatasetOptions(imageHeight: 4, imageWidth: 4, useCache: false)))
        try writeBytes([0xFF, 0xD8, 0xFF, 0, 1, 2], to: "\(dir)/a/broken.jpg")
        assertDatasetError(.badHeader, file: "a/broken.jpg", offset: nil,
                           try DatasetLoader.load(kind: .imageFolder, path: dir, options: DatasetOptions(imageHeight: 4, imageWidth: 4, useCache: false)))
    }

    func testResizeFilters() {
        let img = DecodedImage(width: 2, height: 2, channels: 1, pixels: [0, 100, 200, 50])
        XCTAssertEqual(ResizeFilter.area.resize(img, width: 1, height: 1).pixels, [88])   // mean 87.5, rounded
        XCTAssertEqual(ResizeFilter.bilinear.resize(img, width: 1, height: 1).pixels, [88])
        let wide = DecodedImage(width: 4, height: 1, channels: 1, pixels: [0, 10, 20, 30])
        XCTAssertEqual(ResizeFilter.area.resize(wide, width: 2, height: 1).pixels, [5, 25])
        XCTAssertEqual(ResizeFilter.bilinear.resize(wide, width: 2, height: 1).pixels, [5, 25])
        XCTAssertEqual(ResizeFilter.area.resize(img, width: 2, height: 2), img)
        // Upscaling 1 -> 2 pixels keeps the value with both.
        let one = DecodedImage(width: 1, height: 1, channels: 3, pixels: [9, 8, 7])
        XCTAssertEqual(ResizeFilter.bilinear.resize(one, width: 2, height: 2).pixels, [9, 8, 7, 9, 8, 7, 9, 8, 7, 9, 8, 7])
        XCTAssertEqual(ResizeFilter.area.resize(one, width: 2, height: 2).pixels, [9, 8, 7, 9, 8, 7, 9, 8, 7, 9, 8, 7])
    }

    // MARK: cache format

    func testCacheRoundTripsAndRefusesCorruptFiles() throws {
        let train = ImageDataset(name: "x/train", channels: 1, height: 2, width: 2, pixels: [1, 2, 3, 4, 5, 6, 7, 8],
                                 labels: [0, 2], classes: 3, classNames: ["a", "b", "c d"])
        let test = ImageDataset(name: "x/test", channels: 1, height: 2, width: 2, pixels: [9, 9, 9, 9], labels: [1], classes: 3, classNames: ["a", "b", "c d"])
        let bytes = DatasetCache.encode(train: train, test: test, key: "k")
        let (a, b) = try bytes.withUnsafeBytes { try DatasetCache.parse($0, file: "c.sdc", key: "k") }
        XCTAssertEqual(a.pixels, train.pixels)
        XCTAssertEqual(a.labels, train.labels)
        XCTAssertEqual(a.classNames, ["a", "b", "c d"])
        XCTAssertEqual(b.labels, [1])
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try DatasetCache.parse($0, file: "c.sdc", key: "other") })
        XCTAssertThrowsError(try Array(bytes.dropLast()).withUnsafeBytes { try DatasetCache.parse($0, file: "c.sdc") })
        var badLabel = bytes
        badLabel[badLabel.count - 4 - 4 - 4] = 7   // train label 1 -> 7, out of 3 classes
        XCTAssertThrowsError(try badLabel.withUnsafeBytes { try DatasetCache.parse($0, file: "c.sdc") })
    }
}
