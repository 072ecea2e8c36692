import CDNNL

// Max pooling on oneDNN (jit:avx512_core on our machines; the product itself is built for baseline
// x86-64), on the backend's channels-last storage: the primitives read and write the caller's NHWC
// memory directly. One plan per geometry (`DNNLPoolingPlan`), cached in the backend's `DNNLContext`
// like the convolution plans and created with the same thread setting.
//
// The workspace is oneDNN's own: one byte per output element (N, Ho, Wo, C), the position of the
// window's maximum as r * window + c in the window as if padded. The training forward writes it
// into the caller's tensor (`maxPoolWorkspaceCount`), the backward reads it and never x.
//
// Semantics (bench/c/dnnl-pool-semantics.c): oneDNN keeps the first row-major maximum on ties, as
// the contract says, but drops NaN (its comparisons are false for NaN, so a window's NaN loses to
// any number and an all-NaN window yields -FLT_MAX), and an all -infinity window yields -FLT_MAX
// and routes to the window's first position even where that is padding. So every forward also
// asks whether x holds NaN or -infinity, and only where it does, runs the contract's rule
// (`maxPoolExact`, CPUPooling.swift, which rewrites y and the positions): NaN stays visible, as in
// PyTorch, and a diverging run stops on its non-finite loss instead of training on. The question
// goes to oneDNN too: its average pooling over each whole image (N x C means) is NaN or -infinity
// exactly when that image-channel holds a NaN or a -infinity (IEEE sums propagate both; +infinity
// with -infinity gives NaN), or, harmlessly, when the sum overflows to -infinity; then N x C values
// are scanned. That costs a quarter to a half of oneDNN's max-pool forward with warm caches, a
// third of our own vectorised scan of x, which the product's baseline SSE2 build runs four floats
// at a time (bench/NOTES.md section 12).

/// The forward (training and inference) and backward max-pooling primitives of one geometry.
final class DNNLPoolingPlan {
    let geometry: PoolGeometry
    let training: dnnl_primitive_t
    let inference: dnnl_primitive_t
    let backward: dnnl_primitive_t
    /// Average pooling over each whole image: (N, C, H, W) -> the means (N, C, 1, 1), NaN or
    /// -infinity where x is (file header).
    let imageMeans: dnnl_primitive_t
    let src, dst, workspace, diffDst, diffSrc, means: dnnl_memory_t
    private let trainingPD, inferencePD, backwardPD, imageMeansPD: dnnl_primitive_desc_t

    init(_ g: PoolGeometry, context: DNNLContext) {
        geometry = g
        let srcMD = memoryDesc(g.inputShape, dnnl_nhwc), dstMD = memoryDesc(g.outputShape, dnnl_nhwc)
        let strides = [Int64(g.stride), Int64(g.stride)], kernel = [Int64(g.window), Int64(g.window)]
        let dilation: [Int64] = [0, 0], padL = [Int64(g.padding), Int64(g.padding)]
        // The padding that makes (H + padL + padR - window) / stride + 1 the output size (floor mode).
        let padR = [Int64((g.outHeight - 1) * g.stride + g.window - g.height - g.padding),
                    Int64((g.outWidth - 1) * g.stride + g.window - g.width - g.padding)]
        func primitive(_ kind: dnnl_prop_kind_t?, hint: dnnl_primitive_desc_t?) -> (dnnl_primitive_desc_t, dnnl_primitive_t) {
            var desc = dnnl_pooling_v2_desc_t()
            var s = srcMD, d = dstMD
            if let kind {
                dnnlCheck(dnnl_pooling_v2_forward_desc_init(&desc, kind, dnnl_pooling_max, &s, &d, strides, kernel,
                                                            dilation, padL, padR), "max-pool forward descriptor \(g)")
            } else {
                dnnlCheck(dnnl_pooling_v2_backward_desc_init(&desc, dnnl_pooling_max, &s, &d, strides, kernel,
                                                             dilation, padL, padR), "max-pool backward descriptor \(g)")
            }
            var pd: dnnl_primitive_desc_t?
            dnnlCheck(dnnl_primitive_desc_create(&pd, &desc, nil, context.engine, hint), "max-pool primitive descriptor \(g)")
            var prim: dnnl_primitive_t?
            dnnlCheck(dnnl_primitive_create(&prim, pd), "max-pool primitive \(g)")
            return (pd!, prim!)
        }
        (trainingPD, training) = primitive(dnnl_forward_training, hint: nil)
        (inferencePD, inference) = primitive(dnnl_forward_inference, hint: nil)
        (backwardPD, backward) = primitive(nil, hint: trainingPD)
        let meansShape = [g.batch, g.channels, 1, 1]
        var meansMD = memoryDesc(meansShape, dnnl_nhwc)
        do {
            var desc = dnnl_pooling_v2_desc_t()
            var s = srcMD
            let whole = [Int64(g.height), Int64(g.width)], zero: [Int64] = [0, 0]
            dnnlCheck(dnnl_pooling_v2_forward_desc_init(&desc, dnnl_forward_inference, dnnl_pooling_avg_include_padding,
                                                        &s, &meansMD, whole, whole, dilation, zero, zero),
                      "image-mean pooling descriptor \(g)")
            var pd: dnnl_primitive_desc_t?
            dnnlCheck(dnnl_primitive_desc_create(&pd, &desc, nil, context.engine, nil), "image-mean pooling \(g)")
            var prim: dnnl_primitive_t?
            dnnlCheck(dnnl_primitive_create(&prim, pd), "image-mean pooling primitive \(g)")
            (imageMeansPD, imageMeans) = (pd!, prim!)
        }
        // The workspace must be the byte per output element that `maxPoolWorkspaceCount` sizes
        // and `maxPoolExact` writes.
        var wsMD = DNNLConvolutionPlan.query(trainingPD, dnnl_query_workspace_md)
        var bytesMD = dnnl_memory_desc_t()
        dnnlCheck(dnnl_memory_desc_init_by_tag(&bytesMD, 4, g.outputShape.map(Int64.init), dnnl_u8, dnnl_nhwc), "workspace md")
        precondition(dnnl_memory_desc_equal(&wsMD, &bytesMD) != 0,
                     "oneDNN: max-pool workspace of \(g) is not one byte per output (NHWC)")
        func memory(_ md: dnnl_memory_desc_t) -> dnnl_memory_t {
            var m = md, out: dnnl_memory_t?
            dnnlCheck(dnnl_memory_create(&out, &m, context.engine, nil), "memory_create")
            return out!
        }
        src = memory(srcMD); dst = memory(dstMD); workspace = memory(wsMD)
        diffDst = memory(dstMD); diffSrc = memory(srcMD); means = memory(meansMD)
    }

