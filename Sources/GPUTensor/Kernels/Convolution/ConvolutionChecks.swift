// The Convolution family's checks: convolution and bias against float64 references (KernelChecks,
// conventions in Verification/KernelCheck.swift) and the comparison with another device (CrossDevice).
//
// Tolerances (float32 kernels vs float64 references, inputs in [-1, 1)):
// - conv forward / backward-data / backward-filter, bias: atol 1e-5, rtol 1e-4 against the direct
//   float64 convolution resp. float64 central finite differences (step 1e-6) of
//   L = dot(reference_forward(x, w), r). L is linear in x and in w, so the finite differences
//   are exact up to float64 rounding (about 1e-9); the allowance is all float32 rounding.

/// The reference: a direct float64 convolution, `y[n, f, p, q] = b[f] + sum x[n, c, p*sh - ph + i, q*sw - pw + j] * w[f, c, i, j]`;
/// with G groups, c runs over output f's block of Cin/G input channels (`w` is (Cout, Cin/G, KH, KW)).
func referenceConvolution(_ g: ConvGeometry, x: [Double], w: [Double], bias: [Double]?) -> [Double] {
    let (c, h, wd, f, r, s) = (g.inChannels, g.height, g.width, g.outChannels, g.kernelH, g.kernelW)
    let (p, q) = (g.outHeight, g.outWidth)
    let (cg, fg) = (c / g.groups, f / g.groups)   // channels per group
    var y = [Double](repeating: 0, count: g.batch * f * p * q)
    for n in 0..<g.batch {
        for o in 0..<f {
            for oh in 0..<p {
                for ow in 0..<q {
                    var acc = bias?[o] ?? 0
                    for k in 0..<cg {
                        let ci = (o / fg) * cg + k
                        for i in 0..<r {
                            let ih = oh * g.strideH - g.padH + i
                            if ih < 0 || ih >= h { continue }
                            for j in 0..<s {
                                let iw = ow * g.strideW - g.padW + j
                                if iw < 0 || iw >= wd { continue }
                                acc += x[((n * c + ci) * h + ih) * wd + iw] * w[((o * cg + k) * r + i) * s + j]
                            }
                        }
                    }
                    y[((n * f + o) * p + oh) * q + ow] = acc
                }
            }
        }
    }
    return y
}

/// The float64 gradients of `referenceConvolution` with respect to x and w for upstream dy, as
/// direct sums (the adjoint of the forward's index map).
func referenceConvolutionBackward(_ g: ConvGeometry, dy: [Double], x: [Double], w: [Double]) -> (dx: [Double], dw: [Double]) {
    let (c, h, wd, f, r, s) = (g.inChannels, g.height, g.width, g.outChannels, g.kernelH, g.kernelW)
    let (p, q) = (g.outHeight, g.outWidth)
    let (cg, fg) = (c / g.groups, f / g.groups)
    var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
    for n in 0..<g.batch {
        for o in 0..<f {
            for oh in 0..<p {
                for ow in 0..<q {
                    let d = dy[((n * f + o) * p + oh) * q + ow]
                    for k in 0..<cg {
                        let ci = (o / fg) * cg + k
                        for i in 0..<r {
                            let ih = oh * g.strideH - g.padH + i
                            guard ih >= 0 && ih < h else { continue }
                            for j in 0..<s {
                                let iw = ow * g.strideW - g.padW + j
                                guard iw >= 0 && iw < wd else { continue }
                                let xi = ((n * c + ci) * h + ih) * wd + iw, wi = ((o * cg + k) * r + i) * s + j
                                dx[xi] += d * w[wi]
                                dw[wi] += d * x[xi]
                            }
                        }
                    }
                }
            }
        }
    }
    return (dx, dw)
}

