import CDNNL
import CDNNLLoader
#if canImport(Glibc)
import Glibc
#endif

// Convolutions on oneDNN (Debian's libdnnl 2.6, OpenMP runtime; opened at run time by
// CDNNLLoader, which says why), on the CPU backend's channels-last storage (CPULayout.swift).
//
// oneDNN's convolutions on plain NCHW memory are slow (22-178 GFLOP/s fwd+bwd on our 2-core
// machine kind); on NHWC activations they run 180-262 (docs PERF-CPU.md). The backend stores
// activations NHWC, so the primitives read and write the caller's memory directly; weights
// (stored OHWI) go into whatever layout the primitive asks for (`format_tag::any`). Primitives,
// reorders and memory objects are created once per geometry (`DNNLConvolutionPlan`, cached like
// the CUDA backend's cuDNN plans); the scratch buffers are the backend's workspace slots, shared
// by all geometries. Plans are never evicted: a training run has a handful of geometries (its
// layers at the training, evaluation and last partial batch sizes). Until the NHWC storage the
// activations were reordered from and to NCHW on every call: about 40% of the convolution time
// at batch 128 (bench/NOTES.md section 5; section 6 for after).
//
// Threads: this libdnnl uses OpenMP, whose thread count is a per-calling-thread setting, so
// every entry sets it to the backend's `threads` (the `--threads` setting) before creating or
// running a primitive. oneDNN partitions work at creation for the thread count of that moment.
// The backend's other parallel kernels run on the same OpenMP team (`OpenMPTeam`): on threads
// of their own they competed with the idle OpenMP threads, which spin for 10-20 ms after every
// region on this CPU (bench/NOTES.md section 5).

/// A failed oneDNN call: a bug or an unsupported geometry, never bad user input.
@inline(__always)
func dnnlCheck(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
    precondition(status == dnnl_success, "oneDNN: \(what()) failed with status \(status.rawValue)")
}

func memoryDesc(_ dims: [Int], _ tag: dnnl_format_tag_t, _ type: dnnl_data_type_t = dnnl_f32) -> dnnl_memory_desc_t {
    var md = dnnl_memory_desc_t()
    let d = dims.map(Int64.init)
    dnnlCheck(dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), d, type, tag), "memory descriptor \(dims)")
    return md
}

/// The engine and stream of one CPU backend, and its plans per geometry.
final class DNNLContext: @unchecked Sendable {
    let engine: dnnl_engine_t
    let stream: dnnl_stream_t
    let threads: Int
    private var plans: [PlanKey: DNNLConvolutionPlan] = [:]
    /// Plans of the other primitive families (DNNLPooling.swift), under their own hashable keys.
    private var otherPlans: [AnyHashable: AnyObject] = [:]
    private let lock = HostMutex()

    struct PlanKey: Hashable { var geometry: ConvGeometry; var bias: Bool; var precision: Precision }

    init(threads: Int) {
        var message = [CChar](repeating: 0, count: 1024)
        if strata_dnnl_load(&message, Int32(message.count)) != 0 {
            preconditionFailure("oneDNN is missing: \(String(cString: message))")
        }
        self.threads = threads
        var e: dnnl_engine_t?
        dnnlCheck(dnnl_engine_create(&e, dnnl_cpu, 0), "engine_create")
        var s: dnnl_stream_t?
        dnnlCheck(dnnl_stream_create(&s, e, dnnl_stream_default_flags.rawValue), "stream_create")
        engine = e!
        stream = s!
    }

    deinit {
        plans.removeAll()
        otherPlans.removeAll()
        dnnl_stream_destroy(stream)
        dnnl_engine_destroy(engine)
    }

    /// Makes oneDNN's next parallel regions on this thread use the backend's thread count.
    func useThreads() { OpenMPTeam.setThreads(threads) }

