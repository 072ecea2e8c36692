#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The dataset formats the trainer reads.
public enum DatasetKind: String, CaseIterable, Sendable {
    /// CIFAR-10 binary batches (`data_batch_*.bin`, `test_batch.bin`).
    case cifar10 = "cifar10"
    /// MNIST digits in IDX files.
    case mnist = "mnist"
    /// Fashion-MNIST in IDX files (same format as MNIST, other class names).
    case fashionMNIST = "fashion-mnist"
    /// CIFAR-100 binary (`train.bin`, `test.bin`), fine or coarse labels.
    case cifar100 = "cifar100"
    /// A folder of PNG/JPEG images in class subfolders (`ImageFolder`).
    case imageFolder = "image-folder"
    /// NumPy arrays: an `.npz` file or a directory of `.npy` files (`NumPy`).
    case numpy = "numpy"
}

/// How a dataset is read, beyond its path: the options of the formats that have any.
public struct DatasetOptions: Equatable, Sendable {
    /// CIFAR-100's label kind.
    public var labels: CIFAR100.Labels
    /// Image folders: every image resized to (height, width); nil: all must have the first's size.
    public var imageHeight: Int?
    public var imageWidth: Int?
    public var resizeFilter: ResizeFilter
    /// Image folders and NumPy: decode once into `DatasetCache` and memory-map it after.
    public var useCache: Bool

    public init(labels: CIFAR100.Labels = .fine, imageHeight: Int? = nil, imageWidth: Int? = nil,
                resizeFilter: ResizeFilter = .area, useCache: Bool = true) {
        self.labels = labels
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.resizeFilter = resizeFilter
        self.useCache = useCache
    }

    /// The options a run's `DataConfig` records (unknown names were refused when it was checked).
    public init(_ config: DataConfig) {
        self.init(labels: config.labels.flatMap(CIFAR100.Labels.init(rawValue:)) ?? .fine,
                  imageHeight: config.imageSize?.first, imageWidth: config.imageSize?.last,
                  resizeFilter: config.resizeFilter.flatMap(ResizeFilter.init(rawValue:)) ?? .area)
    }
}

/// Loads train and test sets of a dataset directory.
///
///     let (train, test) = try DatasetLoader.load(path: "/usr/share/datasets/fashion-mnist")
public enum DatasetLoader {
    /// The kind of dataset in `path`, from the files it holds: CIFAR-10 batch files (also under
    /// `cifar-10-batches-bin/`) or IDX files. IDX directories read as `.fashionMNIST` when the
    /// path mentions "fashion" (the files themselves cannot tell), otherwise `.mnist`.
    /// CIFAR-100 (`train.bin`/`test.bin`, also under `cifar-100-binary/`), NumPy (an `.npz`/`.npy`
    /// file, or a directory holding `x_train.npy`) and image folders (class subfolders of images)
    /// are recognised the same way; `--dataset-kind` settles a folder that looks like two kinds.
    public static func detectKind(path: String) throws -> DatasetKind {
        if FileSystem.kind(of: path) == .file, path.lowercased().hasSuffix(".npz") { return .numpy }
        guard FileSystem.kind(of: path) == .directory else {
            throw DatasetError.notADirectory(path, "dataset directory")
        }
        if CIFAR10.batchDirectory(path) != nil { return .cifar10 }
        if IDX.isIDXDirectory(path) {
            return path.lowercased().contains("fashion") ? .fashionMNIST : .mnist
        }
        if CIFAR100.batchDirectory(path) != nil { return .cifar100 }
        if FileSystem.kind(of: FileSystem.join(path, "x_train.npy")) == .file { return .numpy }
        if ImageFolder.isImageFolder(path) { return .imageFolder }
        throw DatasetError(.unrecognizedLayout, file: path,
                           "no known dataset here: expected CIFAR-10 batches (data_batch_*.bin, test_batch.bin, "
                           + "or cifar-10-batches-bin/), IDX files (train-images-idx3-ubyte[.gz], ...), CIFAR-100 "
                           + "(train.bin, test.bin), NumPy (x_train.npy ... or an .npz file) or class folders of .png/.jpg images")
    }

    /// Train and test sets of the dataset in `path`; `kind` is detected when nil.
    public static func load(kind: DatasetKind? = nil, path: String,
                            options: DatasetOptions = DatasetOptions()) throws -> (train: ImageDataset, test: ImageDataset) {
        let kind = try kind ?? detectKind(path: path)
        return try WarmDatasets.cached(kind: kind, path: path, options: options) { try decode(kind: kind, path: path, options: options) }
    }

    static func decode(kind: DatasetKind, path: String, options: DatasetOptions) throws -> (train: ImageDataset, test: ImageDataset) {
        switch kind {
        case .cifar10:
            return try CIFAR10.load(directory: path)
        case .mnist:
            return try IDX.load(directory: path, name: "mnist", classNames: IDX.mnistClassNames)
        case .fashionMNIST:
            return try IDX.load(directory: path, name: "fashion-mnist", classNames: IDX.fashionMNISTClassNames)
        case .cifar100:
            return try CIFAR100.load(directory: path, labels: options.labels)
        case .imageFolder:
            var size: (height: Int, width: Int)?
            if let h = options.imageHeight, let w = options.imageWidth { size = (h, w) }
            let read = { try ImageFolder.load(path: path, size: size, filter: options.resizeFilter) }
            guard options.useCache else { return try read() }
            let sizeText = size.map { "\($0.height)x\($0.width) \(options.resizeFilter.rawValue)" } ?? "native"
            return try DatasetCache.cached(description: "image-folder \(absolute(path)) size=\(sizeText)",
                                           sources: try ImageFolder.sourceFiles(path), decode: read)
        case .numpy:
            let read = { try NumPy.load(path: path) }
            guard options.useCache else { return try read() }
            let sources = FileSystem.kind(of: path) == .directory
                ? NumPy.memberNames.map { FileSystem.join(absolute(path), $0 + ".npy") } : [absolute(path)]
            return try DatasetCache.cached(description: "numpy \(absolute(path))", sources: sources, decode: read)
        }
    }

    /// `path` made absolute (the cache key must not depend on the working directory).
    static func absolute(_ path: String) -> String {
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        return realpath(path, &resolved) != nil ? String(cString: resolved) : path
    }
}
