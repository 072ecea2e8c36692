// The CPU backend's storage order: every rank-4 tensor is stored channels-last.
//
// Shapes stay logical everywhere ((N, C, H, W) activations, (O, I, KH, KW) weights); the CPU
// backend keeps the elements of a rank-4 tensor in the physical order (dim0, dim2, dim3, dim1),
// i.e. NHWC activations and OHWI weights, because oneDNN's convolutions run 2-10x faster on
// NHWC than on NCHW memory (bench/NOTES.md sections 5 and 6) and the reorders between the two
// were ~40% of the convolution time. Ranks 1-3 are plain row-major. `upload`, `download` and
// `copy` convert at the boundary, so callers only ever see logical row-major arrays; random
// fills and dropout index Philox by the logical index, so the CPU and CUDA (NCHW) agree.
//
// Legend: N images, C channels, HW = H*W pixels. A physical rank-4 tensor is N blocks of
// (HW, C) rows; slicing the first dimension (a sub-batch) is still a contiguous range.

extension CPUBackend {
    /// Whether a tensor of `shape` is stored in another order than row-major: rank 4 with more
    /// than one channel and more than one pixel (otherwise both orders coincide).
    @inline(__always)
    static func isChannelsLast(_ shape: [Int]) -> Bool {
        shape.count == 4 && shape[1] > 1 && shape[2] * shape[3] > 1
    }

    /// Whether two shapes of one element count put every logical element at the same position.
    @inline(__always)
    static func storedAlike(_ a: [Int], _ b: [Int]) -> Bool {
        a == b || !isChannelsLast(a) && !isChannelsLast(b)
    }

    /// For each of `images` blocks, `dst[k * rows + r] = src[r * cols + k]` (a (rows, cols) matrix
    /// transposed), in 32x32 tiles so that both sides stay in cache. NCHW -> NHWC is rows = C,
    /// cols = HW; NHWC -> NCHW is rows = HW, cols = C. `src` and `dst` must not overlap.
    func transposeImages(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                         images: Int, rows: Int, cols: Int) {
        let block = rows * cols
        let tile = 32
        let rowTiles = (rows + tile - 1) / tile
        // Parallel over (image, row tile): every task writes its own part of dst.
        parallelFor(images * rowTiles, grain: Self.grain(itemCost: tile * cols)) { tasks in
            for t in tasks {
                let n = t / rowTiles, r0 = (t % rowTiles) * tile, r1 = min(rows, r0 + tile)
                let s = src + n * block, d = dst + n * block
                var k0 = 0
                while k0 < cols {
                    let k1 = min(cols, k0 + tile)
                    for r in r0..<r1 {
                        // Pointer steps, not `d[k * rows + r]` (an overflow-checked multiply
                        // per element).
                        var from = s + r * cols + k0, to = d + k0 * rows + r
                        for _ in k0..<k1 {
                            to.pointee = from.pointee
                            from += 1
                            to += rows
                        }
                    }
                    k0 = k1
                }
            }
        }
    }

    /// Logical row-major (N, C, H, W) values -> this backend's storage of `shape`.
    func storeLogical(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, shape: [Int]) {
        let count = shape.reduce(1, *)
        guard Self.isChannelsLast(shape) else { dst.update(from: src, count: count); return }
        transposeImages(src, dst, images: shape[0], rows: shape[1], cols: shape[2] * shape[3])
    }

    /// This backend's storage of `shape` -> logical row-major (N, C, H, W) values.
    func loadLogical(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, shape: [Int]) {
        let count = shape.reduce(1, *)
        guard Self.isChannelsLast(shape) else { dst.update(from: src, count: count); return }
        transposeImages(src, dst, images: shape[0], rows: shape[2] * shape[3], cols: shape[1])
    }

    /// The storage position of logical element `i` of a tensor of `shape` (the identity unless
    /// `isChannelsLast(shape)`). For kernels that must index by logical position (Philox).
    struct StorageIndex {
        let permuted: Bool
        let c: Int, hw: Int

        init(_ shape: [Int]) {
            permuted = CPUBackend.isChannelsLast(shape)
            c = permuted ? shape[1] : 1
            hw = permuted ? shape[2] * shape[3] : 1
        }

        @inline(__always)
        func callAsFunction(_ i: Int) -> Int {
            guard permuted else { return i }
            let image = c * hw
            let n = i / image, rem = i - n * image
            let ch = rem / hw, p = rem - ch * hw
            return (n * hw + p) * c + ch
        }
    }
}
