/// Everything needed to rebuild a model: written into `config.json` and checkpoint metadata.
///
/// JSON example (`ModelZoo.spec("resnet20")`):
/// `{"family":"resnet","input":{"channels":3,"height":32,"width":32},"classes":10,
///   "resnet":{"depth":20,"shortcut":"A","width":16}}`
public struct ModelSpec: Codable, Hashable, Sendable {
    public enum Family: String, Codable, Hashable, Sendable {
        case resnet, vgg, cnn
    }

    public var family: Family
    /// Per-image input shape.
    public var input: ImageShape
    public var classes: Int
    public var resnet: ResNetOptions?
    public var vgg: VGGOptions?
    public var cnn: CNNOptions?
    /// Blocks per stage over the model's flat block list, replacing the family's default grouping
    /// (ResNet [1, n, n, n]: stem, layer1-3; VGG [2, 2, 3, 3, 3]; cnn one block per conv layer).
    public var partition: [Int]?
    /// Build only the first k stages, with a classifier sized for them (incremental growth).
    public var activeStages: Int?

    public init(family: Family, input: ImageShape, classes: Int, resnet: ResNetOptions? = nil,
                vgg: VGGOptions? = nil, cnn: CNNOptions? = nil, partition: [Int]? = nil, activeStages: Int? = nil) {
        self.family = family
        self.input = input
        self.classes = classes
        self.resnet = resnet
        self.vgg = vgg
        self.cnn = cnn
        self.partition = partition
        self.activeStages = activeStages
    }

    public static func resnet(depth: Int, shortcut: ResidualShortcut = .a, input: ImageShape = .cifar,
                              classes: Int = 10) -> ModelSpec {
        ModelSpec(family: .resnet, input: input, classes: classes, resnet: ResNetOptions(depth: depth, shortcut: shortcut))
    }

    public static func vgg(_ options: VGGOptions = VGGOptions(), input: ImageShape = .cifar, classes: Int = 10) -> ModelSpec {
        ModelSpec(family: .vgg, input: input, classes: classes, vgg: options)
    }

    public static func cnn(_ options: CNNOptions, input: ImageShape = .fashionMNIST, classes: Int = 10) -> ModelSpec {
        ModelSpec(family: .cnn, input: input, classes: classes, cnn: options)
    }
}

/// Per-image input shape (C, H, W).
public struct ImageShape: Codable, Hashable, Sendable, CustomStringConvertible {
    public var channels: Int
    public var height: Int
    public var width: Int

    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// 3 x 32 x 32 (CIFAR-10/100).
    public static let cifar = ImageShape(channels: 3, height: 32, width: 32)
    /// 1 x 28 x 28 (MNIST, Fashion-MNIST).
    public static let fashionMNIST = ImageShape(channels: 1, height: 28, width: 28)

    public var dims: [Int] { [channels, height, width] }
    public var description: String { "\(channels)x\(height)x\(width)" }
}

/// CIFAR ResNet (He et al. 2016, section 4.2): depth 6n+2, three stages of n basic blocks with
/// width, 2*width, 4*width channels on 32x32, 16x16, 8x8 maps, global average pool, fc.
public struct ResNetOptions: Codable, Hashable, Sendable {
    public var depth: Int
    public var shortcut: ResidualShortcut
    /// Channels of the stem and the first stage (16 in the paper).
    public var width: Int
    /// Inner width (conv1 -> conv2) of each basic block, in order, when narrower than the block
    /// (a channel-pruned proxy, `strata prune`); nil: every block is as wide as its stage.
    public var blockWidths: [Int]?
    /// Output width of each of the three stages (the stem's is the first stage's), when not
    /// width, 2*width, 4*width (a proxy whose shortcut-tied channels were pruned, `strata prune
    /// --tied prune`); nil: the paper's widths.
    public var stageWidths: [Int]?

