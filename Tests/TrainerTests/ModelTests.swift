import XCTest
import GPUTensor
@testable import Trainer
#if canImport(FoundationEssentials)
import FoundationEssentials
#endif

/// Structure, names, parameter counts and FLOPs: no kernels needed (prepare only allocates).
///
/// Reference counts (`sum(p.numel() for p in m.parameters())`, worked out by hand):
/// - CIFAR ResNet option A: stem 432 + 32; a block per stage adds 4,672 / 18,560 / 73,984, the
///   first blocks of layer2/3 13,952 / 55,552; fc 650:
///   resnet20 269,722; resnet32 464,154; resnet44 658,586; resnet56 853,018; resnet110 1,727,962
///   (the figures akamaster/pytorch_resnet_cifar10 quotes as 0.27M, 0.46M, 0.66M, 0.85M, 1.7M).
/// - Option B adds the two projections: layer2.0 1x1 16->32 + BN (512 + 64) and layer3.0 1x1
///   32->64 + BN (2,048 + 128) = 2,752: 272,474; 466,906; 661,338; 855,770.
/// - vgg16_bn on 32x32 (conv biases kept, as torchvision): features 14,723,136;
///   paper head 512-4096-4096-10 adds 18,923,530 = 33,646,666; single 512->10 adds 5,130 = 14,728,266.
final class ModelTests: XCTestCase {
    func testResNetParameterCountsOptionA() throws {
        for (depth, count) in [(20, 269_722), (32, 464_154), (44, 658_586), (56, 853_018)] {
            let m = try Model(spec: .resnet(depth: depth, shortcut: .a))
            XCTAssertEqual(m.parameterCount, count, "resnet\(depth) option A")
            XCTAssertEqual(m.cost.parameters, count, "resnet\(depth) option A via cost")
        }
    }

    func testResNetParameterCountsOptionB() throws {
        for (depth, count) in [(20, 272_474), (32, 466_906), (44, 661_338), (56, 855_770)] {
            let m = try Model(spec: .resnet(depth: depth, shortcut: .b))
            XCTAssertEqual(m.parameterCount, count, "resnet\(depth) option B")
        }
    }

    /// MACs of CIFAR ResNet-20 (32x32): conv1 16*1024*27 = 442,368; layer1 6 x 16*1024*144 =
    /// 14,155,776; layer2 32*256*144 + 5 x 32*256*288 = 12,976,128; layer3 the same; fc 640.
    /// Total 40,551,040 MACs = 81,102,080 FLOPs (2 per MAC). Each extra block per stage adds
    /// 3 x 2 x 2,359,296 MACs, so resnet56 = 125,485,696 MACs.
    func testResNetFLOPs() throws {
        let macs = [20: 40_551_040.0, 32: 68_862_592.0, 44: 97_174_144.0, 56: 125_485_696.0]
        for (depth, mac) in macs {
            let c = try Model(spec: .resnet(depth: depth)).cost
            XCTAssertEqual(c.forward, 2 * mac, "resnet\(depth) forward")
            XCTAssertEqual(c.backwardData, 2 * mac, "resnet\(depth) backward-data")
            XCTAssertEqual(c.backwardWeight, 2 * mac, "resnet\(depth) backward-weight")
        }
        // Option B: + 1x1 projections 32*256*16 + 64*64*32 = 262,144 MACs.
        XCTAssertEqual(try Model(spec: .resnet(depth: 20, shortcut: .b)).cost.forward, 2 * (40_551_040 + 262_144))
    }

    func testResNet20StepCostSkipsFirstInputGradient() throws {
        let m = try Model(spec: .resnet(depth: 20))
        let full = m.cost
        let step = m.stepCost
        XCTAssertEqual(step.performed.forward, full.forward)
        XCTAssertEqual(step.performed.backwardWeight, full.backwardWeight)
        XCTAssertEqual(step.performed.backwardData, full.backwardData - 2 * 442_368, "conv1 needs no dx")
        XCTAssertEqual(step.skipped, .zero, "nothing frozen, nothing skipped")
    }