    deinit {
        for p in [training, inference, backward, imageMeans] { dnnl_primitive_destroy(p) }
        for pd in [trainingPD, inferencePD, backwardPD, imageMeansPD] { dnnl_primitive_desc_destroy(pd) }
        for m in [src, dst, workspace, diffDst, diffSrc, means] { dnnl_memory_destroy(m) }
    }

    static func bind(_ m: dnnl_memory_t, _ t: Tensor) -> dnnl_memory_t { bind(m, t.hostPointer) }

    static func bind(_ m: dnnl_memory_t, _ p: UnsafeMutablePointer<Float>) -> dnnl_memory_t {
        dnnlCheck(dnnl_memory_set_data_handle(m, p), "set_data_handle")
        return m
    }
}

extension CPUBackend {
    /// One byte per output element (N, Ho, Wo, C order), in float32 elements rounded up.
    public func maxPoolWorkspaceCount(_ g: PoolGeometry) -> Int {
        precondition(g.window * g.window <= 256, "CPU max pooling saves window positions in a byte: window \(g.window) > 16")
        return (g.batch * g.outHeight * g.outWidth * g.channels + 3) / 4
    }

    private func maxPoolPlan(_ g: PoolGeometry) -> DNNLPoolingPlan {
        dnnl.plan(g) { DNNLPoolingPlan(g, context: dnnl) }
    }

    /// Padding is -infinity; NaN wins (as in PyTorch); ties keep the first (row-major) maximum.
    /// oneDNN's primitive, then the contract's rule where x holds NaN or -infinity (file header).
    public func maxPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, workspace: Tensor?) {
        ShapeChecks.pool(g, input: x, output: y, "maxPoolForward")
        if let workspace { ShapeChecks.maxPoolWorkspace(workspace, count: maxPoolWorkspaceCount(g), "maxPoolForward") }
        let plan = maxPoolPlan(g), context = dnnl
        context.useThreads()
        var args = [(DNNL_ARG_SRC, DNNLPoolingPlan.bind(plan.src, x)), (DNNL_ARG_DST, DNNLPoolingPlan.bind(plan.dst, y))]
        if let workspace {
            args.append((DNNL_ARG_WORKSPACE, DNNLPoolingPlan.bind(plan.workspace, workspace)))
            context.execute(plan.training, args, "max-pool forward \(g)")
        } else {
            context.execute(plan.inference, args, "max-pool forward (inference) \(g)")
        }
        // Does x hold NaN or -infinity? Its per-image means say (file header).
        let means = self.workspace.buffer(slot: imageMeansSlot, count: g.batch * g.channels)
        context.execute(plan.imageMeans, [(DNNL_ARG_SRC, plan.src), (DNNL_ARG_DST, DNNLPoolingPlan.bind(plan.means, means))],
                        "image means \(g)")
        if !(0..<(g.batch * g.channels)).allSatisfy({ means[$0] > -.infinity }) {
            maxPoolExact(g, input: x, output: y, workspace: workspace)
        }
    }

    /// Each dy goes to the position its training forward saved in `workspace` (x and y are not
    /// read); overlapping windows add.
    public func maxPoolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, workspace: Tensor?,
                                gradOutput dy: Tensor, gradInput dx: Tensor) {
        ShapeChecks.pool(g, input: x, output: y, "maxPoolBackward")
        ShapeChecks.pool(g, input: dx, output: dy, "maxPoolBackward")
        ShapeChecks.maxPoolWorkspace(workspace, count: maxPoolWorkspaceCount(g), "maxPoolBackward")
        let plan = maxPoolPlan(g), context = dnnl
        context.useThreads()
        context.execute(plan.backward, [(DNNL_ARG_DIFF_DST, DNNLPoolingPlan.bind(plan.diffDst, dy)),
                                        (DNNL_ARG_WORKSPACE, DNNLPoolingPlan.bind(plan.workspace, workspace!)),
                                        (DNNL_ARG_DIFF_SRC, DNNLPoolingPlan.bind(plan.diffSrc, dx))],
                        "max-pool backward \(g)")
    }
}

/// Workspace slot of the per-image means of `maxPoolForward`'s NaN check.
private let imageMeansSlot = 0xD3_00