    func plan(_ g: ConvGeometry, bias: Bool, precision: Precision = .fp32) -> DNNLConvolutionPlan {
        lock.lock(); defer { lock.unlock() }
        let key = PlanKey(geometry: g, bias: bias, precision: precision)
        if let p = plans[key] { return p }
        useThreads()
        let p = DNNLConvolutionPlan(g, bias: bias, precision: precision, context: self)
        plans[key] = p
        return p
    }

    /// The plan cached under `key`, made by `make` (with the backend's thread count) the first time.
    func plan<Plan: AnyObject>(_ key: AnyHashable, make: () -> Plan) -> Plan {
        lock.lock(); defer { lock.unlock() }
        if let p = otherPlans[key] { return p as! Plan }
        useThreads()
        let p = make()
        otherPlans[key] = p
        return p
    }

    func execute(_ primitive: dnnl_primitive_t, _ args: [(Int32, dnnl_memory_t)], _ what: @autoclosure () -> String) {
        var list = args.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1) }
        dnnlCheck(dnnl_primitive_execute(primitive, stream, Int32(list.count), &list), what())
        dnnlCheck(dnnl_stream_wait(stream), what())
    }
}

/// One tensor of a primitive as the caller holds it (NHWC / OHWI) and as the primitive wants it,
/// with the reorder between them when the layouts differ.
final class DNNLPort {
    let user: dnnl_memory_t
    let inner: dnnl_memory_t
    /// Bytes of the primitive's layout (blocked layouts may pad).
    let innerBytes: Int
    /// user -> inner (inputs) or inner -> user (outputs); nil when the layouts are the same and
    /// the primitive reads or writes the caller's memory directly.
    let reorder: dnnl_primitive_t?
    /// An output reorder that adds into the caller's memory (`sum` post-op), for `.accumulate`.
    let accumulatingReorder: dnnl_primitive_t?

    init(user userMD: dnnl_memory_desc_t, inner innerMD: dnnl_memory_desc_t, output: Bool, accumulating: Bool = false,
         context: DNNLContext) {
        var u = userMD, i = innerMD
        var um: dnnl_memory_t?, im: dnnl_memory_t?
        dnnlCheck(dnnl_memory_create(&um, &u, context.engine, nil), "memory_create")
        dnnlCheck(dnnl_memory_create(&im, &i, context.engine, nil), "memory_create")
        user = um!; inner = im!
        innerBytes = dnnl_memory_desc_get_size(&i)
        func makeReorder(sum: Bool) -> dnnl_primitive_t {
            var attr: dnnl_primitive_attr_t?
            dnnlCheck(dnnl_primitive_attr_create(&attr), "attr_create")
            defer { dnnl_primitive_attr_destroy(attr) }
            if sum {
                var ops: dnnl_post_ops_t?
                dnnlCheck(dnnl_post_ops_create(&ops), "post_ops_create")
                dnnlCheck(dnnl_post_ops_append_sum(ops, 1), "post_ops_append_sum")
                dnnlCheck(dnnl_primitive_attr_set_post_ops(attr, ops), "set_post_ops")
                dnnl_post_ops_destroy(ops)
            }
            var pd: dnnl_primitive_desc_t?
            if output {
                dnnlCheck(dnnl_reorder_primitive_desc_create(&pd, &i, context.engine, &u, context.engine, attr), "reorder")
            } else {
                dnnlCheck(dnnl_reorder_primitive_desc_create(&pd, &u, context.engine, &i, context.engine, attr), "reorder")
            }
            defer { dnnl_primitive_desc_destroy(pd) }
            var prim: dnnl_primitive_t?
            dnnlCheck(dnnl_primitive_create(&prim, pd), "reorder primitive")
            return prim!
        }
        // An accumulating output always goes through the primitive's own buffer, even when the
        // layouts agree, so that the reorder can add it into the caller's tensor.
        let same = dnnl_memory_desc_equal(&u, &i) != 0
        reorder = same && !accumulating ? nil : makeReorder(sum: false)
        accumulatingReorder = accumulating ? makeReorder(sum: true) : nil
    }