    public init(depth: Int, shortcut: ResidualShortcut = .a, width: Int = 16, blockWidths: [Int]? = nil,
                stageWidths: [Int]? = nil) {
        self.depth = depth
        self.shortcut = shortcut
        self.width = width
        self.blockWidths = blockWidths
        self.stageWidths = stageWidths
    }

    /// The output widths of the three stages.
    public var stagePlanes: [Int] { stageWidths ?? [width, width << 1, width << 2] }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        depth = try c.decode(Int.self, forKey: .depth)
        shortcut = try c.decodeIfPresent(ResidualShortcut.self, forKey: .shortcut) ?? .a
        width = try c.decodeIfPresent(Int.self, forKey: .width) ?? 16
        blockWidths = try c.decodeIfPresent([Int].self, forKey: .blockWidths)
        stageWidths = try c.decodeIfPresent([Int].self, forKey: .stageWidths)
    }
}

/// VGG with batch norm (torchvision `vgg*_bn` layout, CIFAR-sized head).
public struct VGGOptions: Codable, Hashable, Sendable {
    public enum Head: String, Codable, Hashable, Sendable {
        /// Two hidden dense layers (`hidden` units, ReLU, optional dropout) before the output,
        /// as torchvision's classifier: `classifier.0`, `classifier.3`, `classifier.6`.
        case paper
        /// One dense layer from the features to the classes (`classifier`), as common CIFAR code.
        case single
    }

    /// Conv widths per group; each group ends with a 2x2 max-pool (padding 1 on odd sizes, so
    /// 28x28 inputs go 14, 7, 4, 2, 1).
    public var groups: [[Int]]
    public var head: Head
    public var hidden: Int
    /// Dropout probability after each hidden ReLU of the paper head (0: none).
    public var dropout: Float

    public init(groups: [[Int]] = VGGOptions.vgg16, head: Head = .paper, hidden: Int = 4096, dropout: Float = 0) {
        self.groups = groups
        self.head = head
        self.hidden = hidden
        self.dropout = dropout
    }

    public static let vgg11: [[Int]] = [[64], [128], [256, 256], [512, 512], [512, 512]]
    public static let vgg13: [[Int]] = [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]]
    public static let vgg16: [[Int]] = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
    public static let vgg19: [[Int]] = [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]]

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        groups = try c.decodeIfPresent([[Int]].self, forKey: .groups) ?? VGGOptions.vgg16
        head = try c.decodeIfPresent(Head.self, forKey: .head) ?? .paper
        hidden = try c.decodeIfPresent(Int.self, forKey: .hidden) ?? 4096
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0
    }
}

/// The small search-space CNN: conv layers (each conv -> ReLU -> 2x2 max-pool), then hidden dense
/// layers (each -> ReLU, optional dropout), then the output layer.
/// Names: `features.{3i}` for conv i; `classifier.{3j}` for dense j (torchvision-like indices,
/// the ReLU and dropout slots keep their numbers whether or not dropout is used).
public struct CNNOptions: Codable, Hashable, Sendable {
    public enum Padding: String, Codable, Hashable, Sendable {
        /// Output size = input size (padding k/2, odd kernels).
        case same
        /// No padding.
        case valid
    }

    public var filters: [Int]
    public var kernel: Int
    public var padding: Padding
    public var hidden: [Int]
    public var dropout: Float

    public init(filters: [Int], kernel: Int = 3, padding: Padding = .same, hidden: [Int] = [128], dropout: Float = 0) {
        self.filters = filters
        self.kernel = kernel
        self.padding = padding
        self.hidden = hidden
        self.dropout = dropout
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        filters = try c.decode([Int].self, forKey: .filters)
        kernel = try c.decodeIfPresent(Int.self, forKey: .kernel) ?? 3
        padding = try c.decodeIfPresent(Padding.self, forKey: .padding) ?? .same
        hidden = try c.decodeIfPresent([Int].self, forKey: .hidden) ?? [128]
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0
    }
}

/// An invalid model configuration (from a config file or flags), with a message naming the field.
public struct ModelSpecError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