    /// vgg16_bn on 32x32: 313,196,544 conv MACs (1,769,472 + 37,748,736 at 32x32; 18,874,368 +
    /// 37,748,736 at 16x16; 18,874,368 + 2 x 37,748,736 at 8x8 and at 4x4; 3 x 9,437,184 at 2x2);
    /// paper head 512*4096 + 4096*4096 + 4096*10 = 18,915,328; single head 5,120.
    func testVGG16CountsAndFLOPs() throws {
        let paper = try Model(spec: .vgg(VGGOptions(head: .paper)))
        XCTAssertEqual(paper.parameterCount, 33_646_666)
        XCTAssertEqual(paper.cost.forward, 2 * (313_196_544 + 18_915_328))
        let single = try Model(spec: .vgg(VGGOptions(head: .single)))
        XCTAssertEqual(single.parameterCount, 14_728_266)
        XCTAssertEqual(single.cost.forward, 2 * (313_196_544 + 5_120))
        XCTAssertEqual(single.outputShape, [10])
        XCTAssertEqual(single.blockInputShapes.last, [512, 1, 1])
        XCTAssertEqual(paper.stages.map { $0.blocks.count }, [2, 2, 3, 3, 3])
    }

    func testResNetNamesMatchPyTorch() throws {
        let m = try Model(spec: .resnet(depth: 20))
        let names = m.parameters.map(\.name)
        XCTAssertEqual(Array(names.prefix(9)), [
            "conv1.weight", "bn1.weight", "bn1.bias",
            "layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias",
            "layer1.0.conv2.weight", "layer1.0.bn2.weight", "layer1.0.bn2.bias",
        ])
        XCTAssertEqual(Array(names.suffix(2)), ["fc.weight", "fc.bias"])
        XCTAssertEqual(names.count, 3 + 9 * 6 + 2)
        XCTAssertEqual(Set(names).count, names.count, "unique names")
        XCTAssertTrue(names.contains("layer3.2.bn2.bias"))
        let bufferNames = m.buffers.map(\.name)
        XCTAssertEqual(bufferNames.count, 2 * 19)
        XCTAssertEqual(Array(bufferNames.prefix(4)), ["bn1.running_mean", "bn1.running_var",
                                                       "layer1.0.bn1.running_mean", "layer1.0.bn1.running_var"])
        XCTAssertEqual(m.parameter(named: "layer2.0.conv1.weight")?.shape, [32, 16, 3, 3])
        XCTAssertEqual(m.parameter(named: "fc.weight")?.shape, [10, 64])

        let b = try Model(spec: .resnet(depth: 20, shortcut: .b))
        XCTAssertEqual(b.parameter(named: "layer2.0.downsample.0.weight")?.shape, [32, 16, 1, 1])
        XCTAssertEqual(b.parameter(named: "layer3.0.downsample.1.weight")?.shape, [64])
        XCTAssertNil(b.parameter(named: "layer1.0.downsample.0.weight"))
        XCTAssertTrue(b.buffers.contains { $0.name == "layer3.0.downsample.1.running_var" })
    }

