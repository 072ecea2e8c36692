// Device against device: every kernel runs on the backend under test and on a reference backend
// (the CPU) with the same inputs, and the outputs are compared with `atol + rtol*|reference|`.
// This complements the float64 checks of KernelChecks: it catches a GPU kernel that is "close to
// the math" but not what the CPU computes (Philox streams, crop offsets, running statistics),
// and it ends with a few SGD steps of a small conv net built from raw kernels.

extension KernelChecks {
    /// Checks comparing a backend with `reference` (normally `CPUBackend()`), kernel by kernel.
    ///
    /// ```
    /// let cpu = CPUBackend()
    /// for check in KernelChecks.crossDevice(reference: cpu) { try check.run(gpu) }
    /// ```
    public static func crossDevice(reference: Backend) -> [KernelCheck] {
        let r = reference
        return [
            KernelCheck("cross-device gemm") { try CrossDevice.gemm($0, r) },
            KernelCheck("cross-device conv2d") { try CrossDevice.convolution($0, r) },
            KernelCheck("cross-device batchnorm") { try CrossDevice.batchNorm($0, r) },
            KernelCheck("cross-device batchnorm relu") { try CrossDevice.batchNormReLU($0, r) },
            KernelCheck("cross-device pool, relu") { try CrossDevice.poolingAndRelu($0, r) },
            KernelCheck("cross-device softmax-ce") { try CrossDevice.softmax($0, r) },
            KernelCheck("cross-device elementwise") { try CrossDevice.elementwise($0, r) },
            KernelCheck("cross-device random") { try CrossDevice.random($0, r) },
            KernelCheck("cross-device optimizers") { try CrossDevice.optimizers($0, r) },
            KernelCheck("cross-device augment, shortcut") { try CrossDevice.augmentAndShortcut($0, r) },
            KernelCheck("cross-device training steps") { try CrossDevice.training($0, r) },
        ] + CUDAPrecisionChecks.checks   // bf16 / fp16 backends only (CUDAPrecisionChecks.swift)
    }
}

enum CrossDevice {
    /// Bit-identical: integer maps, Philox bits, copies.
    static let exact = Tolerance(atol: 1e-30, rtol: 0)
    /// A few float32 roundings apart (different summation order, expf vs glibc).
    static let float = Tolerance(atol: 1e-6, rtol: 1e-5)
    /// GEMM and convolutions: TF32 tensor cores (10-bit mantissa) on the GPU by default; sums of
    /// up to a few hundred products of values in [-1, 1].
    static let tf32 = Tolerance(atol: 2e-2, rtol: 1e-2)
    /// Reductions over a batch (batch norm statistics, bias gradients): float32 partial sums.
    static let reduction = Tolerance(atol: 1e-4, rtol: 1e-4)

    /// One input: values (exactly representable in float32) and shape.
    typealias Input = (values: [Double], shape: [Int])

    /// Runs `op` on both backends over the same inputs and fresh outputs (`outputs` shapes; each
    /// output starts as `initial` if given, else zero) and compares every output.
    /// `specials`: NaN and infinities match where both backends have the same one (else any NaN fails).
    static func pair(_ name: String, _ b: Backend, _ r: Backend, inputs: [Input], outputs: [[Int]],
                     initial: [[Double]?]? = nil, tolerance: Tolerance, specials: Bool = false,
                     _ op: (Backend, [Tensor], [Tensor]) throws -> Void) throws -> [CheckResult] {
        func run(_ backend: Backend) throws -> [[Float]] {
            let ins = try inputs.map { try backend.tensor($0.values, shape: $0.shape) }
            var outs: [Tensor] = []
            for (k, shape) in outputs.enumerated() {
                if let values = initial?[k] ?? nil { outs.append(try backend.tensor(values, shape: shape)) }
                else { outs.append(try backend.allocate(shape)) }
            }
            try op(backend, ins, outs)
            return try outs.map { try backend.download($0) }
        }
        let actual = try run(b), expected = try run(r)
        return zip(actual, expected).enumerated().map { k, pair in
            let finite: ([Float]) -> [Double] = { v in
                let d = v.map(Double.init)
                return specials ? LayerChecks.specialsAsFinite(d) : d
            }
            return compare(outputs.count == 1 ? name : "\(name) output \(k)", actual: finite(pair.0).map(Float.init),
                           expected: finite(pair.1), tolerance: tolerance)
        }
    }

