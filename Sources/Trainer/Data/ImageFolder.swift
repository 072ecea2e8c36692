/// A folder of images, one subfolder per class: `root/<class>/<image>.png|.jpg|.jpeg`.
///
/// With `root/train/` the test set is `root/test/` (or `root/val/`) when present; without it, or
/// for a plain `root/<class>/` folder, a fixed seeded fifth of the images is the test set.
/// Classes are the subfolder names in sorted order (test folders may not add classes). Other
/// files are ignored. Every image is decoded to the channel count of the first one (grey or
/// RGB) and must have its size unless an image size is given, to which all are resized with
/// the chosen `ResizeFilter`.
public enum ImageFolder {
    /// Seed of the test split of a folder without `test/` (ASCII "TEST").
    public static let testSplitSeed: UInt64 = 0x5445_5354
    public static let testSplitFraction = 0.2

    static func isImageName(_ name: String) -> Bool {
        let lower = name.lowercased()
        return !name.hasPrefix(".") && (lower.hasSuffix(".png") || lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg"))
    }

    /// (train root, test root if any) of the folder at `path`.
    static func roots(_ path: String) -> (train: String, test: String?) {
        let train = FileSystem.join(path, "train")
        guard FileSystem.kind(of: train) == .directory else { return (path, nil) }
        for name in ["test", "val"] where FileSystem.kind(of: FileSystem.join(path, name)) == .directory {
            return (train, FileSystem.join(path, name))
        }
        return (train, nil)
    }

    /// Class folders of `root` that hold at least one image, sorted.
    static func classFolders(_ root: String) -> [String] {
        (FileSystem.contents(ofDirectory: root) ?? []).filter { name in
            !name.hasPrefix(".") && FileSystem.kind(of: FileSystem.join(root, name)) == .directory
                && (FileSystem.contents(ofDirectory: FileSystem.join(root, name)) ?? []).contains(where: isImageName)
        }
    }

    /// True when `path` looks like an image folder (some class subfolder holds an image).
    static func isImageFolder(_ path: String) -> Bool {
        !classFolders(roots(path).train).isEmpty
    }

    /// (class index, file) of every image under `root`, classes in `classes` order.
    static func listing(_ root: String, classes: [String]) throws -> [(label: Int32, file: String)] {
        var files: [(Int32, String)] = []
        for name in classFolders(root) {
            guard let label = classes.firstIndex(of: name) else {
                throw DatasetError(.mismatch, file: FileSystem.join(root, name),
                                   "class folder is not among the training classes (\(classes.prefix(8).joined(separator: ", "))\(classes.count > 8 ? ", ..." : ""))")
            }
            let dir = FileSystem.join(root, name)
            for file in (FileSystem.contents(ofDirectory: dir) ?? []) where isImageName(file) {
                files.append((Int32(label), FileSystem.join(dir, file)))
            }
        }
        return files
    }

    /// Every image file the dataset at `path` reads (the cache key covers them).
    public static func sourceFiles(_ path: String) throws -> [String] {
        let (train, test) = roots(path)
        let classes = classFolders(train)
        return try listing(train, classes: classes).map(\.file) + (test.map { try listing($0, classes: classes).map(\.file) } ?? [])
    }

    /// Train and test sets of the folder at `path`; `size` (height, width) resizes every image.
    public static func load(path: String, size: (height: Int, width: Int)?, filter: ResizeFilter) throws -> (train: ImageDataset, test: ImageDataset) {
        guard FileSystem.kind(of: path) == .directory else { throw DatasetError.notADirectory(path, "image folder") }
        let (trainRoot, testRoot) = roots(path)
        let classes = classFolders(trainRoot)
        guard !classes.isEmpty else {
            throw DatasetError(.unrecognizedLayout, file: trainRoot, "no class folders with .png/.jpg images (expected <class>/<image>.png)")
        }
        let trainFiles = try listing(trainRoot, classes: classes)
        let testFiles = try testRoot.map { try listing($0, classes: classes) } ?? []

        var channels = 0, height = size?.height ?? 0, width = size?.width ?? 0
        var firstFile = ""
        func decode(_ list: [(label: Int32, file: String)]) throws -> (pixels: [UInt8], labels: [Int32]) {
            var pixels: [UInt8] = [], labels: [Int32] = []
            for (label, file) in list {
                let bytes: [UInt8]
                do { bytes = try FileSystem.readRegularFile(file, limit: 1 << 28) } catch { throw DatasetError(reading: file, error) }
                if channels == 0 {
                    channels = try ImageDecoding.isColour(bytes, file: file) ? 3 : 1
                    firstFile = file
                }
                var image = try ImageDecoding.decode(bytes, file: file, channels: channels)
                if height == 0 { (height, width) = (image.height, image.width) }
                if image.height != height || image.width != width {
                    guard size != nil else {
                        throw DatasetError(.mismatch, file: file, "is \(image.width)x\(image.height) but \(firstFile) is \(width)x\(height); "
                                           + "pass --image-size to resize every image")
                    }
                    image = filter.resize(image, width: width, height: height)
                }
                // HWC -> CHW
                let plane = height * width, start = pixels.count
                pixels.append(contentsOf: repeatElement(0, count: plane * channels))
                for p in 0..<plane { for c in 0..<channels { pixels[start + c * plane + p] = image.pixels[p * channels + c] } }
                labels.append(label)
            }
            return (pixels, labels)
        }
        let train = try decode(trainFiles)
        let test = try decode(testFiles)
        let name = FileSystem.split(path).base
        let all = ImageDataset(name: name + "/train", channels: channels, height: height, width: width,
                               pixels: train.pixels, labels: train.labels, classes: classes.count, classNames: classes)
        guard testRoot != nil else {
            let (fit, held) = all.split(validationFraction: testSplitFraction, seed: testSplitSeed)
            var trainPart = fit, testPart = held
            trainPart.name = name + "/train"
            testPart.name = name + "/test"
            return (trainPart, testPart)
        }
        return (all, ImageDataset(name: name + "/test", channels: channels, height: height, width: width,
                                  pixels: test.pixels, labels: test.labels, classes: classes.count, classNames: classes))
    }
}