    /// State-dict order is PyTorch's: each module's parameters, then its buffers, then children.
    func testStateDictOrderAfterPrepare() throws {
        let m = try Model(spec: .resnet(depth: 20))
        try m.prepare(on: CPUBackend(threads: 1), maxBatch: 2)
        let keys = m.stateDict.map(\.name)
        XCTAssertEqual(Array(keys.prefix(6)), ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean",
                                                "bn1.running_var", "layer1.0.conv1.weight"])
        XCTAssertEqual(keys.count, 59 + 38)
        XCTAssertEqual(m.stateDict.first { $0.name == "layer3.0.bn1.running_var" }?.tensor.shape, [64])
    }

    /// torchvision vgg16_bn: convs at features.0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40,
    /// each followed by its BN (+1); pools at 6, 13, 23, 33, 43; classifier.0, .3, .6.
    func testVGG16NamesMatchTorchvision() throws {
        let m = try Model(spec: .vgg(VGGOptions(head: .paper)))
        let convs = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]
        var expected: [String] = []
        for i in convs {
            expected += ["features.\(i).weight", "features.\(i).bias", "features.\(i + 1).weight", "features.\(i + 1).bias"]
        }
        expected += ["classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias",
                     "classifier.6.weight", "classifier.6.bias"]
        XCTAssertEqual(m.parameters.map(\.name), expected)
        XCTAssertEqual(m.parameter(named: "classifier.0.weight")?.shape, [4096, 512])
        let single = try Model(spec: .vgg(VGGOptions(head: .single)))
        XCTAssertEqual(single.parameters.suffix(2).map(\.name), ["classifier.weight", "classifier.bias"])
    }

    /// Fashion-MNIST inputs: ResNet ends on 7x7 maps; VGG pads odd sizes (28, 14, 7 -> 4, 2, 1).
    func testFashionMNISTShapes() throws {
        let r = try ModelZoo.model("resnet20", input: .fashionMNIST)
        XCTAssertEqual(r.blockInputShapes.last, [64, 7, 7])
        XCTAssertEqual(r.parameter(named: "conv1.weight")?.shape, [16, 1, 3, 3])
        XCTAssertEqual(r.parameterCount, 269_722 - 2 * 16 * 9)
        let v = try ModelZoo.model("vgg16", input: .fashionMNIST)
        XCTAssertEqual(v.blockInputShapes.last, [512, 1, 1])
        XCTAssertEqual(v.outputShape, [10])
    }

    /// cnn [32, 64] 3x3 same, hidden [128] on 1x28x28: conv 320 + 18,496; 7*7*64 = 3,136 features;
    /// dense 3,136*128 + 128 = 401,536; output 1,290. Total 421,642.
    func testCNNFamily() throws {
        let m = try ModelZoo.model("cnn", input: .fashionMNIST)
        XCTAssertEqual(m.parameterCount, 421_642)
        XCTAssertEqual(m.parameters.map(\.name), ["features.0.weight", "features.0.bias", "features.3.weight",
                                                  "features.3.bias", "classifier.0.weight", "classifier.0.bias",
                                                  "classifier.3.weight", "classifier.3.bias"])
        XCTAssertEqual(m.stages.map(\.name), ["stage1", "stage2"])
        XCTAssertEqual(m.blockInputShapes, [[1, 28, 28], [32, 14, 14], [64, 7, 7]])
        // MACs: 32*784*9 + 64*196*288 + 3136*128 + 128*10.
        XCTAssertEqual(m.cost.forward, 2 * Double(32 * 784 * 9 + 64 * 196 * 288 + 3136 * 128 + 1280))

        let withDropout = try Model(spec: .cnn(CNNOptions(filters: [8], hidden: [64, 32], dropout: 0.5), input: .cifar))
        XCTAssertEqual(withDropout.parameters.map(\.name).filter { $0.hasSuffix("weight") },
                       ["features.0.weight", "classifier.0.weight", "classifier.3.weight", "classifier.6.weight"])
        XCTAssertEqual(withDropout.dropoutLayers.map(\.name), ["classifier.2", "classifier.5"])
    }

    func testCNNValidPaddingTooDeepThrows() {
        XCTAssertThrowsError(try Model(spec: .cnn(CNNOptions(filters: [8, 8, 8], kernel: 5, padding: .valid),
                                                  input: .fashionMNIST))) { error in
            XCTAssertTrue("\(error)".contains("conv layer 3"), "\(error)")
        }
    }

    func testStagesAndFreezing() throws {
        let m = try Model(spec: .resnet(depth: 20))
        XCTAssertEqual(m.stages.map(\.name), ["stem", "layer1", "layer2", "layer3"])
        XCTAssertEqual(m.stages.map(\.blocks), [0..<1, 1..<4, 4..<7, 7..<10])
        XCTAssertEqual(m.frozenBlockCount, 0)

        m.freezeStages(upTo: 2)
        XCTAssertEqual(m.frozenBlockCount, 4)
        let stemAndLayer1 = 432 + 32 + 3 * 4_672
        XCTAssertEqual(m.trainableParameterCount, 269_722 - stemAndLayer1)
        XCTAssertTrue(m.parameter(named: "layer1.2.bn2.weight")!.isFrozen)
        XCTAssertFalse(m.parameter(named: "layer2.0.conv1.weight")!.isFrozen)
        XCTAssertFalse(m.parameter(named: "fc.bias")!.isFrozen)
        XCTAssertFalse(m.trainableParameters.contains { $0.name.hasPrefix("layer1.") || $0.name.hasPrefix("conv1") })

        // Skipped: layer1's weight gradients and input gradients (6 convs of 2,359,296 MACs),
        // the stem's weight gradient, and layer2.0.conv1's input gradient (1,179,648 MACs).
        let step = m.stepCost
        XCTAssertEqual(step.skipped.forward, 0)
        XCTAssertEqual(step.skipped.backwardWeight, 2 * (442_368 + 6 * 2_359_296))
        XCTAssertEqual(step.skipped.backwardData, 2 * (6 * 2_359_296 + 1_179_648))
        XCTAssertEqual(step.performed.backwardWeight + step.skipped.backwardWeight, m.cost.backwardWeight)

        m.freezePrefix(blocks: 0)
        XCTAssertEqual(m.trainableParameterCount, 269_722)
        XCTAssertFalse(m.parameter(named: "conv1.weight")!.isFrozen)
        m.freezeStages(upTo: 4)
        XCTAssertEqual(m.trainableParameterCount, 650, "only fc")
        XCTAssertEqual(m.stepCost.performed.backwardData, 0)
        XCTAssertEqual(m.stepCost.performed.backwardWeight, 2 * 640)
    }

    func testPartitionAndActiveStages() throws {
        var spec = ModelSpec.resnet(depth: 20)
        spec.partition = [4, 3, 3]
        let m = try Model(spec: spec)
        XCTAssertEqual(m.stages.map(\.name), ["stage1", "stage2", "stage3"])
        XCTAssertEqual(m.stages.map(\.blocks), [0..<4, 4..<7, 7..<10])
        XCTAssertEqual(m.parameterCount, 269_722)

        var grow = ModelSpec.resnet(depth: 20)
        grow.activeStages = 2
        let g = try Model(spec: grow)
        XCTAssertEqual(g.blocks.count, 4)
        XCTAssertEqual(g.parameter(named: "fc.weight")?.shape, [10, 16])
        XCTAssertEqual(g.parameterCount, 432 + 32 + 3 * 4_672 + 170)

        var bad = ModelSpec.resnet(depth: 20)
        bad.partition = [4, 3, 2]
        XCTAssertThrowsError(try Model(spec: bad))
        bad.partition = nil
        bad.activeStages = 5
        XCTAssertThrowsError(try Model(spec: bad))
    }

    func testZooNamesAndErrors() throws {
        for name in ModelZoo.names {
            XCTAssertNoThrow(try ModelZoo.model(name), name)
            XCTAssertNoThrow(try ModelZoo.model(name, input: .fashionMNIST), name)
        }
        XCTAssertThrowsError(try ModelZoo.spec("resnet21"))
        XCTAssertThrowsError(try Model(spec: ModelZoo.spec("resnet21")))
        XCTAssertThrowsError(try ModelZoo.spec("alexnet")) { error in
            XCTAssertTrue("\(error)".contains("alexnet"))
        }
        XCTAssertEqual(try ModelZoo.model("resnet110").parameterCount, 1_727_962)
    }

    func testSpecJSONRoundTripAndDefaults() throws {
        let specs: [ModelSpec] = [
            try ModelZoo.spec("resnet56", classes: 100),
            .vgg(VGGOptions(head: .single, dropout: 0.5), input: .fashionMNIST),
            .cnn(CNNOptions(filters: [16, 32, 64], kernel: 5, hidden: [256, 128], dropout: 0.25)),
        ]
        for s in specs {
            let data = try JSONEncoder().encode(s)
            XCTAssertEqual(try JSONDecoder().decode(ModelSpec.self, from: data), s)
        }
        let minimal = #"{"family":"resnet","input":{"channels":3,"height":32,"width":32},"classes":10,"resnet":{"depth":20}}"#
        let decoded = try JSONDecoder().decode(ModelSpec.self, from: Data(minimal.utf8))
        XCTAssertEqual(decoded, ModelSpec.resnet(depth: 20))
        XCTAssertEqual(try Model(spec: decoded).parameterCount, 269_722)
    }

    func testFNV1aVectors() {
        XCTAssertEqual(fnv1a64(""), 0xcbf2_9ce4_8422_2325)
        XCTAssertEqual(fnv1a64("a"), 0xaf63_dc4c_8601_ec8c)
        XCTAssertEqual(fnv1a64("foobar"), 0x8594_4171_f739_67e8)
    }

    /// Per-layer accounting against hand values.
    func testLayerCosts() {
        let conv = Conv2D(name: "c", inChannels: 3, outChannels: 8, kernel: 3, stride: 2, padding: 1)
        XCTAssertEqual(conv.outputShape(input: [3, 9, 9]), [8, 5, 5])
        XCTAssertEqual(conv.cost(input: [3, 9, 9]), LayerCost(parameters: 224, forward: 2 * 8 * 25 * 27,
                                                             backwardData: 2 * 8 * 25 * 27, backwardWeight: 2 * 8 * 25 * 27))
        let dense = Dense(name: "d", inFeatures: 5, outFeatures: 4, bias: false)
        XCTAssertEqual(dense.cost(input: [5]), LayerCost(parameters: 20, forward: 40, backwardData: 40, backwardWeight: 40))
        XCTAssertEqual(MaxPool2D(window: 2).outputShape(input: [4, 7, 7]), [4, 3, 3])
        XCTAssertEqual(MaxPool2D(window: 2, padding: 1).outputShape(input: [4, 7, 7]), [4, 4, 4])
        XCTAssertEqual(AvgPool2D(window: 3, stride: 1, padding: 1).outputShape(input: [4, 7, 7]), [4, 7, 7])
        XCTAssertEqual(GlobalAvgPool().outputShape(input: [4, 7, 5]), [4])
        XCTAssertEqual(Flatten().outputShape(input: [4, 7, 5]), [140])
        XCTAssertEqual(BatchNorm2D(name: "bn", channels: 6).outputShape(input: [6]), [6])
        let blockA = BasicBlock(name: "b", inPlanes: 16, planes: 32, stride: 2, shortcut: .a)
        XCTAssertEqual(blockA.outputShape(input: [16, 32, 32]), [32, 16, 16])
        XCTAssertEqual(blockA.parameterCount, 4_608 + 9_216 + 128)
        let blockB = BasicBlock(name: "b", inPlanes: 16, planes: 32, stride: 2, shortcut: .b)
        XCTAssertEqual(blockB.parameterCount, 4_608 + 9_216 + 128 + 512 + 64)
        XCTAssertEqual(blockB.children.count, 6)
    }
}