/// A tensor full of NaN, so a kernel that fails to overwrite its output is caught.
/// (Uploaded rather than `fill`ed, to depend on no other kernel.)
func nanTensor(_ backend: Backend, _ shape: [Int]) throws -> Tensor {
    try backend.tensor([Float](repeating: .nan, count: shape.reduce(1, *)), shape: shape)
}

extension KernelChecks {
    /// Convolution forward / backward-data / backward-filter, bias.
    static var convolutionKernels: [KernelCheck] {
        [
            KernelCheck("conv2d", run: convolutionChecks),
            KernelCheck("conv2d wide", run: wideConvolutionChecks),
            KernelCheck("bias", run: biasChecks),
        ]
    }

    static let convTolerance = Tolerance(atol: 1e-5, rtol: 1e-4)

    /// The shapes the convolution checks cover: odd and non-square sizes, stride 1 and 2,
    /// padding 0, 1, 2, kernels 1x1, 3x3, 5x5 and 3x2, batch 1 and 2, 1 to 24 channels.
    static var convolutionCheckShapes: [ConvGeometry] {
        [ConvGeometry(batch: 2, inChannels: 3, height: 7, width: 7, outChannels: 4, kernel: 3, stride: 1, padding: 1),
         ConvGeometry(batch: 1, inChannels: 2, height: 5, width: 6, outChannels: 3, kernel: 3, stride: 2, padding: 1),
         ConvGeometry(batch: 2, inChannels: 3, height: 5, width: 5, outChannels: 2, kernel: 1),
         ConvGeometry(batch: 2, inChannels: 3, height: 5, width: 5, outChannels: 2, kernel: 1, stride: 2),
         ConvGeometry(batch: 1, inChannels: 2, height: 4, width: 3, outChannels: 2, kernel: 1, stride: 1, padding: 1),
         ConvGeometry(batch: 1, inChannels: 2, height: 7, width: 7, outChannels: 3, kernel: 5, stride: 1, padding: 2),
         ConvGeometry(batch: 1, inChannels: 1, height: 7, width: 7, outChannels: 1, kernel: 3, stride: 1, padding: 0),
         ConvGeometry(batch: 2, inChannels: 1, height: 6, width: 5, outChannels: 2,
                      kernelH: 3, kernelW: 2, strideH: 2, strideW: 1, padH: 1, padW: 0),
         ConvGeometry(batch: 1, inChannels: 4, height: 6, width: 5, outChannels: 2, kernel: 3, stride: 2, padding: 0),
         ConvGeometry(batch: 2, inChannels: 8, height: 6, width: 5, outChannels: 5, kernel: 3, stride: 1, padding: 1),
         ConvGeometry(batch: 1, inChannels: 6, height: 7, width: 7, outChannels: 4, kernel: 3, stride: 2, padding: 1),
         // A 2x2 output with more than a stem's channels: the CPU's forward takes oneDNN's jit
         // kernel there (DNNLConvolutionPlan.prefersJitForward), its backward the usual ones.
         ConvGeometry(batch: 2, inChannels: 24, height: 2, width: 2, outChannels: 16, kernel: 3, stride: 1, padding: 1),
         // Grouped (trial groups: G members' layers as one call): 2 and 3 groups, strides, padding.
         ConvGeometry(batch: 2, inChannels: 6, height: 6, width: 5, outChannels: 4, kernel: 3, stride: 1, padding: 1, groups: 2),
         ConvGeometry(batch: 1, inChannels: 6, height: 7, width: 7, outChannels: 9, kernel: 3, stride: 2, padding: 1, groups: 3),
         ConvGeometry(batch: 2, inChannels: 4, height: 5, width: 5, outChannels: 4, kernel: 1, groups: 4)]
    }

