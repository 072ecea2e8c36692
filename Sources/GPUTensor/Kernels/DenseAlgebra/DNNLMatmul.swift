import CDNNL

// bf16 GEMMs on oneDNN's matmul primitive (brg:avx512_core_bf16 on this CPU): bf16 A and B,
// FP32 accumulation and C, `alpha` as an output scale and `beta` as a sum post-op. Row-major
// operands, a transposed one as the `ba` layout of the same bytes. A and B go through DNNLPorts,
// whose f32 -> bf16 reorders round to nearest even into workspace scratch on every call (the
// weights change after every step). Measured against dnnl_sgemm on the seed cnn's dense shapes
// (bench/cpu-bf16.md): 1.2-1.5x with the reorders on 128x500x432 and alike, 0.4-0.9x on the
// 10-class head; `CPUBackend.gemm` sends products below `DNNLMatmulPlan.minimumWork` to sgemm
// on rounded copies instead, which computes the same bf16 numbers.

final class DNNLMatmulPlan {
    struct Key: Hashable {
        var transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int
        var alphaBits: UInt32, betaBits: UInt32
    }

    /// m * n * k below which sgemm on rounded copies is faster than the matmul and its reorders
    /// (the 128 x 10 x 250 head: 0.4-0.9x; 128 x 250 x 500: 1.1-1.3x).
    static let minimumWork = 1 << 22

    private let pd: dnnl_primitive_desc_t
    let primitive: dnnl_primitive_t
    let a, b: DNNLPort
    let c: dnnl_memory_t

    init(_ key: Key, context: DNNLContext) {
        let (m, n, k) = (key.m, key.n, key.k)
        let aTag = key.transposeA ? dnnl_ba : dnnl_ab, bTag = key.transposeB ? dnnl_ba : dnnl_ab
        var aMD = memoryDesc([m, k], aTag, dnnl_bf16), bMD = memoryDesc([k, n], bTag, dnnl_bf16)
        var cMD = memoryDesc([m, n], dnnl_ab)
        var desc = dnnl_matmul_desc_t()
        dnnlCheck(dnnl_matmul_desc_init(&desc, &aMD, &bMD, nil, &cMD), "matmul descriptor \(m)x\(n)x\(k)")
        var attr: dnnl_primitive_attr_t?
        dnnlCheck(dnnl_primitive_attr_create(&attr), "attr_create")
        defer { dnnl_primitive_attr_destroy(attr) }
        var alpha = Float(bitPattern: key.alphaBits)
        if alpha != 1 { dnnlCheck(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha), "output scales") }
        let beta = Float(bitPattern: key.betaBits)
        if beta != 0 {
            var ops: dnnl_post_ops_t?
            dnnlCheck(dnnl_post_ops_create(&ops), "post_ops_create")
            dnnlCheck(dnnl_post_ops_append_sum(ops, beta), "post_ops_append_sum")
            dnnlCheck(dnnl_primitive_attr_set_post_ops(attr, ops), "set_post_ops")
            dnnl_post_ops_destroy(ops)
        }
        var pd: dnnl_primitive_desc_t?
        dnnlCheck(dnnl_primitive_desc_create(&pd, &desc, attr, context.engine, nil), "matmul \(m)x\(n)x\(k)")
        self.pd = pd!
        var prim: dnnl_primitive_t?
        dnnlCheck(dnnl_primitive_create(&prim, pd), "matmul primitive \(m)x\(n)x\(k)")
        primitive = prim!
        a = DNNLPort(user: memoryDesc([m, k], aTag), inner: aMD, output: false, context: context)
        b = DNNLPort(user: memoryDesc([k, n], bTag), inner: bMD, output: false, context: context)
        var cm: dnnl_memory_t?
        dnnlCheck(dnnl_memory_create(&cm, &cMD, context.engine, nil), "memory_create")
        c = cm!
    }

    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_primitive_desc_destroy(pd)
        dnnl_memory_destroy(c)
    }

    /// oneDNN's name of the kernel (`brg:avx512_core_bf16`).
    var implementation: String {
        var name: UnsafePointer<CChar>?
        guard dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success, let name else { return "?" }
        return String(cString: name)
    }
}

/// Workspace slots of the matmul's bf16 operands.
private enum MatmulSlot {
    static let a = 0x6F_00
    static let b = 0x6F_01
}

extension CPUBackend {
    /// `c = alpha * op(a) * op(b) + beta * c` with a and b rounded to bf16, on the matmul primitive.
    func dnnlMatmulBF16(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                        alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
        let context = dnnl
        let key = DNNLMatmulPlan.Key(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                     alphaBits: alpha.bitPattern, betaBits: beta.bitPattern)
        let plan = context.plan(key) { DNNLMatmulPlan(key, context: context) }
        context.useThreads()
        let am = plan.a.bind(a.hostPointer) { self.workspace.buffer(slot: MatmulSlot.a, count: (plan.a.innerBytes + 3) / 4) }
        let bm = plan.b.bind(b.hostPointer) { self.workspace.buffer(slot: MatmulSlot.b, count: (plan.b.innerBytes + 3) / 4) }
        dnnlCheck(dnnl_memory_set_data_handle(plan.c, c.hostPointer), "set_data_handle")
        plan.a.reorderIn(context)
        plan.b.reorderIn(context)
        context.execute(plan.primitive, [(DNNL_ARG_SRC, am), (DNNL_ARG_WEIGHTS, bm), (DNNL_ARG_DST, plan.c)],
                        "matmul bf16 \(m)x\(n)x\(k)")
    }
}