/// Whole models through the CPU backend: gradient checks of the softmax cross-entropy loss,
/// frozen prefixes, memory planning and initialisation.
final class ModelNumericTests: XCTestCase {
    /// ResNet-8 at width 4 on 3x8x8 images: stem, one block per stage (8x8, 4x4, 2x2), 5 classes.
    func tinyResNet(_ shortcut: ResidualShortcut) -> ModelSpec {
        ModelSpec(family: .resnet, input: ImageShape(channels: 3, height: 8, width: 8), classes: 5,
                  resnet: ResNetOptions(depth: 8, shortcut: shortcut, width: 4))
    }

    func testTinyResNetOptionAGradients() throws {
        try checkModelGradients(Model(spec: tinyResNet(.a)), batch: 3)
    }

    func testTinyResNetOptionBGradients() throws {
        try checkModelGradients(Model(spec: tinyResNet(.b)), batch: 3)
    }

    func testTinyCNNGradients() throws {
        let spec = ModelSpec.cnn(CNNOptions(filters: [4, 6], kernel: 3, hidden: [8]),
                                 input: ImageShape(channels: 1, height: 8, width: 8), classes: 3)
        try checkModelGradients(Model(spec: spec), batch: 3)
    }

    func testTinyVGGGradients() throws {
        let spec = ModelSpec.vgg(VGGOptions(groups: [[4], [6, 6]], head: .paper, hidden: 8),
                                 input: ImageShape(channels: 2, height: 4, width: 4), classes: 3)
        try checkModelGradients(Model(spec: spec), batch: 4)
    }