    static func convolutionChecks(_ backend: Backend) throws -> [CheckResult] {
        var results = [CheckResult]()
        for (index, g) in convolutionCheckShapes.enumerated() {
            let seed = UInt64(200 + 10 * index)
            let xCount = g.inputShape.reduce(1, *), wCount = g.weightShape.reduce(1, *)
            let yCount = g.outputShape.reduce(1, *)
            let x = checkInput(xCount, seed: seed), w = checkInput(wCount, seed: seed + 1)
            let bias = index % 2 == 0 ? checkInput(g.outChannels, seed: seed + 2) : nil
            let r = checkInput(yCount, seed: seed + 3)   // upstream gradient dL/dy
            let xt = try backend.tensor(x, shape: g.inputShape)
            let wt = try backend.tensor(w, shape: g.weightShape)
            let bt = try bias.map { try backend.tensor($0, shape: [g.outChannels]) }
            let rt = try backend.tensor(r, shape: g.outputShape)

            let yt = try nanTensor(backend, g.outputShape)
            backend.conv2dForward(g, input: xt, weight: wt, bias: bt, output: yt)
            results.append(compare("conv2d forward\(bias == nil ? "" : " +bias") \(g)", actual: try backend.download(yt),
                                   expected: referenceConvolution(g, x: x, w: w, bias: bias), tolerance: convTolerance))

            let dxt = try nanTensor(backend, g.inputShape)   // backward-data must overwrite
            backend.conv2dBackwardData(g, gradOutput: rt, weight: wt, gradInput: dxt)
            let dxExpected = finiteDifferenceGradient(at: x) { dot(referenceConvolution(g, x: $0, w: w, bias: nil), r) }
            results.append(compare("conv2d backward-data \(g)", actual: try backend.download(dxt),
                                   expected: dxExpected, tolerance: convTolerance))

            let dwExpected = finiteDifferenceGradient(at: w) { dot(referenceConvolution(g, x: x, w: $0, bias: nil), r) }
            let dwt = try nanTensor(backend, g.weightShape)
            backend.conv2dBackwardFilter(g, input: xt, gradOutput: rt, gradWeight: dwt, mode: .overwrite)
            results.append(compare("conv2d backward-filter \(g)", actual: try backend.download(dwt),
                                   expected: dwExpected, tolerance: convTolerance))

            let dw0 = checkInput(wCount, seed: seed + 4)
            let dwAccumulated = try backend.tensor(dw0, shape: g.weightShape)
            backend.conv2dBackwardFilter(g, input: xt, gradOutput: rt, gradWeight: dwAccumulated, mode: .accumulate)
            results.append(compare("conv2d backward-filter accumulate \(g)", actual: try backend.download(dwAccumulated),
                                   expected: zip(dw0, dwExpected).map { $0 + $1 }, tolerance: convTolerance))
        }
        return results
    }

    /// 3x3 stride-1 convolutions with 64 and 80 channels: the shapes for which the CPU backend
    /// runs Winograd F(4x4, 3x3) (DNNLConvolutionPlan.prefersWinograd), and cuDNN may too. Too
    /// wide for finite differences, so the backward references are the direct float64 sums.
    static var wideConvolutionCheckShapes: [ConvGeometry] {
        [ConvGeometry(batch: 2, inChannels: 64, height: 6, width: 7, outChannels: 64, kernel: 3, stride: 1, padding: 1),
         ConvGeometry(batch: 1, inChannels: 80, height: 8, width: 5, outChannels: 64, kernel: 3, stride: 1, padding: 1),
         // A trial group's later layer: 3 members of 32 -> 32 channels as one grouped call.
         ConvGeometry(batch: 2, inChannels: 96, height: 6, width: 6, outChannels: 96, kernel: 3, stride: 1, padding: 1, groups: 3)]
    }

    /// Winograd's transforms round differently from a direct sum: on the wide shapes above the
    /// largest errors against float64 measured 2026-11-30 were 28% of this allowance (oneDNN jit_wino_4x3;
    /// the direct kernels 9%): 3-4x the direct rounding, and 3.5x below the bound.
    static let winogradTolerance = Tolerance(atol: 1e-4, rtol: 1e-4)

