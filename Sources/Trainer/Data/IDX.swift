/// The IDX format of MNIST and Fashion-MNIST (LeCun et al.): a big-endian header, then bytes.
///
///     images: magic 0x00000803, count, rows, columns (u32 BE each), then count*rows*columns bytes
///     labels: magic 0x00000801, count, then count bytes
///
/// Files are `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
/// `t10k-labels-idx1-ubyte` (also with `.idx3-ubyte` spelled with a dot), raw or `.gz`.
/// Offsets in errors about a gzip file are offsets in its decompressed contents.
public enum IDX {
    public static let imagesMagic: UInt32 = 0x0000_0803
    public static let labelsMagic: UInt32 = 0x0000_0801
    public static let mnistClassNames = (0..<10).map { String($0) }
    public static let fashionMNISTClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    /// The path of `prefix-images` / `prefix-labels` in `directory`, trying the usual spellings.
    static func find(_ directory: String, prefix: String, kind: String, dims: Int) -> String? {
        let names = FileSystem.contents(ofDirectory: directory) ?? []
        for stem in ["\(prefix)-\(kind)-idx\(dims)-ubyte", "\(prefix)-\(kind).idx\(dims)-ubyte"] {
            for name in [stem, stem + ".gz"] where names.contains(name) {
                return FileSystem.join(directory, name)
            }
        }
        return nil
    }

    /// True when `directory` holds IDX training images.
    static func isIDXDirectory(_ directory: String) -> Bool {
        find(directory, prefix: "train", kind: "images", dims: 3) != nil
    }

    /// Train (`train-*`) and test (`t10k-*`) sets of an MNIST-style directory.
    public static func load(directory: String, name: String, classNames: [String]) throws -> (train: ImageDataset, test: ImageDataset) {
        guard FileSystem.kind(of: directory) == .directory else {
            throw DatasetError.notADirectory(directory, "IDX dataset directory")
        }
        func pair(_ prefix: String, _ part: String) throws -> ImageDataset {
            guard let images = find(directory, prefix: prefix, kind: "images", dims: 3) else {
                throw DatasetError(.notFound, file: FileSystem.join(directory, "\(prefix)-images-idx3-ubyte[.gz]"), "image file is missing")
            }
            guard let labels = find(directory, prefix: prefix, kind: "labels", dims: 1) else {
                throw DatasetError(.notFound, file: FileSystem.join(directory, "\(prefix)-labels-idx1-ubyte[.gz]"), "label file is missing")
            }
            return try load(images: images, labels: labels, name: "\(name)/\(part)", classNames: classNames)
        }
        return (try pair("train", "train"), try pair("t10k", "test"))
    }

    /// One set from an image file and a label file (each raw or gzip).
    public static func load(images imagesFile: String, labels labelsFile: String,
                            name: String, classNames: [String]) throws -> ImageDataset {
        let (count, rows, columns, pixels) = try readImages(imagesFile)
        let labels = try readLabels(labelsFile, classes: classNames.count)
        guard labels.count == count else {
            throw DatasetError(.mismatch, file: labelsFile, offset: 4,
                               "holds \(labels.count) labels but \(imagesFile) holds \(count) images")
        }
        return ImageDataset(name: name, channels: 1, height: rows, width: columns, pixels: pixels,
                            labels: labels, classes: classNames.count, classNames: classNames)
    }

    /// File contents, decompressed when they start with the gzip magic number.
    static func contents(_ file: String) throws -> (bytes: [UInt8], note: String) {
        let raw: [UInt8]
        do { raw = try FileSystem.readRegularFile(file, limit: DatasetError.maxFileSize) } catch {
            throw DatasetError(reading: file, error)
        }
        return try decodedContents(raw, file: file)
    }

    /// `raw` decompressed when it starts with the gzip magic number, with a note for messages.
    public static func decodedContents(_ raw: [UInt8], file: String, limit: Int = DatasetError.maxFileSize) throws -> (bytes: [UInt8], note: String) {
        if Gzip.isGzip(raw) { return (try Gzip.decompress(raw, file: file, limit: limit), " (decompressed)") }
        return (raw, "")
    }

    static func bigEndianWord(_ b: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(b[offset]) << 24 | UInt32(b[offset + 1]) << 16 | UInt32(b[offset + 2]) << 8 | UInt32(b[offset + 3])
    }