    /// The frozen prefix (stem + layer1): no gradient written to it, its BN in inference mode (running
    /// statistics untouched by a training forward), no input gradient for the first trainable conv
    /// (layer2.0.conv1), and the trainable part still matches finite differences.
    func testFrozenPrefix() throws {
        let recorder = RecordingBackend(CPUBackend(threads: 2))
        let model = try Model(spec: tinyResNet(.a))
        model.freezeStages(upTo: 2)
        XCTAssertEqual(model.frozenBlockCount, 2)
        try model.prepare(on: recorder, maxBatch: 3)
        model.initialize(seed: 3)
        let frozen = model.parameters.filter(\.isFrozen)
        XCTAssertEqual(frozen.map(\.name), ["conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight",
                                            "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.conv2.weight",
                                            "layer1.0.bn2.weight", "layer1.0.bn2.bias"])
        for p in model.parameters { recorder.fill(p.grad, value: 12345) }
        let bn1 = model.buffers.first { $0.name == "layer1.0.bn1.running_mean" }!
        let meanBefore = try recorder.download(bn1.value)

        recorder.reset()
        let x = try recorder.tensor(randomValues(3 * 3 * 64, seed: 4), shape: [3, 3, 8, 8])
        let logits = model.forward(x, mode: .training)
        let dLogits = try recorder.tensor(randomValues(15, seed: 5), shape: [3, 5])
        XCTAssertNil(model.backward(dLogits))

        XCTAssertEqual(try recorder.download(bn1.value), meanBefore, "frozen BN running stats changed")
        for p in model.parameters {
            let g = try recorder.download(p.grad)
            if p.isFrozen {
                XCTAssertTrue(g.allSatisfy { $0 == 12345 }, "\(p.name): frozen gradient written")
                XCTAssertEqual(recorder.calls("conv2dBackwardFilter", touching: p.grad), 0, p.name)
                XCTAssertEqual(recorder.calls("conv2dBackwardData", touching: p.value), 0, "\(p.name): dx through frozen conv")
                // Fused with the ReLU after it or not (LayerFusion).
                for kernel in ["batchNormBackward", "batchNormReLUBackward"] {
                    XCTAssertEqual(recorder.calls(kernel, touching: p.value), 0, "\(p.name): \(kernel)")
                }
                for kernel in ["batchNormForwardTraining", "batchNormReLUForwardTraining", "batchNormAddReLUForwardTraining"] {
                    XCTAssertEqual(recorder.calls(kernel, touching: p.value), 0, "\(p.name): BN in training mode (\(kernel))")
                }
            } else {
                XCTAssertFalse(g.contains(12345), "\(p.name): trainable gradient not written")
            }
        }
        let first = model.parameter(named: "layer2.0.conv1.weight")!
        XCTAssertEqual(recorder.calls("conv2dBackwardFilter", touching: first.grad), 1)
        XCTAssertEqual(recorder.calls("conv2dBackwardData", touching: first.value), 0, "first trainable layer computed dx")
        // Input gradients only above it: layer2.0.conv2, layer3.0.conv1, layer3.0.conv2.
        XCTAssertEqual(recorder.count("conv2dBackwardData"), 3)
        XCTAssertEqual(recorder.count("shortcutPadBackward"), 1, "layer3.0 only")
        _ = logits

        // The trainable part against finite differences (frozen BN stays in inference mode there).
        try checkModelGradients(model, batch: 3, checkInput: false, randomizeParameters: false)
    }

