#if canImport(Glibc)
import Glibc
#endif

// The Augmentation family's checks: float64 references and checks (KernelChecks, conventions in
// Verification/KernelCheck.swift) and the comparison with another device (CrossDevice).

extension KernelChecks {
    /// Random crop + flip, channel normalisation.
    static var augmentationKernels: [KernelCheck] {
        [
            KernelCheck("augment crop-flip", run: randomCropFlip),
            KernelCheck("augment normalize", run: normalize),
        ]
    }

    /// The documented crop/flip formula, evaluated independently of any backend code.
    static func cropFlipReference(_ x: [Double], shape: [Int], padding: Int, allowFlip: Bool,
                                  seed: UInt64, counter: UInt64) -> [Double] {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        var y = [Double](repeating: 0, count: x.count)
        for img in 0..<n {
            let u = (0..<3).map { Double(Philox.uniform(seed: seed, counter: counter, index: 3 * img + $0)) }
            let oy = Int((u[0] * Double(2 * padding + 1)).rounded(.down)) - padding
            let ox = Int((u[1] * Double(2 * padding + 1)).rounded(.down)) - padding
            let flip = allowFlip && u[2] < 0.5
            for ch in 0..<c {
                for i in 0..<h {
                    for j in 0..<w {
                        let si = i + oy, sj = (flip ? w - 1 - j : j) + ox
                        guard si >= 0 && si < h && sj >= 0 && sj < w else { continue }
                        y[((img * c + ch) * h + i) * w + j] = x[((img * c + ch) * h + si) * w + sj]
                    }
                }
            }
        }
        return y
    }

    static func randomCropFlip(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        for (k, (shape, padding, flip)) in [([3, 2, 8, 8], 4, true), ([2, 3, 7, 5], 1, false), ([2, 1, 4, 6], 0, true),
                                             ([5, 3, 9, 9], 2, true)].enumerated() {
            let n = shape.reduce(1, *), seed = UInt64(1400 + k), counter = UInt64(9 + k)
            let x = checkInput(n, seed: seed, low: 0.1, high: 1)   // nonzero, so padding shows
            let yt = try F.garbage(b, shape)
            b.randomCropFlip(try b.tensor(x, shape: shape), output: yt, padding: padding, allowFlip: flip,
                             seed: seed, counter: counter)
            out.append(compare("randomCropFlip \(F.shapeName(shape)) pad \(padding) flip \(flip)", actual: try b.download(yt),
                               expected: cropFlipReference(x, shape: shape, padding: padding, allowFlip: flip,
                                                           seed: seed, counter: counter),
                               tolerance: F.exact))
        }
        // Offsets and flips decoded from the kernel's own output over many images: pixel (i, j)
        // holds 1 + i*W + j, and the centre pixel is inside the image for any offset in -4...4.
        let (images, side, padding) = (2000, 12, 4)
        let plane = (0..<(side * side)).map { Float(1 + $0) }
        let xs = try b.allocate([images, 1, side, side])
        b.upload(Array([[Float]](repeating: plane, count: images).joined()), to: xs)
        let ys = try F.garbage(b, [images, 1, side, side])
        b.randomCropFlip(xs, output: ys, padding: padding, allowFlip: true, seed: 42, counter: 1)
        let y = try b.download(ys)
        var seenY = Set<Int>(), seenX = Set<Int>(), flips = 0, decodeErrors = 0
        for img in 0..<images {
            let c = 6, base = img * side * side
            let v0 = Int(y[base + c * side + c]) - 1, v1 = Int(y[base + c * side + c + 1]) - 1
            let (si, sj) = (v0 / side, v0 % side)
            let flipped = v1 == v0 - 1
            if !flipped && v1 != v0 + 1 { decodeErrors += 1 }
            if flipped { flips += 1 }
            seenY.insert(si - c)
            seenX.insert(sj - (flipped ? side - 1 - c : c))
        }
        let all = Array(-padding...padding)
        out.append(compare("randomCropFlip \(images)x1x\(side)x\(side) pad 4 decodable offsets", actual: [Float(decodeErrors)],
                           expected: [0], tolerance: F.exact))
        out.append(compare("randomCropFlip \(images)x1x\(side)x\(side) pad 4 vertical offsets are exactly -4...4",
                           actual: seenY.sorted().map(Float.init), expected: seenY.count == all.count ? all.map(Double.init)
                               : [Double](repeating: .nan, count: seenY.count), tolerance: F.exact))
        out.append(compare("randomCropFlip \(images)x1x\(side)x\(side) pad 4 horizontal offsets are exactly -4...4",
                           actual: seenX.sorted().map(Float.init), expected: seenX.count == all.count ? all.map(Double.init)
                               : [Double](repeating: .nan, count: seenX.count), tolerance: F.exact))
        // 2000 fair coins: standard error 0.011.
        out.append(compare("randomCropFlip \(images) images flip fraction", actual: [Float(flips) / Float(images)],
                           expected: [0.5], tolerance: Tolerance(atol: 0.05, rtol: 0)))
        return out
    }

    static func normalize(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        for (k, shape) in [[2, 3, 5, 5], [1, 1, 3, 3], [4, 3]].enumerated() {
            let n = shape.reduce(1, *), ch = shape[1], seed = UInt64(1500 + 10 * k)
            let hw = shape.count == 4 ? shape[2] * shape[3] : 1
            let x = checkInput(n, seed: seed, low: 0, high: 1)
            let mean = checkInput(ch, seed: seed + 1, low: 0.3, high: 0.6).map { Float($0) }
            let std = checkInput(ch, seed: seed + 2, low: 0.2, high: 0.3).map { Float($0) }
            let expected = (0..<n).map { i in (x[i] - Double(mean[(i / hw) % ch])) / Double(std[(i / hw) % ch]) }
            let yt = try F.garbage(b, shape)
            b.normalizeChannels(try b.tensor(x, shape: shape), output: yt, mean: mean, std: std)
            // Subtraction and division: two roundings, the difference may cancel to ~1e-8.
            out.append(compare("normalizeChannels \(F.shapeName(shape))", actual: try b.download(yt), expected: expected,
                               tolerance: Tolerance(atol: 1e-6, rtol: 2.4e-7)))
        }
        return out
    }
}

extension CrossDevice {
    static func augmentation(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        let x = input([6, 3, 8, 8], seed: 800)
        var out = try pair("randomCropFlip pad 4", b, r, inputs: [x], outputs: [x.shape], tolerance: exact) { be, t, o in
            be.randomCropFlip(t[0], output: o[0], padding: 4, allowFlip: true, seed: 12345, counter: 6)
        }
        out += try pair("normalizeChannels", b, r, inputs: [x], outputs: [x.shape], tolerance: float) { be, t, o in
            be.normalizeChannels(t[0], output: o[0], mean: [0.1, -0.2, 0.3], std: [0.5, 1.5, 0.25])
        }
        return out
    }
}