    static func input(_ shape: [Int], seed: UInt64, low: Double = -1, high: Double = 1) -> Input {
        (checkInput(shape.reduce(1, *), seed: seed, low: low, high: high), shape)
    }

    static func gemm(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let (m, n, k) = (33, 17, 129)
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            out += try pair("gemm \(ta ? "T" : "N")\(tb ? "T" : "N") \(m)x\(n)x\(k) alpha 0.5 beta -1", b, r,
                            inputs: [input(ta ? [k, m] : [m, k], seed: 1), input(tb ? [n, k] : [k, n], seed: 2)],
                            outputs: [[m, n]], initial: [input([m, n], seed: 3).values], tolerance: tf32) { be, t, o in
                be.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5, a: t[0], b: t[1], beta: -1, c: o[0])
            }
        }
        return out
    }

    static func convolution(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let shapes = [
            ConvGeometry(batch: 4, inChannels: 3, height: 9, width: 9, outChannels: 8, kernel: 3, stride: 1, padding: 1),
            ConvGeometry(batch: 3, inChannels: 8, height: 8, width: 8, outChannels: 16, kernel: 3, stride: 2, padding: 1),
            ConvGeometry(batch: 2, inChannels: 16, height: 7, width: 7, outChannels: 8, kernel: 1, stride: 2, padding: 0),
        ]
        for (s, g) in shapes.enumerated() {
            let seed = UInt64(100 + 10 * s)
            let x = input(g.inputShape, seed: seed), w = input(g.weightShape, seed: seed + 1)
            let bias = input([g.outChannels], seed: seed + 2), dy = input(g.outputShape, seed: seed + 3)
            out += try pair("\(g) forward+bias", b, r, inputs: [x, w, bias], outputs: [g.outputShape], tolerance: tf32) {
                be, t, o in be.conv2dForward(g, input: t[0], weight: t[1], bias: t[2], output: o[0])
            }
            out += try pair("\(g) backward-data", b, r, inputs: [dy, w], outputs: [g.inputShape], tolerance: tf32) {
                be, t, o in be.conv2dBackwardData(g, gradOutput: t[0], weight: t[1], gradInput: o[0])
            }
            out += try pair("\(g) backward-filter accumulate", b, r, inputs: [x, dy], outputs: [g.weightShape],
                            initial: [input(g.weightShape, seed: seed + 4).values], tolerance: tf32) {
                be, t, o in be.conv2dBackwardFilter(g, input: t[0], gradOutput: t[1], gradWeight: o[0], mode: .accumulate)
            }
            out += try pair("\(g) bias backward", b, r, inputs: [dy], outputs: [[g.outChannels]], tolerance: reduction) {
                be, t, o in be.biasBackward(gradOutput: t[0], gradBias: o[0], mode: .overwrite)
            }
        }
        out += try pair("addBias (N, C)", b, r, inputs: [input([5, 7], seed: 150), input([7], seed: 151)],
                        outputs: [[5, 7]], initial: [input([5, 7], seed: 152).values], tolerance: float) {
            be, t, o in be.addBias(o[0], bias: t[1])
        }
        return out
    }

    static func batchNorm(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        for (s, shape) in [[8, 6, 5, 5], [16, 10]].enumerated() {
            let c = shape[1], seed = UInt64(200 + 10 * s)
            let x = input(shape, seed: seed, low: -1, high: 3), gamma = input([c], seed: seed + 1, low: 0.5, high: 1.5)
            let beta = input([c], seed: seed + 2), dy = input(shape, seed: seed + 3)
            let runMean = input([c], seed: seed + 4).values, runVar = input([c], seed: seed + 5, low: 0.5, high: 2).values
            let name = "batchnorm \(shape)"
            // y, running mean, running var (unbiased), saved mean, saved 1/std.
            out += try pair("\(name) training", b, r, inputs: [x, gamma, beta],
                            outputs: [shape, [c], [c], [c], [c]], initial: [nil, runMean, runVar, nil, nil],
                            tolerance: reduction) { be, t, o in
                be.batchNormForwardTraining(input: t[0], output: o[0], gamma: t[1], beta: t[2], runningMean: o[1],
                                            runningVar: o[2], saveMean: o[3], saveInvStd: o[4], momentum: 0.1, epsilon: 1e-5)
            }
            out += try pair("\(name) inference", b, r, inputs: [x, gamma, beta, (runMean, [c]), (runVar, [c])],
                            outputs: [shape], tolerance: reduction) { be, t, o in
                be.batchNormForwardInference(input: t[0], output: o[0], gamma: t[1], beta: t[2], runningMean: t[3],
                                             runningVar: t[4], epsilon: 1e-5)
            }
            // Backward from the statistics each backend's own forward saved.
            out += try pair("\(name) backward accumulate", b, r, inputs: [x, gamma, beta, dy],
                            outputs: [shape, [c], [c]], initial: [nil, input([c], seed: seed + 6).values, input([c], seed: seed + 7).values],
                            tolerance: reduction) { be, t, o in
                let y = try be.allocate(shape), rm = try be.allocate([c]), rv = try be.allocate([c])
                let sm = try be.allocate([c]), si = try be.allocate([c])
                be.batchNormForwardTraining(input: t[0], output: y, gamma: t[1], beta: t[2], runningMean: rm,
                                            runningVar: rv, saveMean: sm, saveInvStd: si, momentum: 0.1, epsilon: 1e-5)
                be.batchNormBackward(input: t[0], gradOutput: t[3], gamma: t[1], saveMean: sm, saveInvStd: si,
                                     gradInput: o[0], gradGamma: o[1], gradBeta: o[2], mode: .accumulate, epsilon: 1e-5)
            }
        }
        return out
    }

    /// The fused batch norm + ReLU, each backend's backward from its own fused forward (its
    /// statistics and its ReLU mask).
    static func batchNormReLU(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        for (s, shape) in [[8, 6, 5, 5], [16, 10], [4, 40, 3, 3]].enumerated() {
            let c = shape[1], seed = UInt64(250 + 10 * s)
            let x = input(shape, seed: seed, low: -1, high: 3), gamma = input([c], seed: seed + 1, low: 0.5, high: 1.5)
            let beta = input([c], seed: seed + 2, low: -0.5, high: 0.5), dy = input(shape, seed: seed + 3)
            let runMean = input([c], seed: seed + 4).values, runVar = input([c], seed: seed + 5, low: 0.5, high: 2).values
            let name = "batchnorm+relu \(shape)"
            out += try pair("\(name) training", b, r, inputs: [x, gamma, beta],
                            outputs: [shape, [c], [c], [c], [c]], initial: [nil, runMean, runVar, nil, nil],
                            tolerance: reduction) { be, t, o in
                be.batchNormReLUForwardTraining(input: t[0], output: o[0], gamma: t[1], beta: t[2], runningMean: o[1],
                                                runningVar: o[2], saveMean: o[3], saveInvStd: o[4], momentum: 0.1, epsilon: 1e-5)
            }
            out += try pair("\(name) inference", b, r, inputs: [x, gamma, beta, (runMean, [c]), (runVar, [c])],
                            outputs: [shape], tolerance: reduction) { be, t, o in
                be.batchNormReLUForwardInference(input: t[0], output: o[0], gamma: t[1], beta: t[2], runningMean: t[3],
                                                 runningVar: t[4], epsilon: 1e-5)
            }
            let residual = input(shape, seed: seed + 8)
            out += try pair("\(name) + residual training", b, r, inputs: [x, gamma, beta, residual],
                            outputs: [shape, [c], [c], [c], [c]], initial: [nil, runMean, runVar, nil, nil],
                            tolerance: reduction) { be, t, o in
                be.batchNormAddReLUForwardTraining(input: t[0], residual: t[3], output: o[0], gamma: t[1], beta: t[2],
                                                   runningMean: o[1], runningVar: o[2], saveMean: o[3], saveInvStd: o[4],
                                                   momentum: 0.1, epsilon: 1e-5)
            }
            out += try pair("\(name) + residual inference", b, r, inputs: [x, gamma, beta, (runMean, [c]), (runVar, [c]), residual],
                            outputs: [shape], tolerance: reduction) { be, t, o in
                be.batchNormAddReLUForwardInference(input: t[0], residual: t[5], output: o[0], gamma: t[1], beta: t[2],
                                                    runningMean: t[3], runningVar: t[4], epsilon: 1e-5)
            }
            out += try pair("\(name) backward accumulate", b, r, inputs: [x, gamma, beta, dy],
                            outputs: [shape, [c], [c]], initial: [nil, input([c], seed: seed + 6).values, input([c], seed: seed + 7).values],
                            tolerance: reduction) { be, t, o in
                let y = try be.allocate(shape), rm = try be.allocate([c]), rv = try be.allocate([c])
                let sm = try be.allocate([c]), si = try be.allocate([c])
                be.batchNormReLUForwardTraining(input: t[0], output: y, gamma: t[1], beta: t[2], runningMean: rm,
                                                runningVar: rv, saveMean: sm, saveInvStd: si, momentum: 0.1, epsilon: 1e-5)
                be.batchNormReLUBackward(input: t[0], output: y, gradOutput: t[3], gamma: t[1], beta: t[2], saveMean: sm, saveInvStd: si,
                                         gradInput: o[0], gradGamma: o[1], gradBeta: o[2], mode: .accumulate, epsilon: 1e-5)
            }
        }
        return out
    }

    static func poolingAndRelu(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let x = input([3, 4, 9, 9], seed: 300), dyRelu = input([3, 4, 9, 9], seed: 301)
        out += try pair("relu forward, backward", b, r, inputs: [x, dyRelu], outputs: [x.shape, x.shape],
                        tolerance: exact) { be, t, o in
            be.reluForward(t[0], output: o[0])
            be.reluBackward(output: o[0], gradOutput: t[1], gradInput: o[1])
        }
        // NaN scattered through x: the first NaN of a window wins and takes its dy, on both.
        let withNaN: Input = (x.values.enumerated().map { $0.offset % 13 == 4 ? .nan : $0.element }, x.shape)
        for g in [PoolGeometry(batch: 3, channels: 4, height: 9, width: 9, window: 2, stride: 2),
                  PoolGeometry(batch: 3, channels: 4, height: 9, width: 9, window: 3, stride: 2, padding: 1),
                  PoolGeometry(batch: 3, channels: 4, height: 9, width: 9, window: 2, stride: 2, padding: 1)] {
            let dy = input(g.outputShape, seed: 302)
            out += try pair("maxpool \(g.window)/\(g.stride) pad \(g.padding) with NaN fwd, bwd", b, r, inputs: [withNaN, dy],
                            outputs: [g.outputShape, g.inputShape], tolerance: float, specials: true) { be, t, o in
                let positions = try be.allocateMaxPoolWorkspace(g)
                be.maxPoolForward(g, input: t[0], output: o[0], workspace: positions)
                be.maxPoolBackward(g, input: t[0], output: o[0], workspace: positions, gradOutput: t[1], gradInput: o[1])
            }
            out += try pair("maxpool \(g.window)/\(g.stride) pad \(g.padding) fwd, bwd", b, r, inputs: [x, dy],
                            outputs: [g.outputShape, g.inputShape], tolerance: float) { be, t, o in
                let positions = try be.allocateMaxPoolWorkspace(g)
                be.maxPoolForward(g, input: t[0], output: o[0], workspace: positions)
                be.maxPoolBackward(g, input: t[0], output: o[0], workspace: positions, gradOutput: t[1], gradInput: o[1])
            }
            out += try pair("avgpool \(g.window)/\(g.stride) pad \(g.padding) fwd, bwd", b, r, inputs: [x, dy],
                            outputs: [g.outputShape, g.inputShape], tolerance: float) { be, t, o in
                be.avgPoolForward(g, input: t[0], output: o[0])
                be.avgPoolBackward(g, gradOutput: t[1], gradInput: o[1])
            }
        }
        out += try pair("global avgpool fwd, bwd", b, r, inputs: [x, input([3, 4], seed: 303)],
                        outputs: [[3, 4], x.shape], tolerance: float) { be, t, o in
            be.globalAvgPoolForward(input: t[0], output: o[0])
            be.globalAvgPoolBackward(gradOutput: t[1], gradInput: o[1])
        }
        return out
    }

    static func softmax(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        let (n, k) = (37, 10)
        let labels = (0..<n).map { Double(($0 * 7) % k) }
        return try pair("softmax-ce \(n)x\(k)", b, r, inputs: [input([n, k], seed: 400, low: -8, high: 8), (labels, [n])],
                        outputs: [[n], [n, k]], tolerance: float) { be, t, o in
            be.softmaxCrossEntropy(logits: t[0], labels: t[1], losses: o[0], gradLogits: o[1], gradScale: 1 / Float(n))
        }
    }

    static func elementwise(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        let n = 70_001
        var out = try pair("fill, add, scale, axpy \(n)", b, r, inputs: [input([n], seed: 500), input([n], seed: 501)],
                           outputs: [[n], [n], [n]], tolerance: float) { be, t, o in
            be.fill(o[0], value: 0.25)
            be.add(t[0], t[1], output: o[1])
            be.scale(t[0], by: -1.5, output: o[2])
            be.axpy(alpha: 0.75, x: t[1], y: o[2])
        }
        out += try pair("sum, argmax", b, r, inputs: [input([n], seed: 502), input([100, 33], seed: 503)],
                        outputs: [[1], [100]], tolerance: float) { be, t, o in
            be.fill(o[0], value: try be.sum(t[0]))
            be.argmax(rows: t[1], output: o[1])
        }
        // Per-batch slots: losses of 128 samples, and a correct count against labels 0..<33.
        let labels = (0..<100).map { Float($0 % 33) }
        out += try pair("sum into slot, countCorrect into slot", b, r,
                        inputs: [input([128], seed: 504), input([100, 33], seed: 505)],
                        outputs: [[4], [4]], tolerance: float) { be, t, o in
            be.fill(o[0], value: 0)
            be.fill(o[1], value: 0)
            be.sum(t[0], into: o[0], slot: 2)
            be.countCorrect(logits: t[1], labels: try be.tensor(labels, shape: [100]), into: o[1], slot: 1)
        }
        return out
    }

    static func random(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        let n = 10_007, seed: UInt64 = 0xDEAD_BEEF_1234, counter: UInt64 = 77
        var out = try pair("dropout p=0.3 (mask, y, dx)", b, r, inputs: [input([n], seed: 600), input([n], seed: 601)],
                           outputs: [[n], [n], [n]], tolerance: exact) { be, t, o in
            be.dropoutForward(t[0], output: o[1], mask: o[0], probability: 0.3, seed: seed, counter: counter)
            be.dropoutBackward(gradOutput: t[1], mask: o[0], gradInput: o[2])
        }
        out += try pair("fillUniform", b, r, inputs: [], outputs: [[n]], tolerance: exact) { be, _, o in
            be.fillUniform(o[0], low: -2, high: 3, seed: seed, counter: counter)
        }
        // Box-Muller in double: GPU and glibc log/sin/cos may differ in the last double bit.
        out += try pair("fillNormal", b, r, inputs: [], outputs: [[n]], tolerance: Tolerance(atol: 1e-6, rtol: 1e-6)) { be, _, o in
            be.fillNormal(o[0], mean: 0.5, std: 2, seed: seed, counter: counter)
        }
        return out
    }

    static func optimizers(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        let n = 4099, shape = [n]
        let p = input(shape, seed: 700), g = input(shape, seed: 701), s1 = input(shape, seed: 702, low: 0, high: 1)
        let s2 = input(shape, seed: 703, low: 0, high: 1)
        var out: [CheckResult] = []
        for nesterov in [false, true] {
            out += try pair("sgd momentum nesterov=\(nesterov)", b, r, inputs: [g], outputs: [shape, shape],
                            initial: [p.values, s1.values], tolerance: float) { be, t, o in
                for _ in 0..<3 {
                    be.sgdUpdate(parameter: o[0], gradient: t[0], velocity: o[1], learningRate: 0.1, momentum: 0.9,
                                 weightDecay: 5e-4, nesterov: nesterov)
                }
            }
        }
        out += try pair("rmsprop momentum", b, r, inputs: [g], outputs: [shape, shape, shape],
                        initial: [p.values, s2.values, s1.values], tolerance: float) { be, t, o in
            be.rmspropUpdate(parameter: o[0], gradient: t[0], squareAverage: o[1], momentumBuffer: o[2],
                             learningRate: 0.01, alpha: 0.99, epsilon: 1e-8, momentum: 0.9, weightDecay: 1e-4)
        }
        for decoupled in [false, true] {
            out += try pair("adam decoupled=\(decoupled)", b, r, inputs: [g], outputs: [shape, shape, shape],
                            initial: [p.values, s1.values, s2.values], tolerance: float) { be, t, o in
                for step in 1...3 {
                    be.adamUpdate(parameter: o[0], gradient: t[0], firstMoment: o[1], secondMoment: o[2],
                                  learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01,
                                  decoupled: decoupled, step: step)
                }
            }
        }
        return out
    }

    static func augmentAndShortcut(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        let x = input([6, 3, 8, 8], seed: 800)
        var out = try pair("randomCropFlip pad 4", b, r, inputs: [x], outputs: [x.shape], tolerance: exact) { be, t, o in
            be.randomCropFlip(t[0], output: o[0], padding: 4, allowFlip: true, seed: 12345, counter: 6)
        }
        out += try pair("normalizeChannels", b, r, inputs: [x], outputs: [x.shape], tolerance: float) { be, t, o in
            be.normalizeChannels(t[0], output: o[0], mean: [0.1, -0.2, 0.3], std: [0.5, 1.5, 0.25])
        }
        out += try pair("shortcut stride 2 fwd, bwd", b, r, inputs: [x, input([6, 8, 4, 4], seed: 801)],
                        outputs: [[6, 8, 4, 4], x.shape], tolerance: exact) { be, t, o in
            be.shortcutPadForward(t[0], output: o[0], stride: 2, channelOffset: 2)
            be.shortcutPadBackward(gradOutput: t[1], gradInput: o[1], stride: 2, channelOffset: 2)
        }
        return out
    }

    /// Three SGD steps of conv(2->4, 3x3 pad 1, bias) -> batch norm -> ReLU -> max pool 2 -> linear
    /// (64 -> 10, bias) -> softmax cross-entropy, parameters initialised by each backend's own
    /// Philox fills. Compares the per-step losses and every parameter after the last step.
    static func training(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        let batch = 8, classes = 10
        let g = ConvGeometry(batch: batch, inChannels: 2, height: 8, width: 8, outChannels: 4, kernel: 3, stride: 1, padding: 1)
        let pool = PoolGeometry(batch: batch, channels: 4, height: 8, width: 8, window: 2, stride: 2)
        let features = 4 * 4 * 4
        let x = input(g.inputShape, seed: 900)
        let labels = (0..<batch).map { Double($0 % classes) }
        let parameterShapes = [g.weightShape, [4], [4], [4], [classes, features], [classes]]

        func run(_ be: Backend) throws -> [[Float]] {
            let xt = try be.tensor(x.values, shape: x.shape), yt = try be.tensor(labels, shape: [batch])
            let params = try parameterShapes.map { try be.allocate($0) }
            let grads = try parameterShapes.map { try be.allocate($0) }
            let vels = try parameterShapes.map { try be.allocate($0) }
            be.fillHeNormal(params[0], fanIn: 18, seed: 42, counter: 0)
            be.fill(params[2], value: 1)   // gamma; conv bias and beta stay 0
            be.fillUniform(params[4], low: -0.125, high: 0.125, seed: 42, counter: 1)
            let conv = try be.allocate(g.outputShape), bn = try be.allocate(g.outputShape)
            let act = try be.allocate(g.outputShape), pooled = try be.allocate(pool.outputShape)
            let runMean = try be.allocate([4]), runVar = try be.allocate([4])
            let saveMean = try be.allocate([4]), saveInvStd = try be.allocate([4])
            let logits = try be.allocate([batch, classes]), losses = try be.allocate([batch])
            let dLogits = try be.allocate([batch, classes]), dPooled = try be.allocate(pool.outputShape)
            let dAct = try be.allocate(g.outputShape), dConv = try be.allocate(g.outputShape)
            // Flatten by logical copies: a backend may store rank-4 tensors in its own order.
            let flat = try be.allocate([batch, features]), dFlat = try be.allocate([batch, features])
            let dx = try be.allocate(g.inputShape)
            let positions = try be.allocateMaxPoolWorkspace(pool)
            be.fill(runVar, value: 1)
            var stepLosses: [Float] = []
            for _ in 0..<3 {
                be.conv2dForward(g, input: xt, weight: params[0], bias: params[1], output: conv)
                be.batchNormForwardTraining(input: conv, output: bn, gamma: params[2], beta: params[3], runningMean: runMean,
                                            runningVar: runVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                            momentum: 0.1, epsilon: 1e-5)
                be.reluForward(bn, output: act)
                be.maxPoolForward(pool, input: act, output: pooled, workspace: positions)
                be.copy(pooled, to: flat)
                be.gemm(transposeA: false, transposeB: true, m: batch, n: classes, k: features, alpha: 1,
                        a: flat, b: params[4], beta: 0, c: logits)
                be.addBias(logits, bias: params[5])
                be.softmaxCrossEntropy(logits: logits, labels: yt, losses: losses, gradLogits: dLogits,
                                       gradScale: 1 / Float(batch))
                stepLosses.append(try be.sum(losses) / Float(batch))
                // Backward, last layer first.
                be.gemm(transposeA: true, transposeB: false, m: classes, n: features, k: batch, alpha: 1,
                        a: dLogits, b: flat, beta: 0, c: grads[4])
                be.biasBackward(gradOutput: dLogits, gradBias: grads[5], mode: .overwrite)
                be.gemm(transposeA: false, transposeB: false, m: batch, n: features, k: classes, alpha: 1,
                        a: dLogits, b: params[4], beta: 0, c: dFlat)
                be.copy(dFlat, to: dPooled)
                be.maxPoolBackward(pool, input: act, output: pooled, workspace: positions, gradOutput: dPooled, gradInput: dAct)
                be.reluBackward(output: act, gradOutput: dAct, gradInput: dAct)
                be.batchNormBackward(input: conv, gradOutput: dAct, gamma: params[2], saveMean: saveMean,
                                     saveInvStd: saveInvStd, gradInput: dConv, gradGamma: grads[2], gradBeta: grads[3],
                                     mode: .overwrite, epsilon: 1e-5)
                be.conv2dBackwardFilter(g, input: xt, gradOutput: dConv, gradWeight: grads[0], mode: .overwrite)
                be.biasBackward(gradOutput: dConv, gradBias: grads[1], mode: .overwrite)
                be.conv2dBackwardData(g, gradOutput: dConv, weight: params[0], gradInput: dx)
                for k in 0..<params.count {
                    be.sgdUpdate(parameter: params[k], gradient: grads[k], velocity: vels[k], learningRate: 0.1,
                                 momentum: 0.9, weightDecay: 5e-4, nesterov: false)
                }
            }
            return [stepLosses] + (try params.map { try be.download($0) }) + [try be.download(runMean), try be.download(runVar)]
        }
        let names = ["losses", "conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias",
                     "bn.running_mean", "bn.running_var"]
        let actual = try run(b), expected = try run(r)
        // TF32 differences in the first steps grow a little through the updates.
        let tolerance = Tolerance(atol: 2e-2, rtol: 2e-2)
        return (0..<names.count).map { k in
            compare("training 3 SGD steps: \(names[k])", actual: actual[k], expected: expected[k].map(Double.init),
                    tolerance: tolerance)
        }
    }
}
