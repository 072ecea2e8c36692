/// The dataset formats the trainer reads.
public enum DatasetKind: String, CaseIterable, Sendable {
    /// CIFAR-10 binary batches (`data_batch_*.bin`, `test_batch.bin`).
    case cifar10 = "cifar10"
    /// MNIST digits in IDX files.
    case mnist = "mnist"
    /// Fashion-MNIST in IDX files (same format as MNIST, other class names).
    case fashionMNIST = "fashion-mnist"
}

/// Loads train and test sets of a dataset directory.
///
///     let (train, test) = try DatasetLoader.load(path: "/usr/share/datasets/fashion-mnist")
public enum DatasetLoader {
    /// The kind of dataset in `path`, from the files it holds: CIFAR-10 batch files (also under
    /// `cifar-10-batches-bin/`) or IDX files. IDX directories read as `.fashionMNIST` when the
    /// path mentions "fashion" (the files themselves cannot tell), otherwise `.mnist`.
    public static func detectKind(path: String) throws -> DatasetKind {
        guard FileSystem.kind(of: path) == .directory else {
            throw DatasetError.notADirectory(path, "dataset directory")
        }
        if CIFAR10.batchDirectory(path) != nil { return .cifar10 }
        if IDX.isIDXDirectory(path) {
            return path.lowercased().contains("fashion") ? .fashionMNIST : .mnist
        }
        throw DatasetError(.unrecognizedLayout, file: path,
                           "no known dataset here: expected CIFAR-10 batches (data_batch_*.bin, test_batch.bin, "
                           + "or cifar-10-batches-bin/) or IDX files (train-images-idx3-ubyte[.gz], ...)")
    }

    /// Train and test sets of the dataset in `path`; `kind` is detected when nil.
    public static func load(kind: DatasetKind? = nil, path: String) throws -> (train: ImageDataset, test: ImageDataset) {
        switch try kind ?? detectKind(path: path) {
        case .cifar10:
            return try CIFAR10.load(directory: path)
        case .mnist:
            return try IDX.load(directory: path, name: "mnist", classNames: IDX.mnistClassNames)
        case .fashionMNIST:
            return try IDX.load(directory: path, name: "fashion-mnist", classNames: IDX.fashionMNISTClassNames)
        }
    }
}