    static func wideConvolutionChecks(_ backend: Backend) throws -> [CheckResult] {
        var results = [CheckResult]()
        for (index, g) in wideConvolutionCheckShapes.enumerated() {
            let seed = UInt64(400 + 10 * index)
            let x = checkInput(g.inputShape.reduce(1, *), seed: seed), w = checkInput(g.weightShape.reduce(1, *), seed: seed + 1)
            let bias = checkInput(g.outChannels, seed: seed + 2)
            let r = checkInput(g.outputShape.reduce(1, *), seed: seed + 3)
            let xt = try backend.tensor(x, shape: g.inputShape), wt = try backend.tensor(w, shape: g.weightShape)
            let bt = try backend.tensor(bias, shape: [g.outChannels]), rt = try backend.tensor(r, shape: g.outputShape)
            let yt = try nanTensor(backend, g.outputShape)
            backend.conv2dForward(g, input: xt, weight: wt, bias: bt, output: yt)
            results.append(compare("conv2d forward +bias \(g)", actual: try backend.download(yt),
                                   expected: referenceConvolution(g, x: x, w: w, bias: bias), tolerance: winogradTolerance))
            let dxt = try nanTensor(backend, g.inputShape)
            backend.conv2dBackwardData(g, gradOutput: rt, weight: wt, gradInput: dxt)
            results.append(compare("conv2d backward-data \(g)", actual: try backend.download(dxt),
                                   expected: referenceConvolutionBackward(g, dy: r, x: x, w: w).dx, tolerance: winogradTolerance))
            let dwt = try nanTensor(backend, g.weightShape)
            backend.conv2dBackwardFilter(g, input: xt, gradOutput: rt, gradWeight: dwt, mode: .overwrite)
            results.append(compare("conv2d backward-filter \(g)", actual: try backend.download(dwt),
                                   expected: referenceConvolutionBackward(g, dy: r, x: x, w: w).dw, tolerance: winogradTolerance))
        }
        return results
    }

    static func biasChecks(_ backend: Backend) throws -> [CheckResult] {
        var results = [CheckResult]()
        for (index, shape) in [[3, 4, 5, 7], [2, 3, 1, 1], [6, 5]].enumerated() {
            let seed = UInt64(300 + 10 * index)
            let count = shape.reduce(1, *), c = shape[1], inner = count / (shape[0] * c)
            let y = checkInput(count, seed: seed), b = checkInput(c, seed: seed + 1)
            let r = checkInput(count, seed: seed + 2)
            let yt = try backend.tensor(y, shape: shape), bt = try backend.tensor(b, shape: [c])
            backend.addBias(yt, bias: bt)
            func reference(_ bias: [Double]) -> [Double] {
                (0..<count).map { i in y[i] + bias[(i / inner) % c] }
            }
            results.append(compare("addBias \(shape)", actual: try backend.download(yt), expected: reference(b),
                                   tolerance: convTolerance))

            let dbExpected = finiteDifferenceGradient(at: b) { dot(reference($0), r) }
            let rt = try backend.tensor(r, shape: shape)
            let dbt = try nanTensor(backend, [c])
            backend.biasBackward(gradOutput: rt, gradBias: dbt, mode: .overwrite)
            results.append(compare("biasBackward \(shape)", actual: try backend.download(dbt), expected: dbExpected,
                                   tolerance: convTolerance))
            let db0 = checkInput(c, seed: seed + 3)
            let dbAccumulated = try backend.tensor(db0, shape: [c])
            backend.biasBackward(gradOutput: rt, gradBias: dbAccumulated, mode: .accumulate)
            results.append(compare("biasBackward accumulate \(shape)", actual: try backend.download(dbAccumulated),
                                   expected: zip(db0, dbExpected).map { $0 + $1 }, tolerance: convTolerance))
        }
        return results
    }
}

extension CrossDevice {
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
}