    deinit {
        if let reorder { dnnl_primitive_destroy(reorder) }
        if let accumulatingReorder { dnnl_primitive_destroy(accumulatingReorder) }
        dnnl_memory_destroy(user)
        dnnl_memory_destroy(inner)
    }

    /// Points the port at the caller's tensor and, when a reorder is needed, at `scratch`
    /// (at least `innerBytes`); returns the memory the primitive uses.
    func bind(_ data: UnsafeMutablePointer<Float>, scratch: () -> UnsafeMutablePointer<Float>) -> dnnl_memory_t {
        dnnlCheck(dnnl_memory_set_data_handle(user, data), "set_data_handle")
        guard reorder != nil else { return user }
        dnnlCheck(dnnl_memory_set_data_handle(inner, scratch()), "set_data_handle")
        return inner
    }

    /// Input: caller's layout -> the primitive's.
    func reorderIn(_ context: DNNLContext) {
        if let reorder { context.execute(reorder, [(DNNL_ARG_FROM, user), (DNNL_ARG_TO, inner)], "reorder in") }
    }

    /// Output: the primitive's layout -> the caller's (added to it when `accumulate`).
    func reorderOut(_ context: DNNLContext, accumulate: Bool = false) {
        if accumulate, let accumulatingReorder {
            context.execute(accumulatingReorder, [(DNNL_ARG_FROM, inner), (DNNL_ARG_TO, user)], "reorder out (sum)")
        } else if let reorder {
            context.execute(reorder, [(DNNL_ARG_FROM, inner), (DNNL_ARG_TO, user)], "reorder out")
        }
    }
}

/// The three convolution primitives of one geometry (forward with or without bias), created
/// lazily per direction (inference needs the forward only), with their ports.
///
/// In `.bf16` the primitives read bf16 inputs (src, weights, diff_dst) and write FP32 outputs (dst,
/// diff_src, diff_weights), accumulating in FP32: the input ports' reorders turn the caller's FP32
/// tensors into bf16 copies in workspace scratch (round-to-nearest-even) on every call, and the
/// outputs are written straight into the caller's FP32 memory. Activations stay NHWC in bf16 too:
/// oneDNN 2.6's bf16 kernels on this layout are brgconv:avx512_core_bf16 (forward) and
/// jit_bf16:avx512_core_bf16 (both backward directions), while `any` activations with NHWC FP32
/// outputs fall to ref:any (bench/cpu-bf16.md). Weights take `any` (a blocked bf16 layout) as in FP32.
/// Per-call reorders rather than cached bf16 copies: the weights change after every optimizer
/// step, and a bf16 copy of the forward input kept for backward-filter (or of the incoming
/// gradient kept from backward-data) would need proof that nothing wrote the tensor in between,
/// which Tensor cannot give (no version counter). The reorders are 8-20% of the bf16 time, the
/// weights' well under 1% (bench/cpu-bf16.md): the activation copies are the next thing to save.
final class DNNLConvolutionPlan {
    let geometry: ConvGeometry
    let precision: Precision
    unowned let context: DNNLContext
    private let forwardPD: dnnl_primitive_desc_t
    let forward: dnnl_primitive_t
    let src, weights, dst: DNNLPort
    let bias: dnnl_memory_t?
    private(set) lazy var backwardData = BackwardData(self)
    private(set) lazy var backwardWeights = BackwardWeights(self)

    // Convolution descriptor inputs, shared by the three directions.
    private let strides: [Int64], padL: [Int64], padR: [Int64]
    private let userSrcMD, userWeightsMD, userDstMD, anyWeightsMD, anyDiffWeightsMD: dnnl_memory_desc_t
    /// The activations as the primitives read them (src, diff_dst: bf16 in `.bf16`) and write them
    /// (dst, diff_src: always FP32); all four are the caller's NHWC except under Winograd.
    private let inSrcMD, inDstMD, outSrcMD, outDstMD: dnnl_memory_desc_t
    /// Direct, or Winograd F(4x4, 3x3) where it pays (`usesWinograd`).
    let algorithm: dnnl_alg_kind_t

