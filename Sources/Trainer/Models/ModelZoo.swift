/// Named model configurations.
///
/// ```swift
/// let spec = try ModelZoo.spec("resnet20")                              // 3x32x32, 10 classes
/// let fm = try ModelZoo.spec("vgg16", input: .fashionMNIST, classes: 10)
/// ```
public enum ModelZoo {
    /// `resnet<6n+2>` (CIFAR ResNet, option A shortcuts), `vgg11/13/16/19` (batch norm, paper
    /// head), `cnn` (2 conv layers of 32, 64 3x3 filters and one hidden layer of 128).
    public static let names = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
                               "vgg11", "vgg13", "vgg16", "vgg19", "cnn"]

    /// The spec of a named model; throws `ModelSpecError` for an unknown name or one that does not
    /// fit the input (checked by building it once).
    public static func spec(_ name: String, input: ImageShape = .cifar, classes: Int = 10) throws -> ModelSpec {
        let spec = try lookup(name, input: input, classes: classes)
        _ = try ModelBuilder.build(spec)
        return spec
    }

    private static func lookup(_ name: String, input: ImageShape, classes: Int) throws -> ModelSpec {
        let lower = name.lowercased()
        if lower.hasPrefix("resnet"), let depth = Int(lower.dropFirst(6)) {
            return .resnet(depth: depth, input: input, classes: classes)
        }
        switch lower {
        case "vgg11": return .vgg(VGGOptions(groups: VGGOptions.vgg11), input: input, classes: classes)
        case "vgg13": return .vgg(VGGOptions(groups: VGGOptions.vgg13), input: input, classes: classes)
        case "vgg16": return .vgg(VGGOptions(groups: VGGOptions.vgg16), input: input, classes: classes)
        case "vgg19": return .vgg(VGGOptions(groups: VGGOptions.vgg19), input: input, classes: classes)
        case "cnn": return .cnn(CNNOptions(filters: [32, 64]), input: input, classes: classes)
        default:
            throw ModelSpecError("unknown model '\(name)'; known: \(names.joined(separator: ", "))")
        }
    }

    public static func model(_ name: String, input: ImageShape = .cifar, classes: Int = 10) throws -> Model {
        try Model(spec: spec(name, input: input, classes: classes))
    }
}

/// Turns a `ModelSpec` into stages of blocks and a classifier, with PyTorch names.
enum ModelBuilder {
    typealias Stages = [(name: String, blocks: [any Layer])]

    static func build(_ spec: ModelSpec) throws -> (stages: Stages, classifier: [any Layer]) {
        guard spec.classes > 0 else { throw ModelSpecError("classes must be positive, got \(spec.classes)") }
        let input = spec.input
        guard input.channels > 0 && input.height > 0 && input.width > 0 else {
            throw ModelSpecError("input shape \(input) must be positive")
        }
        var stages: Stages
        switch spec.family {
        case .resnet:
            guard let o = spec.resnet else { throw ModelSpecError("family resnet needs 'resnet' options") }
            stages = try resnetStages(o, input: input)
        case .vgg:
            guard let o = spec.vgg else { throw ModelSpecError("family vgg needs 'vgg' options") }
            stages = try vggStages(o, input: input)
        case .cnn:
            guard let o = spec.cnn else { throw ModelSpecError("family cnn needs 'cnn' options") }
            stages = try cnnStages(o, input: input)
        }
        if let counts = spec.partition {
            stages = try repartition(stages, counts)
        }
        if let k = spec.activeStages {
            guard k >= 1 && k <= stages.count else {
                throw ModelSpecError("activeStages \(k) not in 1...\(stages.count)")
            }
            stages = Array(stages.prefix(k))
        }
        let features = outputShapeChain(stages.flatMap { $0.blocks }, input: input.dims)
        let classifier: [any Layer]
        switch spec.family {
        case .resnet: classifier = [GlobalAvgPool(), Dense(name: "fc", inFeatures: features[0], outFeatures: spec.classes)]
        case .vgg: classifier = vggClassifier(spec.vgg!, features: features, classes: spec.classes)
        case .cnn: classifier = try cnnClassifier(spec.cnn!, features: features, classes: spec.classes)
        }
        return (stages, classifier)
    }

