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
            KernelCheck("cross-device relu") { try CrossDevice.relu($0, r) },
            KernelCheck("cross-device pool") { try CrossDevice.pooling($0, r) },
            KernelCheck("cross-device softmax-ce") { try CrossDevice.softmax($0, r) },
            KernelCheck("cross-device elementwise") { try CrossDevice.elementwise($0, r) },
            KernelCheck("cross-device dropout") { try CrossDevice.dropout($0, r) },
            KernelCheck("cross-device random") { try CrossDevice.random($0, r) },
            KernelCheck("cross-device optimizers") { try CrossDevice.optimizers($0, r) },
            KernelCheck("cross-device augment") { try CrossDevice.augmentation($0, r) },
            KernelCheck("cross-device shortcutPad") { try CrossDevice.shortcutPad($0, r) },
            KernelCheck("cross-device training steps") { try CrossDevice.training($0, r) },
        ] + CUDAPrecisionChecks.checks   // bf16 / fp16 backends only (CUDAPrecisionChecks.swift)
    }
}

/// The shared tolerances and the `pair` runner; each family's comparisons extend this in its
/// folder (Kernels/<Family>/<Family>Checks.swift), the training steps below use them all.
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
                return specials ? KernelChecks.specialsAsFinite(d) : d
            }
            return compare(outputs.count == 1 ? name : "\(name) output \(k)", actual: finite(pair.0).map(Float.init),
                           expected: finite(pair.1), tolerance: tolerance)
        }
    }

    static func input(_ shape: [Int], seed: UInt64, low: Double = -1, high: Double = 1) -> Input {
        (checkInput(shape.reduce(1, *), seed: seed, low: low, high: high), shape)
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