    /// Whether 3x3 convolutions with many channels run Winograd (`STRATA_CPU_WINOGRAD=off`
    /// keeps every convolution direct); read when a plan is created, tests change it.
    nonisolated(unsafe) static var winogradEnabled: Bool = {
        guard let v = getenv("STRATA_CPU_WINOGRAD") else { return true }
        return !["off", "0", "no", "false"].contains(String(cString: v).lowercased())
    }()

    /// Winograd F(4x4, 3x3) (oneDNN's jit_wino_4x3, AVX-512) for 3x3 stride-1 "same" convolutions
    /// of at least 64 input and output channels (multiples of 16) on images of at least 4x4.
    /// Measured per call at 2 threads, batch 64 (bench/NOTES.md section 9): 512 channels on 4x4
    /// 6.1 ms against 27.9 for the fastest direct kernel, 256 on 8x8 6.2 against 13.1, 64 on 32x32
    /// 5.0 against 18.0 (forward; backward alike), but 512 on 2x2 11.1 against 2.6: below 4x4 a
    /// 6x6 tile is mostly padding. Its rounding differs from the direct sum's (checked against
    /// float64 at `ConvolutionChecks.winogradTolerance`). Activations go through blocked copies
    /// (the primitive's own layout), which these layer sizes amortise.
    static func prefersWinograd(_ g: ConvGeometry) -> Bool {
        winogradEnabled && g.groups == 1 && g.kernelH == 3 && g.kernelW == 3 && g.strideH == 1 && g.strideW == 1
            && g.padH == 1 && g.padW == 1 && g.inChannels >= 64 && g.outChannels >= 64
            && g.inChannels % 16 == 0 && g.outChannels % 16 == 0 && g.outHeight >= 4 && g.outWidth >= 4
    }

    /// Whether the forward takes oneDNN's older `jit:` kernel instead of its first choice (brgconv
    /// in oneDNN 2.6 on AVX-512): for few input channels (the 3-channel stem) and outputs of at
    /// most 2x2, where brgconv's blocking is mostly padding. Measured per call, batch 128, 2 threads,
    /// best of 8 (bench/c/dnnl-impls.c, bench/NOTES.md section 11): 3 -> 16 channels on 32x32 0.31 ms
    /// against 0.43; 3 -> 48 0.78 against 0.97; 512 -> 512 on 2x2 (batch 64) 2.62 against 3.20;
    /// elsewhere brgconv is as fast or faster (64 -> 64 on 8x8: 1.04 against 1.15). A fixed rule,
    /// not a timing at plan creation, so that a run and its resume choose the same kernels.
    static func prefersJitForward(_ g: ConvGeometry) -> Bool {
        g.groups == 1 && (g.inChannels < 8 || g.outHeight * g.outWidth <= 4)   // grouped: measured for neither
    }

    /// The first implementation oneDNN offers for `desc` whose name starts with `prefix`, else its
    /// first one (nil when it has none).
    static func firstImplementation(_ desc: inout dnnl_convolution_desc_t, named prefix: String,
                                    context: DNNLContext) -> dnnl_primitive_desc_t? {
        var iterator: dnnl_primitive_desc_iterator_t?
        guard dnnl_primitive_desc_iterator_create(&iterator, &desc, nil, context.engine, nil) == dnnl_success,
              let iterator else { return nil }
        defer { dnnl_primitive_desc_iterator_destroy(iterator) }
        var first: dnnl_primitive_desc_t?
        repeat {
            guard let pd = dnnl_primitive_desc_iterator_fetch(iterator) else { break }
            var name: UnsafePointer<CChar>?
            if dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success,
               let name, String(cString: name).hasPrefix(prefix) {
                if let first { dnnl_primitive_desc_destroy(first) }
                return pd
            }
            if first == nil { first = pd } else { dnnl_primitive_desc_destroy(pd) }
        } while dnnl_primitive_desc_iterator_next(iterator) == dnnl_success
        return first
    }

