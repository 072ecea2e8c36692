/// CIFAR-100 in its binary format (Krizhevsky 2009): each record is a coarse label byte (0-19),
/// a fine label byte (0-99) and 3,072 pixel bytes in CHW order, as in CIFAR-10.
///
/// Layout accepted: a directory holding `train.bin` and `test.bin` (and, optionally,
/// `fine_label_names.txt` and `coarse_label_names.txt`), or one holding `cifar-100-binary/`
/// (the official tarball extracted).
public enum CIFAR100 {
    /// Which of the two labels a record's class is.
    public enum Labels: String, CaseIterable, Sendable, Codable {
        /// 100 classes.
        case fine
        /// 20 superclasses.
        case coarse

        public var classes: Int { self == .fine ? 100 : 20 }
    }

    public static let recordSize = 2 + 3 * 32 * 32   // 3074

    /// The directory holding `train.bin`/`test.bin`: `path` or `path/cifar-100-binary`.
    static func batchDirectory(_ path: String) -> String? {
        for dir in [path, FileSystem.join(path, "cifar-100-binary")] {
            guard let names = FileSystem.contents(ofDirectory: dir) else { continue }
            if names.contains("train.bin") && names.contains("test.bin") { return dir }
        }
        return nil
    }

    public static func load(directory path: String, labels: Labels) throws -> (train: ImageDataset, test: ImageDataset) {
        guard FileSystem.kind(of: path) == .directory else {
            throw DatasetError.notADirectory(path, "CIFAR-100 directory")
        }
        guard let dir = batchDirectory(path) else {
            throw DatasetError(.notFound, file: path, "no CIFAR-100 files (train.bin and test.bin) here or in cifar-100-binary/")
        }
        let names = readNames(FileSystem.join(dir, "\(labels.rawValue)_label_names.txt"), count: labels.classes)
        func part(_ file: String, _ name: String) throws -> ImageDataset {
            let path = FileSystem.join(dir, file)
            let bytes: [UInt8]
            do { bytes = try FileSystem.readRegularFile(path, limit: DatasetError.maxFileSize) } catch {
                throw DatasetError(reading: path, error)
            }
            var pixels: [UInt8] = [], classes: [Int32] = []
            try parse(bytes, file: path, labels: labels, pixels: &pixels, classes: &classes)
            return ImageDataset(name: "cifar100/\(name)", channels: 3, height: 32, width: 32, pixels: pixels,
                                labels: classes, classes: labels.classes, classNames: names)
        }
        return (try part("train.bin", "train"), try part("test.bin", "test"))
    }

    /// Appends the records of the contents of `file`, with the `labels` kind of class.
    /// Both label bytes are checked, whichever is used.
    public static func parse(_ bytes: [UInt8], file: String, labels: Labels,
                             pixels: inout [UInt8], classes: inout [Int32]) throws {
        let records = bytes.count / recordSize
        if bytes.count % recordSize != 0 {
            let start = records * recordSize
            throw DatasetError(.truncated, file: file, offset: start,
                               "truncated record \(records) (\(bytes.count - start) of \(recordSize) bytes); "
                               + "file size \(bytes.count) is not a multiple of \(recordSize) (is this CIFAR-100?)")
        }
        guard records > 0 else { throw DatasetError(.truncated, file: file, offset: 0, "holds no images (the file is empty)") }
        pixels.reserveCapacity(pixels.count + records * (recordSize - 2))
        classes.reserveCapacity(classes.count + records)
        for r in 0..<records {
            let offset = r * recordSize
            let coarse = bytes[offset], fine = bytes[offset + 1]
            guard coarse < 20 else {
                throw DatasetError(.badLabel, file: file, offset: offset, "coarse label \(coarse) of record \(r) is out of range 0...19")
            }
            guard fine < 100 else {
                throw DatasetError(.badLabel, file: file, offset: offset + 1, "fine label \(fine) of record \(r) is out of range 0...99")
            }
            classes.append(Int32(labels == .fine ? fine : coarse))
            pixels.append(contentsOf: bytes[(offset + 2)..<(offset + recordSize)])
        }
    }

    /// Non-empty lines of a label-names file when it has exactly `count` of them.
    static func readNames(_ file: String, count: Int) -> [String]? {
        guard let bytes = try? FileSystem.readRegularFile(file, limit: 1 << 20) else { return nil }
        let names = String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: " \t\r") }.filter { !$0.isEmpty }
        return names.count == count ? names : nil
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