    /// Regroups the flat block list into stages of `counts` blocks, named stage1, stage2, ...
    static func repartition(_ stages: Stages, _ counts: [Int]) throws -> Stages {
        let blocks = stages.flatMap { $0.blocks }
        guard counts.allSatisfy({ $0 > 0 }), counts.reduce(0, +) == blocks.count else {
            throw ModelSpecError("partition \(counts) must be positive block counts summing to \(blocks.count)")
        }
        var out: Stages = []
        var start = 0
        for (i, n) in counts.enumerated() {
            out.append((name: "stage\(i + 1)", blocks: Array(blocks[start..<start + n])))
            start += n
        }
        return out
    }

    // MARK: ResNet (CIFAR, He et al. 2016)

    static func resnetStages(_ o: ResNetOptions, input: ImageShape) throws -> Stages {
        guard o.depth >= 8 && (o.depth - 2) % 6 == 0 else {
            throw ModelSpecError("resnet depth must be 6n+2 (20, 32, 44, 56, 110), got \(o.depth)")
        }
        guard o.width > 0 && (o.shortcut == .b || o.width % 2 == 0 || o.stageWidths != nil) else {
            throw ModelSpecError("resnet width must be positive (and even for option A), got \(o.width)")
        }
        let n = (o.depth - 2) / 6
        let planes = o.stagePlanes
        if let widths = o.stageWidths {
            guard widths.count == 3, widths.allSatisfy({ $0 > 0 }) else {
                throw ModelSpecError("resnet stageWidths must give 3 positive widths (one per stage), got \(widths)")
            }
            // Option A pads a stage's channels evenly on both sides into the next one's.
            guard o.shortcut == .b || zip(widths, widths.dropFirst()).allSatisfy({ $1 >= $0 && ($1 - $0) % 2 == 0 }) else {
                throw ModelSpecError("resnet stageWidths \(widths): option A shortcuts need each stage at least as wide as the last, by an even number")
            }
        }
        if let widths = o.blockWidths {
            guard widths.count == 3 * n, widths.allSatisfy({ $0 > 0 }) else {
                throw ModelSpecError("resnet blockWidths must give \(3 * n) positive inner widths (one per block), got \(widths)")
            }
        }
        let stem = Sequential([
            Conv2D(name: "conv1", inChannels: input.channels, outChannels: planes[0], kernel: 3, padding: 1, bias: false),
            BatchNorm2D(name: "bn1", channels: planes[0]),
            ReLU(),
        ])
        var stages: Stages = [("stem", [stem])]
        var inPlanes = planes[0]
        var size = input.height
        for s in 0..<3 {
            let stride = s == 0 ? 1 : 2
            if stride == 2 {
                guard size >= 2 else { throw ModelSpecError("input \(input) too small for resnet stage \(s + 1)") }
                size = (size + 1) / 2
            }
            var blocks: [any Layer] = []
            for b in 0..<n {
                blocks.append(BasicBlock(name: "layer\(s + 1).\(b)", inPlanes: inPlanes, planes: planes[s],
                                         midPlanes: o.blockWidths?[s * n + b], stride: b == 0 ? stride : 1,
                                         shortcut: o.shortcut))
                inPlanes = planes[s]
            }
            stages.append(("layer\(s + 1)", blocks))
        }
        return stages
    }

    // MARK: VGG (torchvision vgg*_bn feature indices)