    init(_ g: ConvGeometry, bias hasBias: Bool, precision: Precision, context: DNNLContext) {
        geometry = g
        self.precision = precision
        self.context = context
        // The CPU computes in FP32 or bf16 (BackendFactory refuses fp16 with one line).
        precondition(precision != .fp16, "the CPU backend computes in fp32 or bf16")
        let inputType = precision == .bf16 ? dnnl_bf16 : dnnl_f32
        let reduced = precision == .bf16
        strides = [Int64(g.strideH), Int64(g.strideW)]
        padL = [Int64(g.padH), Int64(g.padW)]
        // oneDNN wants the padding that makes (H + padL + padR - KH) / stride + 1 exact.
        padR = [Int64((g.outHeight - 1) * g.strideH + g.kernelH - g.height - g.padH),
                Int64((g.outWidth - 1) * g.strideW + g.kernelW - g.width - g.padW)]
        // The backend's storage (CPULayout.swift): channels-last activations and weights.
        userSrcMD = memoryDesc(g.inputShape, dnnl_nhwc)
        userDstMD = memoryDesc(g.outputShape, dnnl_nhwc)
        // Grouped weights (Cout, Cin/G, KH, KW) stored OHWI are oneDNN's (G, Cout/G, Cin/G, KH, KW)
        // in `gohwi`: the same bytes, output channels group-major.
        let weightDims = g.groups == 1 ? g.weightShape
            : [g.groups, g.outChannels / g.groups] + Array(g.weightShape.dropFirst())
        userWeightsMD = memoryDesc(weightDims, g.groups == 1 ? dnnl_ohwi : dnnl_gohwi)
        // Every convolution on NHWC activations, the 3-channel stem included: before the NHWC
        // storage the stem read a plain NCHW image and wrote a blocked output (its forward at
        // 75-84 GFLOP/s against 48-51 on an NHWC copy, bench/NOTES.md section 5); on NHWC
        // storage that layout needs reorders on both sides, and the stem's forward then costs
        // the same and its backward-filter 1.5x the direct NHWC plan (thread CPU time, section 6).
        anyWeightsMD = memoryDesc(weightDims, dnnl_format_tag_any, inputType)
        anyDiffWeightsMD = memoryDesc(weightDims, dnnl_format_tag_any)
        var biasMD = memoryDesc([g.outChannels], dnnl_a)
        let (strides, padL, padR) = (self.strides, self.padL, self.padR)
        let anyWeights = anyWeightsMD
        // The forward's primitive descriptor for an algorithm and activation layout; nil where
        // oneDNN has no implementation (Winograd needs AVX-512 and its own layouts).
        func forwardDescriptor(_ algorithm: dnnl_alg_kind_t, _ src: dnnl_memory_desc_t,
                               _ dst: dnnl_memory_desc_t) -> dnnl_primitive_desc_t? {
            var desc = dnnl_convolution_desc_t()
            var s = src, w = anyWeights, d = dst
            let status = withUnsafePointer(to: &biasMD) { b in
                dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, algorithm, &s, &w,
                                                   hasBias ? b : nil, &d, strides, padL, padR)
            }
            guard status == dnnl_success else { return nil }
            // The jit preference was measured for FP32 kernels only; bf16 takes oneDNN's first choice.
            if algorithm == dnnl_convolution_direct && !reduced && Self.prefersJitForward(g) {
                return Self.firstImplementation(&desc, named: "jit:", context: context)
            }
            var pd: dnnl_primitive_desc_t?
            guard dnnl_primitive_desc_create(&pd, &desc, nil, context.engine, nil) == dnnl_success else { return nil }
            return pd
        }
        let anyLayout = memoryDesc(g.inputShape, dnnl_format_tag_any), anyOut = memoryDesc(g.outputShape, dnnl_format_tag_any)
        // oneDNN's Winograd is FP32 only (and its transforms round differently from a bf16 product):
        // a bf16 plan is always direct.
        if !reduced && Self.prefersWinograd(g), let pd = forwardDescriptor(dnnl_convolution_winograd, anyLayout, anyOut),
           Self.backwardSupported(dnnl_convolution_winograd, src: anyLayout, weights: anyWeights, dst: anyOut,
                                  strides: strides, padL: padL, padR: padR, hint: pd, context: context) {
            algorithm = dnnl_convolution_winograd
            (inSrcMD, outSrcMD, inDstMD, outDstMD) = (anyLayout, anyLayout, anyOut, anyOut)
            forwardPD = pd
        } else {
            algorithm = dnnl_convolution_direct
            inSrcMD = memoryDesc(g.inputShape, dnnl_nhwc, inputType)
            inDstMD = memoryDesc(g.outputShape, dnnl_nhwc, inputType)
            (outSrcMD, outDstMD) = (userSrcMD, userDstMD)
            guard let pd = forwardDescriptor(dnnl_convolution_direct, inSrcMD, outDstMD) else {
                preconditionFailure("oneDNN: no forward convolution for \(g)")
            }
            forwardPD = pd
        }
        var prim: dnnl_primitive_t?
        dnnlCheck(dnnl_primitive_create(&prim, forwardPD), "forward primitive \(g)")
        forward = prim!
        src = DNNLPort(user: userSrcMD, inner: Self.query(forwardPD, dnnl_query_src_md), output: false, context: context)
        weights = DNNLPort(user: userWeightsMD, inner: Self.query(forwardPD, dnnl_query_weights_md), output: false, context: context)
        dst = DNNLPort(user: userDstMD, inner: Self.query(forwardPD, dnnl_query_dst_md), output: true, context: context)
        if hasBias {
            var b: dnnl_memory_t?
            dnnlCheck(dnnl_memory_create(&b, &biasMD, context.engine, nil), "bias memory")
            bias = b
        } else {
            bias = nil
        }
    }

    deinit {
        dnnl_primitive_destroy(forward)
        dnnl_primitive_desc_destroy(forwardPD)
        if let bias { dnnl_memory_destroy(bias) }
    }

    /// Whether both backward directions of `algorithm` exist for these descriptors (a plan uses
    /// one algorithm for all three directions).
    static func backwardSupported(_ algorithm: dnnl_alg_kind_t, src: dnnl_memory_desc_t, weights: dnnl_memory_desc_t,
                                  dst: dnnl_memory_desc_t, strides: [Int64], padL: [Int64], padR: [Int64],
                                  hint: dnnl_primitive_desc_t, context: DNNLContext) -> Bool {
        var s = src, w = weights, d = dst
        var data = dnnl_convolution_desc_t(), filter = dnnl_convolution_desc_t()
        guard dnnl_convolution_backward_data_desc_init(&data, algorithm, &s, &w, &d, strides, padL, padR) == dnnl_success,
              dnnl_convolution_backward_weights_desc_init(&filter, algorithm, &s, &w, nil, &d, strides, padL, padR) == dnnl_success
        else { return false }
        for var desc in [data, filter] {
            var pd: dnnl_primitive_desc_t?
            guard dnnl_primitive_desc_create(&pd, &desc, nil, context.engine, hint) == dnnl_success else { return false }
            dnnl_primitive_desc_destroy(pd)
        }
        return true
    }

    /// oneDNN's names of the kernels of the three directions (`brgconv:avx512_core_bf16`, ...):
    /// what tests and bench/cpu-bf16.md check against the reference loops (`ref:any`).
    var implementations: [String] {
        [forwardPD, backwardData.pd, backwardWeights.pd].map { pd in
            var name: UnsafePointer<CChar>?
            guard dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success, let name else { return "?" }
            return String(cString: name)
        }
    }

    static func query(_ pd: dnnl_primitive_desc_t, _ what: dnnl_query_t, _ index: Int32 = 0) -> dnnl_memory_desc_t {
        guard let md = dnnl_primitive_desc_query_md(pd, what, index) else { preconditionFailure("oneDNN: no \(what) md") }
        return md.pointee
    }

    static func create(_ desc: inout dnnl_convolution_desc_t, hint: dnnl_primitive_desc_t, context: DNNLContext,
                       _ what: String) -> (dnnl_primitive_desc_t, dnnl_primitive_t) {
        var pd: dnnl_primitive_desc_t?
        dnnlCheck(dnnl_primitive_desc_create(&pd, &desc, nil, context.engine, hint), what)
        var prim: dnnl_primitive_t?
        dnnlCheck(dnnl_primitive_create(&prim, pd), what)
        return (pd!, prim!)
    }

    final class BackwardData {
        let pd: dnnl_primitive_desc_t, primitive: dnnl_primitive_t
        let diffDst, weights, diffSrc: DNNLPort
        init(_ plan: DNNLConvolutionPlan) {
            let g = plan.geometry, context = plan.context
            var desc = dnnl_convolution_desc_t()
            var ds = plan.outSrcMD, w = plan.anyWeightsMD, dd = plan.inDstMD
            dnnlCheck(dnnl_convolution_backward_data_desc_init(&desc, plan.algorithm, &ds, &w, &dd,
                                                               plan.strides, plan.padL, plan.padR),
                      "backward-data descriptor \(g)")
            (pd, primitive) = DNNLConvolutionPlan.create(&desc, hint: plan.forwardPD, context: context, "backward-data \(g)")
            diffDst = DNNLPort(user: plan.userDstMD, inner: DNNLConvolutionPlan.query(pd, dnnl_query_diff_dst_md),
                               output: false, context: context)
            weights = DNNLPort(user: plan.userWeightsMD, inner: DNNLConvolutionPlan.query(pd, dnnl_query_weights_md),
                               output: false, context: context)
            diffSrc = DNNLPort(user: plan.userSrcMD, inner: DNNLConvolutionPlan.query(pd, dnnl_query_diff_src_md),
                               output: true, context: context)
        }
        deinit { dnnl_primitive_destroy(primitive); dnnl_primitive_desc_destroy(pd) }
    }

    final class BackwardWeights {
        let pd: dnnl_primitive_desc_t, primitive: dnnl_primitive_t
        let src, diffDst, diffWeights: DNNLPort
        init(_ plan: DNNLConvolutionPlan) {
            let g = plan.geometry, context = plan.context
            var desc = dnnl_convolution_desc_t()
            var s = plan.inSrcMD, dw = plan.anyDiffWeightsMD, dd = plan.inDstMD
            dnnlCheck(dnnl_convolution_backward_weights_desc_init(&desc, plan.algorithm, &s, &dw, nil, &dd,
                                                                  plan.strides, plan.padL, plan.padR),
                      "backward-weights descriptor \(g)")
            (pd, primitive) = DNNLConvolutionPlan.create(&desc, hint: plan.forwardPD, context: context, "backward-weights \(g)")
            src = DNNLPort(user: plan.userSrcMD, inner: DNNLConvolutionPlan.query(pd, dnnl_query_src_md),
                           output: false, context: context)
            diffDst = DNNLPort(user: plan.userDstMD, inner: DNNLConvolutionPlan.query(pd, dnnl_query_diff_dst_md),
                               output: false, context: context)
            diffWeights = DNNLPort(user: plan.userWeightsMD, inner: DNNLConvolutionPlan.query(pd, dnnl_query_diff_weights_md),
                                   output: true, accumulating: true, context: context)
        }
        deinit { dnnl_primitive_destroy(primitive); dnnl_primitive_desc_destroy(pd) }
    }
}