    /// After the first step, steps at the prepared batch, a smaller last batch and an evaluation
    /// pass allocate nothing, and the logits live in the same buffer.
    func testSteadyStateStepAllocatesNothing() throws {
        let recorder = RecordingBackend(CPUBackend(threads: 2))
        let model = try Model(spec: tinyResNet(.b))
        try model.prepare(on: recorder, maxBatch: 4)
        model.initialize(seed: 1)
        let x = try recorder.tensor(randomValues(4 * 192, seed: 2), shape: [4, 3, 8, 8])
        let dLogits = try recorder.tensor(randomValues(20, seed: 3), shape: [4, 5])
        let first = model.forward(x, mode: .training)
        model.backward(dLogits)
        recorder.reset()
        for n in [4, 3, 4] {
            let logits = model.forward(x.slice(0..<n), mode: .training)
            XCTAssertTrue(logits.storage === first.storage && logits.shape == [n, 5])
            model.backward(dLogits.slice(0..<n))
        }
        _ = model.forward(x.slice(0..<2), mode: .inference)
        XCTAssertEqual(recorder.allocations, 0)
    }

    /// Evaluation results do not depend on the batch an image is in.
    func testInferenceIsPerImage() throws {
        let backend = CPUBackend(threads: 2)
        let model = try Model(spec: tinyResNet(.a))
        try model.prepare(on: backend, maxBatch: 3)
        model.initialize(seed: 1)
        let x = try backend.tensor(randomValues(3 * 192, seed: 2), shape: [3, 3, 8, 8])
        _ = model.forward(x, mode: .training)   // move the running statistics off their initial values
        let all = try backend.download(model.forward(x, mode: .inference))
        let one = try backend.download(model.forward(x.slice(1..<2), mode: .inference))
        for (a, b) in zip(all[5..<10], one) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    /// Initial values depend on the seed and the tensor name only: the same tensor of a deeper
    /// model starts equal. He-normal std sqrt(2 / fan-in); BN 1, 0; running stats 0, 1.
    func testInitializationPerName() throws {
        let backend = CPUBackend(threads: 2)
        let small = try Model(spec: .resnet(depth: 20))
        let deep = try Model(spec: .resnet(depth: 32))
        for m in [small, deep] {
            try m.prepare(on: backend, maxBatch: 1)
            m.initialize(seed: 42)
        }
        for name in ["conv1.weight", "layer1.0.conv1.weight", "layer3.2.conv2.weight", "fc.weight"] {
            XCTAssertEqual(try backend.download(small.parameter(named: name)!.value),
                           try backend.download(deep.parameter(named: name)!.value), name)
        }
        let w = try backend.download(small.parameter(named: "layer3.1.conv2.weight")!.value)   // fan-in 576
        let std = (w.reduce(0) { $0 + Double($1 * $1) } / Double(w.count)).squareRoot()
        XCTAssertEqual(std, (2.0 / 576).squareRoot(), accuracy: 0.05 * (2.0 / 576).squareRoot())
        XCTAssertNotEqual(try backend.download(small.parameter(named: "layer1.0.conv1.weight")!.value),
                          try backend.download(small.parameter(named: "layer1.0.conv2.weight")!.value))
        XCTAssertTrue(try backend.download(small.parameter(named: "layer2.1.bn1.weight")!.value).allSatisfy { $0 == 1 })
        XCTAssertTrue(try backend.download(small.parameter(named: "fc.bias")!.value).allSatisfy { $0 == 0 })
        let rv = small.buffers.first { $0.name == "layer2.1.bn1.running_var" }!
        XCTAssertTrue(try backend.download(rv.value).allSatisfy { $0 == 1 })
        let other = try Model(spec: .resnet(depth: 20))
        try other.prepare(on: backend, maxBatch: 1)
        other.initialize(seed: 43)
        XCTAssertNotEqual(try backend.download(other.parameter(named: "conv1.weight")!.value),
                          try backend.download(small.parameter(named: "conv1.weight")!.value))
    }

    /// A few SGD steps on one batch through the Optimizer lower the loss.
    func testSGDStepsLowerTheLoss() throws {
        let backend = CPUBackend(threads: 2)
        let model = try Model(spec: tinyResNet(.a))
        try model.prepare(on: backend, maxBatch: 8)
        model.initialize(seed: 7)
        let x = try backend.tensor(randomValues(8 * 192, seed: 8), shape: [8, 3, 8, 8])
        let labels = try backend.tensor([Float]([0, 1, 2, 3, 4, 0, 1, 2]), shape: [8])
        let losses = try backend.allocate([8])
        let dLogits = try backend.allocate([8, 5])
        let optimizer = Optimizer(OptimizerConfig(kind: .sgd, learningRate: 0.1, momentum: 0.9), backend: backend)
        var history: [Float] = []
        for _ in 0..<15 {
            let logits = model.forward(x, mode: .training)
            backend.softmaxCrossEntropy(logits: logits, labels: labels, losses: losses, gradLogits: dLogits, gradScale: 1 / 8)
            history.append(try backend.sum(losses) / 8)
            model.backward(dLogits)
            try optimizer.step(model.trainableTensors, learningRate: 0.1)
        }
        XCTAssertLessThan(history.last!, 0.5 * history.first!, "\(history)")
    }

    // MARK: Harness

    /// Mean softmax cross-entropy over the batch (Double, from the float32 logits) against central
    /// differences for `samples` entries of every trainable parameter tensor (and of the input),
    /// each labelled with the tensor name. Pass: |a - f| <= 3e-4 + 3e-2 |f| for the central, forward
    /// or backward difference at any of h = 1e-3, 1e-4, 1e-2 (a kink lies on one side of the entry;
    /// the one-sided difference on the other side is smooth). One step is not enough with ReLU after batch norm over
    /// 12-48 values per channel: a 1e-3 perturbation of an early tensor moves some ReLU input
    /// across 0 almost every time (see LayerGradientTests), while at 1e-4 float32 rounding of the
    /// loss (~1e-7) over 2h is ~5e-4, too coarse for the smallest gradients alone.
    func checkModelGradients(_ model: Model, batch n: Int, samples: Int = 4, checkInput: Bool = true,
                             randomizeParameters: Bool = true,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let backend: Backend
        if let b = model.backend {
            backend = b
        } else {
            backend = CPUBackend(threads: 2)
            try model.prepare(on: backend, maxBatch: n)
            model.initialize(seed: 11)
        }
        if randomizeParameters {
            // Move BN away from the identity so gamma and beta matter in every direction.
            for (k, p) in model.parameters.enumerated() where p.shape.count == 1 {
                let v = randomValues(p.count, seed: 300 + UInt64(k), std: 0.2)
                backend.upload(p.name.hasSuffix("bias") ? v : v.map { 1 + $0 }, to: p.value)
            }
        }
        let k = model.outputShape[0]
        let xCount = n * model.inputShape.reduce(1, *)
        var xHost = randomValues(xCount, seed: 21)
        let labels = (0..<n).map { ($0 * 2 + 1) % k }
        let x = try backend.allocate([n] + model.inputShape)

        func loss() throws -> (Double, [Double]) {
            backend.upload(xHost, to: x)
            let z = try backend.download(model.forward(x, mode: .training))
            var total = 0.0
            var grad = [Double](repeating: 0, count: n * k)
            for i in 0..<n {
                let row = z[i * k..<(i + 1) * k].map(Double.init)
                let m = row.max()!
                let e = row.map { _exp($0 - m) }
                let s = e.reduce(0, +)
                total += _log(s) + m - row[labels[i]]
                for j in 0..<k { grad[i * k + j] = (e[j] / s - (j == labels[i] ? 1 : 0)) / Double(n) }
            }
            return (total / Double(n), grad)
        }

        let (_, g) = try loss()
        let dLogits = try backend.tensor(g.map { Float($0) }, shape: [n, k])
        let dx = model.backward(dLogits, computeInputGradient: checkInput)
        let grads = try model.trainableParameters.map { try backend.download($0.grad) }

        func check(_ label: String, _ i: Int, analytic a: Float, perturb: (Float) throws -> Void) throws {
            var tried: [String] = []
            let base = try loss().0
            for h: Float in [1e-3, 1e-4, 1e-2] {
                try perturb(h)
                let plus = try loss().0
                try perturb(-h)
                let minus = try loss().0
                try perturb(0)
                let differences = [(plus - minus) / (2 * Double(h)), (plus - base) / Double(h), (base - minus) / Double(h)]
                if differences.contains(where: { abs(Double(a) - $0) <= 3e-4 + 3e-2 * abs($0) }) { return }
                tried.append("h \(h): \(differences)")
            }
            XCTFail("\(label)[\(i)]: analytic \(a), numeric central/forward/backward \(tried.joined(separator: "; "))",
                    file: file, line: line)
        }

        if checkInput, let dx {
            let dxHost = try backend.download(dx)
            for i in sampleIndices(xCount, samples) {
                let saved = xHost[i]
                try check("input", i, analytic: dxHost[i]) { xHost[i] = saved + $0 }
            }
        }
        for (p, grad) in zip(model.trainableParameters, grads) {
            var values = try backend.download(p.value)
            for i in sampleIndices(p.count, samples) {
                let saved = values[i]
                try check(p.name, i, analytic: grad[i]) { d in
                    values[i] = saved + d
                    backend.upload(values, to: p.value)
                }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
private func _exp(_ x: Double) -> Double { Glibc.exp(x) }
private func _log(_ x: Double) -> Double { Glibc.log(x) }
#endif
