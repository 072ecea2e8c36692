import GPUTensor

/// Per-image outputs of a model on a dataset: what `strata predict` writes.
public struct Predictions: Equatable, Sendable {
    public var classes: Int
    /// (N, K) row-major: the model's logits (before softmax) of each image, in dataset order.
    public var logits: [Float]
    /// (N): argmax of each row of `logits` (the first of equal maxima).
    public var predicted: [Int]
    /// (N): the dataset's labels.
    public var labels: [Int]

    public var count: Int { labels.count }
    public var accuracy: Double {
        count == 0 ? 0 : Double(zip(predicted, labels).filter { $0 == $1 }.count) / Double(count)
    }

    public init(classes: Int, logits: [Float], labels: [Int]) {
        precondition(logits.count == classes * labels.count, "Predictions: \(logits.count) logits for \(labels.count) images of \(classes) classes")
        self.classes = classes
        self.logits = logits
        self.labels = labels
        predicted = (0..<labels.count).map { i in
            let row = logits[(i * classes)..<((i + 1) * classes)]
            var best = row.startIndex
            for j in row.indices where row[j] > row[best] { best = j }
            return best - i * classes
        }
    }

    /// CSV: `index,label,predicted,logit_0,...,logit_{K-1}`, one row per image.
    public func csv() -> String {
        var out = "index,label,predicted," + (0..<classes).map { "logit_\($0)" }.joined(separator: ",") + "\n"
        for i in 0..<count {
            out += "\(i),\(labels[i]),\(predicted[i])"
            for j in 0..<classes { out += ",\(logits[i * classes + j])" }
            out += "\n"
        }
        return out
    }

    /// NumPy .npy (format 1.0) of a structured array of N records, packed:
    /// `logits` float32 (K), `predicted` int64, `label` int64.
    ///
    ///     a = np.load("pred.npy"); a["logits"].shape == (N, K); (a["predicted"] == a["label"]).mean()
    public func npy() -> [UInt8] {
        var header = "{'descr': [('logits', '<f4', (\(classes),)), ('predicted', '<i8'), ('label', '<i8')], "
            + "'fortran_order': False, 'shape': (\(count),), }"
        // Magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64.
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let length = UInt16(header.utf8.count)
        out += [UInt8(length & 0xFF), UInt8(length >> 8)]
        out += Array(header.utf8)
        out.reserveCapacity(out.count + count * (4 * classes + 16))
        for i in 0..<count {
            for j in 0..<classes { withUnsafeBytes(of: logits[i * classes + j].bitPattern.littleEndian) { out += $0 } }
            withUnsafeBytes(of: Int64(predicted[i]).littleEndian) { out += $0 }
            withUnsafeBytes(of: Int64(labels[i]).littleEndian) { out += $0 }
        }
        return out
    }

    /// Writes `csv()` or `npy()` by the extension of `path` (`.csv`, `.npy`), atomically.
    public func write(to path: String) throws {
        let bytes: [UInt8]
        if path.hasSuffix(".csv") { bytes = Array(csv().utf8) }
        else if path.hasSuffix(".npy") { bytes = npy() }
        else { throw TrainingError("\(path): the output must end in .csv or .npy") }
        do { try FileSystem.writeAtomically(bytes, to: path) } catch let e as SystemCallError {
            throw TrainingError("\(path): not written: \(e.message)")
        }
    }
}

extension TrainingRun {
    /// The model's logits on every image of `dataset` (inference mode, the run's normalisation).
    public func predict(_ dataset: ImageDataset) throws -> Predictions {
        let classes = config.model.classes
        let loader = BatchLoader(dataset: dataset, batchSize: config.evalBatchSize, shuffle: false, partialBatch: .keep)
        var logits = [Float](), labels = [Int]()
        logits.reserveCapacity(dataset.count * classes)
        try loader.forEachBatch(epoch: 0) { batch in
            let (x, _) = stage(batch, augment: false)
            logits += try backend.download(model.forward(x, mode: .inference))
            labels += batch.labels.map { Int($0) }
        }
        return Predictions(classes: classes, logits: logits, labels: labels)
    }
}