extension CPUBackend {
    /// Throws, saying what is missing and how to install it, when oneDNN (libdnnl.so.2), which
    /// runs the CPU convolutions, cannot be opened. `BackendFactory` asks before it hands out a
    /// CPU backend, so that a missing library is one line, not a failed precondition mid-run.
    public static func checkRuntime() throws {
        var message = [CChar](repeating: 0, count: 1024)
        if strata_dnnl_load(&message, Int32(message.count)) != 0 {
            throw DeviceUnavailable(device: "cpu", reason: "oneDNN is missing: " + String(cString: message))
        }
    }
}

/// Workspace slots of the oneDNN convolutions' layout copies.
private enum DNNLSlot {
    static let src = 0xD0_00
    static let dst = 0xD1_00
    static let weights = 0xD2_00
}

extension CPUBackend {
    private func scratch(_ slot: Int, _ port: DNNLPort) -> () -> UnsafeMutablePointer<Float> {
        { self.workspace.buffer(slot: slot, count: (port.innerBytes + 3) / 4) }
    }

    func dnnlConvolutionForward(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, bias: Tensor?, output y: Tensor) {
        let context = dnnl
        let plan = context.plan(g, bias: bias != nil, precision: precision)
        context.useThreads()
        let xm = plan.src.bind(x.hostPointer, scratch: scratch(DNNLSlot.src, plan.src))
        let wm = plan.weights.bind(w.hostPointer, scratch: scratch(DNNLSlot.weights, plan.weights))
        let ym = plan.dst.bind(y.hostPointer, scratch: scratch(DNNLSlot.dst, plan.dst))
        plan.src.reorderIn(context)
        plan.weights.reorderIn(context)
        var args = [(DNNL_ARG_SRC, xm), (DNNL_ARG_WEIGHTS, wm), (DNNL_ARG_DST, ym)]
        if let bias, let bm = plan.bias {
            dnnlCheck(dnnl_memory_set_data_handle(bm, bias.hostPointer), "set_data_handle")
            args.append((DNNL_ARG_BIAS, bm))
        }
        context.execute(plan.forward, args, "convolution forward \(g)")
        plan.dst.reorderOut(context)
    }