    static func hex(_ v: UInt32) -> String {
        let digits = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// (count, rows, columns, pixels) of an idx3 image file.
    public static func readImages(_ file: String) throws -> (count: Int, rows: Int, columns: Int, pixels: [UInt8]) {
        let (b, note) = try contents(file)
        return try parseImages(b, file: file, note: note)
    }

    /// Parses the (decompressed) bytes of an idx3 image file; `note` follows sizes in messages.
    public static func parseImages(_ b: [UInt8], file: String, note: String = "") throws -> (count: Int, rows: Int, columns: Int, pixels: [UInt8]) {
        let header = 16
        guard b.count >= header else {
            throw DatasetError(.truncated, file: file, offset: b.count,
                               "file ends after \(b.count) bytes\(note), inside the \(header)-byte IDX image header")
        }
        let magic = bigEndianWord(b, 0)
        guard magic == imagesMagic else {
            throw DatasetError(.badMagic, file: file, offset: 0,
                               "magic number \(hex(magic))\(note) is not \(hex(imagesMagic)) (IDX unsigned-byte images, 3 dimensions)")
        }
        let count = Int(bigEndianWord(b, 4)), rows = Int(bigEndianWord(b, 8)), columns = Int(bigEndianWord(b, 12))
        guard count > 0 else {
            throw DatasetError(.badHeader, file: file, offset: 4, "holds no images (the header's count is 0)")
        }
        guard rows > 0, columns > 0, rows <= 1 << 14, columns <= 1 << 14 else {
            throw DatasetError(.badHeader, file: file, offset: 8, "image size \(rows)x\(columns) is out of range")
        }
        let expected = header + count * rows * columns   // at most 2^32 * 2^28: no overflow in Int
        guard b.count >= expected else {
            throw DatasetError(.truncated, file: file, offset: b.count,
                               "file ends after \(b.count) bytes\(note); the header declares \(count) images of "
                               + "\(rows)x\(columns), \(expected) bytes in all")
        }
        guard b.count == expected else {
            throw DatasetError(.trailingData, file: file, offset: expected,
                               "\(b.count - expected) bytes\(note) after the \(count) images of \(rows)x\(columns) the header declares")
        }
        return (count, rows, columns, Array(b[header...]))
    }

    /// Labels of an idx1 label file; each must be below `classes`.
    public static func readLabels(_ file: String, classes: Int) throws -> [Int32] {
        let (b, note) = try contents(file)
        return try parseLabels(b, file: file, classes: classes, note: note)
    }

    /// Parses the (decompressed) bytes of an idx1 label file.
    public static func parseLabels(_ b: [UInt8], file: String, classes: Int, note: String = "") throws -> [Int32] {
        let header = 8
        guard b.count >= header else {
            throw DatasetError(.truncated, file: file, offset: b.count,
                               "file ends after \(b.count) bytes\(note), inside the \(header)-byte IDX label header")
        }
        let magic = bigEndianWord(b, 0)
        guard magic == labelsMagic else {
            throw DatasetError(.badMagic, file: file, offset: 0,
                               "magic number \(hex(magic))\(note) is not \(hex(labelsMagic)) (IDX unsigned-byte labels, 1 dimension)")
        }
        let count = Int(bigEndianWord(b, 4))
        guard count > 0 else {
            throw DatasetError(.badHeader, file: file, offset: 4, "holds no labels (the header's count is 0)")
        }
        let expected = header + count
        guard b.count >= expected else {
            throw DatasetError(.truncated, file: file, offset: b.count,
                               "file ends after \(b.count) bytes\(note); the header declares \(count) labels, \(expected) bytes in all")
        }
        guard b.count == expected else {
            throw DatasetError(.trailingData, file: file, offset: expected,
                               "\(b.count - expected) bytes\(note) after the \(count) labels the header declares")
        }
        var labels = [Int32](repeating: 0, count: count)
        for i in 0..<count {
            let label = b[header + i]
            guard Int(label) < classes else {
                throw DatasetError(.badLabel, file: file, offset: header + i,
                                   "label \(label) of item \(i)\(note) is out of range 0...\(classes - 1)")
            }
            labels[i] = Int32(label)
        }
        return labels
    }
}
