/// CIFAR-10 in its binary format (Krizhevsky 2009): each record is 1 label byte (0-9) and
/// 3,072 pixel bytes, the 32x32 red plane, then green, then blue. That is already CHW, so a
/// record's pixels are copied as they are.
///
/// Layout accepted: a directory holding `data_batch_*.bin` (train, read in numeric order) and
/// `test_batch.bin`, or a directory holding `cifar-10-batches-bin/` (the official tarball
/// extracted). Any whole number of records per file. Class names come from
/// `batches.meta.txt` when present.
public enum CIFAR10 {
    public static let channels = 3, height = 32, width = 32, classes = 10
    public static let recordSize = 1 + channels * height * width   // 3073
    public static let defaultClassNames = ["airplane", "automobile", "bird", "cat", "deer",
                                           "dog", "frog", "horse", "ship", "truck"]

    /// The directory holding the batch files: `path` itself or `path/cifar-10-batches-bin`.
    /// Nil when neither holds CIFAR files.
    static func batchDirectory(_ path: String) -> String? {
        for dir in [path, FileSystem.join(path, "cifar-10-batches-bin")] {
            guard let names = FileSystem.contents(ofDirectory: dir) else { continue }
            if names.contains("test_batch.bin") || names.contains(where: isTrainBatch) { return dir }
        }
        return nil
    }

    static func isTrainBatch(_ name: String) -> Bool {
        name.hasPrefix("data_batch_") && name.hasSuffix(".bin")
    }

    /// Train and test sets from a CIFAR-10 directory (see the type's comment for layouts).
    public static func load(directory path: String) throws -> (train: ImageDataset, test: ImageDataset) {
        guard FileSystem.kind(of: path) == .directory else {
            throw DatasetError.notADirectory(path, "CIFAR-10 directory")
        }
        guard let dir = batchDirectory(path) else {
            throw DatasetError(.notFound, file: path,
                               "no CIFAR-10 batch files (data_batch_*.bin, test_batch.bin) here or in cifar-10-batches-bin/")
        }
        let names = FileSystem.contents(ofDirectory: dir) ?? []
        // data_batch_1 ... data_batch_5, in numeric order (data_batch_10 after data_batch_9).
        let trainFiles = names.filter(isTrainBatch).sorted { a, b in
            let na = Int(a.dropFirst(11).dropLast(4)), nb = Int(b.dropFirst(11).dropLast(4))
            if let na, let nb, na != nb { return na < nb }
            return a < b
        }
        guard !trainFiles.isEmpty else {
            throw DatasetError(.notFound, file: FileSystem.join(dir, "data_batch_1.bin"), "no training batch files (data_batch_*.bin)")
        }
        guard names.contains("test_batch.bin") else {
            throw DatasetError(.notFound, file: FileSystem.join(dir, "test_batch.bin"), "test batch file is missing")
        }
        let classNames = readClassNames(FileSystem.join(dir, "batches.meta.txt")) ?? defaultClassNames

        var trainPixels: [UInt8] = [], trainLabels: [Int32] = []
        for file in trainFiles {
            try readBatch(FileSystem.join(dir, file), pixels: &trainPixels, labels: &trainLabels)
        }
        var testPixels: [UInt8] = [], testLabels: [Int32] = []
        try readBatch(FileSystem.join(dir, "test_batch.bin"), pixels: &testPixels, labels: &testLabels)

        func dataset(_ part: String, _ pixels: [UInt8], _ labels: [Int32]) -> ImageDataset {
            ImageDataset(name: "cifar10/" + part, channels: channels, height: height, width: width,
                         pixels: pixels, labels: labels, classes: classes, classNames: classNames)
        }
        return (dataset("train", trainPixels, trainLabels), dataset("test", testPixels, testLabels))
    }

    /// Appends the records of one batch file; a file without a record is refused (an empty
    /// test set would otherwise be reported as 0% accuracy).
    public static func readBatch(_ file: String, pixels: inout [UInt8], labels: inout [Int32]) throws {
        let bytes: [UInt8]
        do { bytes = try FileSystem.readRegularFile(file, limit: DatasetError.maxFileSize) } catch {
            throw DatasetError(reading: file, error)
        }
        try parseBatch(bytes, file: file, pixels: &pixels, labels: &labels)
    }

    /// Appends the records in `bytes`, the contents of batch file `file` (named in errors).
    public static func parseBatch(_ bytes: [UInt8], file: String, pixels: inout [UInt8], labels: inout [Int32]) throws {
        let records = bytes.count / recordSize
        if bytes.count % recordSize != 0 {
            let start = records * recordSize
            throw DatasetError(.truncated, file: file, offset: start,
                               "truncated record \(records) (\(bytes.count - start) of \(recordSize) bytes); "
                               + "file size \(bytes.count) is not a multiple of \(recordSize)")
        }
        guard records > 0 else {
            throw DatasetError(.truncated, file: file, offset: 0, "holds no images (the file is empty)")
        }
        let imageSize = recordSize - 1
        pixels.reserveCapacity(pixels.count + records * imageSize)
        labels.reserveCapacity(labels.count + records)
        try bytes.withUnsafeBufferPointer { b in
            for r in 0..<records {
                let offset = r * recordSize
                let label = b[offset]
                guard Int(label) < classes else {
                    throw DatasetError(.badLabel, file: file, offset: offset,
                                       "label \(label) of record \(r) is out of range 0...\(classes - 1)")
                }
                labels.append(Int32(label))
                pixels.append(contentsOf: b[(offset + 1)..<(offset + recordSize)])
            }
        }
    }

    /// Non-empty lines of batches.meta.txt, when it has exactly 10 of them.
    static func readClassNames(_ file: String) -> [String]? {
        guard let bytes = try? FileSystem.readRegularFile(file, limit: 1 << 16) else { return nil }
        let names = String(decoding: bytes, as: UTF8.self)
            .split(whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map { $0.trimmingWhitespace() }
            .filter { !$0.isEmpty }
        return names.count == classes ? names : nil
    }
}

private extension Substring {
    func trimmingWhitespace() -> String {
        var s = self[...]
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