    func dnnlConvolutionBackwardData(_ g: ConvGeometry, gradOutput dy: Tensor, weight w: Tensor, gradInput dx: Tensor) {
        let context = dnnl
        let plan = context.plan(g, bias: false, precision: precision).backwardData
        context.useThreads()
        let dym = plan.diffDst.bind(dy.hostPointer, scratch: scratch(DNNLSlot.dst, plan.diffDst))
        let wm = plan.weights.bind(w.hostPointer, scratch: scratch(DNNLSlot.weights, plan.weights))
        let dxm = plan.diffSrc.bind(dx.hostPointer, scratch: scratch(DNNLSlot.src, plan.diffSrc))
        plan.diffDst.reorderIn(context)
        plan.weights.reorderIn(context)
        context.execute(plan.primitive, [(DNNL_ARG_DIFF_DST, dym), (DNNL_ARG_WEIGHTS, wm), (DNNL_ARG_DIFF_SRC, dxm)],
                        "convolution backward-data \(g)")
        plan.diffSrc.reorderOut(context)
    }

    func dnnlConvolutionBackwardFilter(_ g: ConvGeometry, input x: Tensor, gradOutput dy: Tensor,
                                       gradWeight dw: Tensor, mode: GradMode) {
        let context = dnnl
        let plan = context.plan(g, bias: false, precision: precision).backwardWeights
        context.useThreads()
        let xm = plan.src.bind(x.hostPointer, scratch: scratch(DNNLSlot.src, plan.src))
        let dym = plan.diffDst.bind(dy.hostPointer, scratch: scratch(DNNLSlot.dst, plan.diffDst))
        let dwm = plan.diffWeights.bind(dw.hostPointer, scratch: scratch(DNNLSlot.weights, plan.diffWeights))
        plan.src.reorderIn(context)
        plan.diffDst.reorderIn(context)
        context.execute(plan.primitive, [(DNNL_ARG_SRC, xm), (DNNL_ARG_DIFF_DST, dym), (DNNL_ARG_DIFF_WEIGHTS, dwm)],
                        "convolution backward-weights \(g)")
        plan.diffWeights.reorderOut(context, accumulate: mode == .accumulate)
    }
}
