import ArgumentParser
import Trainer
#if canImport(Glibc)
import Glibc
#endif

/// `strata data fetch` and `strata data inspect`: getting datasets and checking how they read.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Download a dataset, or show how a dataset folder or file reads.",
        subcommands: [DataFetch.self, DataInspect.self])
}

struct DataFetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Download, verify (SHA-256/MD5) and unpack cifar10, cifar100, mnist or fashion-mnist.",
        discussion: """
        Downloads from the publisher's site (or --mirror, or $STRATA_DATA_MIRROR: a URL of a directory \
        holding the same file names), checks size and pinned digests, unpacks into DIR/NAME and prints \
        the --data path to use. An interrupted download resumes where it stopped when run again. \
        DIR/NAME is never replaced unless it is this same download, or --overwrite is given.
        Example:
          strata data fetch cifar10 --dir ~/datasets
        """)

    @Argument(help: "cifar10, cifar100, mnist or fashion-mnist.")
    var name: String

    @Option(help: "Directory the dataset folder goes in (default ~/.local/share/strata/datasets).")
    var dir: String?

    @Option(help: "Download from this directory URL instead of the publisher's (also $STRATA_DATA_MIRROR).")
    var mirror: String?

    @Flag(help: "Replace DIR/NAME when it holds something other than this download.")
    var overwrite = false

    func run() throws {
        guard let dataset = RemoteDataset.named(name) else {
            throw ValidationError("dataset must be \(RemoteDataset.catalogue.map(\.name).joined(separator: ", ")), not '\(name)'")
        }
        let home = getenv("HOME").map { String(cString: $0) } ?? "."
        let directory = dir ?? home + "/.local/share/strata/datasets"
        let mirror = self.mirror ?? getenv("STRATA_DATA_MIRROR").map { String(cString: $0) }
        let display = ProgressDisplay()
        var barShown = false
        let path = try orExit {
            // A failure mid-download must not print its one line after a half-drawn bar.
            defer { if barShown { fputs("\r\u{1B}[2K", stdout); fflush(stdout) } }
            return try DatasetFetch.fetch(dataset, into: directory, mirror: mirror, overwrite: overwrite) { event in
                switch event {
                case .downloading(let url, let from):
                    display.line(from > 0 ? "Resuming \(url) from \(megabytes(from))" : "Downloading \(url)")
                case .progress(let done, let total):
                    if let total, total > 0, display.interactive {
                        barShown = true
                        display.batch(prefix: "  ", done: Int(done * 1000 / total), total: 1000) { "\(megabytes(done)) of \(megabytes(total))" }
                    }
                case .verified(let file):
                    barShown = false   // line() clears the bar
                    display.line("  \(file): size and digest verified")
                case .unpacking(let file):
                    display.line("  unpacking \(file)")
                case .alreadyPresent:
                    display.line("\(dataset.name) is already in \(directory) (verified when it was fetched)")
                }
            }
        }
        print("Use: --data \(path)")
    }
}

/// "12.3 MB".
private func megabytes(_ bytes: Int64) -> String {
    let mb = Double(bytes) / 1e6
    return mb < 10 ? "\((mb * 100).rounded() / 100) MB" : "\((mb * 10).rounded() / 10) MB"
}

struct DataInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Read a dataset as train would and print its kind, shape, counts and load time.")

    @Argument(help: "Dataset directory or .npz file.")
    var path: String

    @OptionGroup var format: DataFormatOptions

    @Flag(help: "Decode without the dataset cache (neither read nor written).")
    var noCache = false

    func run() throws {
        var options = try format.options()
        options.useCache = !noCache
        let kind = try format.kind() ?? orExit { try DatasetLoader.detectKind(path: path) }
        let start = monotonicSeconds()
        let (train, test) = try orExit { try DatasetLoader.load(kind: kind, path: path, options: options) }
        let seconds = monotonicSeconds() - start
        print("kind: \(kind.rawValue)")
        print("images: \(train.channels)x\(train.height)x\(train.width), \(train.classes) classes")
        print("train: \(train.count) images, test: \(test.count) images")
        print("classes: \(train.classNames.prefix(10).joined(separator: ", "))\(train.classes > 10 ? ", ..." : "")")
        print("loaded in \((seconds * 1000).rounded() / 1000) s\(kind == .imageFolder || kind == .numpy ? (noCache ? " (no cache)" : " (cache: \(DatasetCache.directory()))") : "")")
    }
}

/// The flags of the dataset formats that have options (shared by train and data inspect).
struct DataFormatOptions: ParsableArguments {
    @Option(help: "CIFAR-100 labels: fine (100 classes) or coarse (20).")
    var labels: String?

    @Option(help: "Image folders: resize every image to HxW (or N for NxN); default: the images' own size, which must agree.")
    var imageSize: String?

    @Option(help: "Image folders: area (mean of the covered pixels; for shrinking) or bilinear (default area).")
    var resizeFilter: String?

    @Option(help: "cifar10, cifar100, mnist, fashion-mnist, image-folder or numpy (default: detected from the files).")
    var datasetKind: String?

    func kind() throws -> DatasetKind? {
        try datasetKind.map { k in
            guard let kind = DatasetKind(rawValue: k) else {
                throw ValidationError("--dataset-kind must be \(DatasetKind.allCases.map(\.rawValue).joined(separator: ", ")), not '\(k)'")
            }
            return kind
        }
    }

    func imageSizeValue() throws -> [Int]? {
        try imageSize.map { text in
            let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
            guard (1...2).contains(parts.count), parts.allSatisfy({ $0 != nil && $0! >= 1 && $0! <= 4096 }) else {
                throw ValidationError("--image-size must be HxW or N with sides in 1...4096, not '\(text)'")
            }
            return parts.count == 1 ? [parts[0]!, parts[0]!] : [parts[0]!, parts[1]!]
        }
    }

    func options() throws -> DatasetOptions {
        if let labels, CIFAR100.Labels(rawValue: labels) == nil {
            throw ValidationError("--labels must be fine or coarse, not '\(labels)'")
        }
        if let resizeFilter, ResizeFilter(rawValue: resizeFilter) == nil {
            throw ValidationError("--resize-filter must be \(ResizeFilter.allCases.map(\.rawValue).joined(separator: " or ")), not '\(resizeFilter)'")
        }
        let size = try imageSizeValue()
        return DatasetOptions(labels: labels.flatMap(CIFAR100.Labels.init(rawValue:)) ?? .fine,
                              imageHeight: size?[0], imageWidth: size?[1],
                              resizeFilter: resizeFilter.flatMap(ResizeFilter.init(rawValue:)) ?? .area)
    }
}