    static func vggStages(_ o: VGGOptions, input: ImageShape) throws -> Stages {
        guard !o.groups.isEmpty, o.groups.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0 > 0 } }) else {
            throw ModelSpecError("vgg groups must be non-empty lists of positive widths, got \(o.groups)")
        }
        guard input.height == input.width else { throw ModelSpecError("vgg needs a square input, got \(input)") }
        guard o.hidden > 0 && o.dropout >= 0 && o.dropout < 1 else {
            throw ModelSpecError("vgg hidden must be positive and dropout in [0, 1), got \(o.hidden), \(o.dropout)")
        }
        var stages: Stages = []
        var index = 0
        var channels = input.channels
        var size = input.height
        for (g, widths) in o.groups.enumerated() {
            var blocks: [any Layer] = []
            for (j, w) in widths.enumerated() {
                var unit: [any Layer] = [
                    Conv2D(name: "features.\(index)", inChannels: channels, outChannels: w, kernel: 3, padding: 1),
                    BatchNorm2D(name: "features.\(index + 1)", channels: w),
                    ReLU(name: "features.\(index + 2)"),
                ]
                index += 3
                channels = w
                if j == widths.count - 1 {
                    // Padding 1 on odd sizes keeps 28x28 inputs alive through five pools
                    // (PyTorch: nn.MaxPool2d(2, 2, padding=1)).
                    let pad = size % 2
                    unit.append(MaxPool2D(name: "features.\(index)", window: 2, stride: 2, padding: pad))
                    size = (size + 2 * pad - 2) / 2 + 1
                    index += 1
                }
                blocks.append(Sequential(unit))
            }
            stages.append(("stage\(g + 1)", blocks))
        }
        return stages
    }

    static func vggClassifier(_ o: VGGOptions, features: [Int], classes: Int) -> [any Layer] {
        let f = features.reduce(1, *)
        switch o.head {
        case .single:
            return [Flatten(), Dense(name: "classifier", inFeatures: f, outFeatures: classes)]
        case .paper:
            var layers: [any Layer] = [Flatten()]
            var inFeatures = f
            for j in 0..<2 {
                layers.append(Dense(name: "classifier.\(3 * j)", inFeatures: inFeatures, outFeatures: o.hidden))
                layers.append(ReLU(name: "classifier.\(3 * j + 1)"))
                if o.dropout > 0 { layers.append(Dropout(name: "classifier.\(3 * j + 2)", probability: o.dropout)) }
                inFeatures = o.hidden
            }
            layers.append(Dense(name: "classifier.6", inFeatures: inFeatures, outFeatures: classes))
            return layers
        }
    }

    // MARK: Small CNN (search space)

    static func cnnStages(_ o: CNNOptions, input: ImageShape) throws -> Stages {
        guard !o.filters.isEmpty, o.filters.allSatisfy({ $0 > 0 }) else {
            throw ModelSpecError("cnn needs at least one conv layer with positive filters, got \(o.filters)")
        }
        guard o.kernel > 0 && (o.padding == .valid || o.kernel % 2 == 1) else {
            throw ModelSpecError("cnn kernel must be positive (and odd for same padding), got \(o.kernel)")
        }
        var stages: Stages = []
        var channels = input.channels
        var (h, w) = (input.height, input.width)
        let pad = o.padding == .same ? o.kernel / 2 : 0
        for (i, f) in o.filters.enumerated() {
            h = h + 2 * pad - o.kernel + 1
            w = w + 2 * pad - o.kernel + 1
            guard h >= 2 && w >= 2 else {
                throw ModelSpecError("cnn conv layer \(i + 1) leaves a \(h)x\(w) map, too small for 2x2 pooling")
            }
            h /= 2
            w /= 2
            let block = Sequential([
                Conv2D(name: "features.\(3 * i)", inChannels: channels, outChannels: f, kernel: o.kernel, padding: pad),
                ReLU(name: "features.\(3 * i + 1)"),
                MaxPool2D(name: "features.\(3 * i + 2)", window: 2),
            ])
            channels = f
            stages.append(("stage\(i + 1)", [block]))
        }
        return stages
    }

    static func cnnClassifier(_ o: CNNOptions, features: [Int], classes: Int) throws -> [any Layer] {
        guard o.hidden.allSatisfy({ $0 > 0 }) else { throw ModelSpecError("cnn hidden units must be positive, got \(o.hidden)") }
        guard o.dropout >= 0 && o.dropout < 1 else { throw ModelSpecError("cnn dropout must be in [0, 1), got \(o.dropout)") }
        var layers: [any Layer] = [Flatten()]
        var inFeatures = features.reduce(1, *)
        for (j, units) in o.hidden.enumerated() {
            layers.append(Dense(name: "classifier.\(3 * j)", inFeatures: inFeatures, outFeatures: units))
            layers.append(ReLU(name: "classifier.\(3 * j + 1)"))
            if o.dropout > 0 { layers.append(Dropout(name: "classifier.\(3 * j + 2)", probability: o.dropout)) }
            inFeatures = units
        }
        layers.append(Dense(name: "classifier.\(3 * o.hidden.count)", inFeatures: inFeatures, outFeatures: classes))
        return layers
    }
}
