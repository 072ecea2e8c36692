/// Dense algebra: the GEMM of fully connected layers.
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol DenseAlgebraKernels: AnyObject {
    // MARK: Dense algebra

    /// Row-major `c = alpha * op(a) * op(b) + beta * c` with `op(a)` (m, k) and `op(b)` (k, n).
    /// Stored shapes: `a` is (m, k), or (k, m) when `transposeA`; `b` is (k, n), or (n, k) when
    /// `transposeB`; `c` is (m, n).
    func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
              alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor)
    /// `batch` independent `gemm`s over stacked matrices (see the extension below for the layout).
    func gemmBatched(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, batch: Int,
                     alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor)
}

// MARK: Batched GEMM (trial groups)

public extension DenseAlgebraKernels {
    /// `batch` independent GEMMs, each as `gemm`: `c[i] = alpha * op(a[i]) * op(b[i]) + beta * c[i]`
    /// for i in 0..<batch, where `a`, `b` and `c` hold their `batch` matrices one after another
    /// (a: (batch, m, k), or (batch, k, m) when `transposeA`; b: (batch, k, n), or (batch, n, k);
    /// c: (batch, m, n); any shapes with those element counts). The dense layers of a trial group
    /// (G same-shaped members, Trainer/Groups) run as one such call.
    ///
    /// This default runs `gemm` on each matrix (views of the same storage); CUDA overrides it with
    /// one `cublasSgemmStridedBatched`.
    func gemmBatched(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, batch: Int,
                     alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
        ShapeChecks.gemmBatched(m: m, n: n, k: k, batch: batch, a: a, b: b, c: c)
        for i in 0..<batch {
            gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                 a: batchedMatrix(a, i, transposeA ? [k, m] : [m, k]),
                 b: batchedMatrix(b, i, transposeB ? [n, k] : [k, n]), beta: beta, c: batchedMatrix(c, i, [m, n]))
        }
    }
}

/// Matrix `i` of a tensor holding matrices of `shape` one after another (row-major in every backend).
public func batchedMatrix(_ t: Tensor, _ i: Int, _ shape: [Int]) -> Tensor {
    Tensor(storage: t.storage, offset: t.offset + i * shape[0] * shape[1], shape: shape)
}

public extension ShapeChecks {
    /// `gemmBatched`'s operands hold `batch` matrices each, with ranks other than 4 (the CPU
    /// stores rank-4 tensors channels-last, so their memory is not a stack of row-major matrices).
    static func gemmBatched(m: Int, n: Int, k: Int, batch: Int, a: Tensor, b: Tensor, c: Tensor) {
        precondition(batch >= 0 && m >= 0 && n >= 0 && k >= 0, "gemmBatched: negative size")
        precondition(a.count == batch * m * k && b.count == batch * k * n && c.count == batch * m * n
                     && a.rank != 4 && b.rank != 4 && c.rank != 4,
                     "gemmBatched \(batch) x \(m)x\(n)x\(k): a \(a.shape), b \(b.shape), c \(c.shape)")
    }
}

// MARK: Shape checks (ShapeChecks.swift: preconditions every backend calls first)

extension ShapeChecks {
    @inline(__always)
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: Tensor, b: Tensor, c: Tensor) {
        precondition(m >= 0 && n >= 0 && k >= 0, "gemm with negative size \(m)x\(n)x\(k)")
        precondition(a.count == m * k, "gemm: a \(a.shape) is not \(transposeA ? "(k, m)" : "(m, k)") = \(m), \(k)")
        precondition(b.count == k * n, "gemm: b \(b.shape) is not \(transposeB ? "(n, k)" : "(k, n)") = \(k), \(n)")
        precondition(c.count == m * n, "gemm: c \(c.shape) is not (m, n) = (\(m), \(n))")
    }
}
