#if CUDA
import CCuda

// cuDNN convolutions (NCHW or NHWC descriptors by the backend's layout; FP32 operands, or bf16 /
// fp16 copies of them under a reduced precision, CUDAPrecision.swift): descriptors owned by final
// classes, one plan per ConvGeometry and precision with the algorithms cudnnFind* measured, a
// shared workspace grown on demand.

extension CUDALayout {
    /// The cuDNN format of a rank-4 tensor (and of the filter: NHWC is KRSC, i.e. OHWI) stored so.
    var cudnnFormat: cudnnTensorFormat_t { self == .nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW }
}

/// A 4-D tensor descriptor (float32 unless `type` says otherwise), NCHW or NHWC (`format`); the
/// dimensions are always given logically (N, C, H, W). Rank-2 shapes (N, C) read as (N, C, 1, 1).
final class TensorDescriptor {
    let handle: cudnnTensorDescriptor_t?

    init(n: Int, c: Int, h: Int, w: Int, format: cudnnTensorFormat_t = CUDNN_TENSOR_NCHW,
         type: cudnnDataType_t = CUDNN_DATA_FLOAT) throws {
        var d: cudnnTensorDescriptor_t?
        try CUDACalls.cudnn("cudnnCreateTensorDescriptor") { cudnnCreateTensorDescriptor(&d) }
        handle = d
        let formatName = format == CUDNN_TENSOR_NHWC ? "NHWC" : "NCHW"
        try CUDACalls.cudnn("cudnnSetTensor4dDescriptor(\(n)x\(c)x\(h)x\(w) \(formatName))") {
            cudnnSetTensor4dDescriptor(d, format, type, Int32(n), Int32(c), Int32(h), Int32(w))
        }
    }

    deinit { cudnnDestroyTensorDescriptor(handle) }
}

final class FilterDescriptor {
    let handle: cudnnFilterDescriptor_t?

    /// `format` NHWC: the weights are stored (O, KH, KW, I), the backend's channels-last order.
    init(_ g: ConvGeometry, format: cudnnTensorFormat_t = CUDNN_TENSOR_NCHW, type: cudnnDataType_t = CUDNN_DATA_FLOAT) throws {
        var d: cudnnFilterDescriptor_t?
        try CUDACalls.cudnn("cudnnCreateFilterDescriptor") { cudnnCreateFilterDescriptor(&d) }
        handle = d
        try CUDACalls.cudnn("cudnnSetFilter4dDescriptor") {
            cudnnSetFilter4dDescriptor(d, type, format, Int32(g.outChannels),
                                       Int32(g.inChannels / g.groups), Int32(g.kernelH), Int32(g.kernelW))
        }
    }

    deinit { cudnnDestroyFilterDescriptor(handle) }
}

final class ConvolutionDescriptor {
    let handle: cudnnConvolutionDescriptor_t?

    /// `computeType`: the accumulator's type (FP32 in every precision).
    init(_ g: ConvGeometry, computeType: cudnnDataType_t = CUDNN_DATA_FLOAT) throws {
        var d: cudnnConvolutionDescriptor_t?
        try CUDACalls.cudnn("cudnnCreateConvolutionDescriptor") { cudnnCreateConvolutionDescriptor(&d) }
        handle = d
        // CROSS_CORRELATION: what deep learning calls convolution (no kernel flip), as the CPU does.
        try CUDACalls.cudnn("cudnnSetConvolution2dDescriptor") {
            cudnnSetConvolution2dDescriptor(d, Int32(g.padH), Int32(g.padW), Int32(g.strideH), Int32(g.strideW),
                                            1, 1, CUDNN_CROSS_CORRELATION, computeType)
        }
        // A grouped convolution (trial groups): the filter descriptor holds Cin/G input channels.
        if g.groups > 1 {
            try CUDACalls.cudnn("cudnnSetConvolutionGroupCount(\(g.groups))") { cudnnSetConvolutionGroupCount(d, Int32(g.groups)) }
        }
    }

    func setMathType(_ type: cudnnMathType_t) throws {
        try CUDACalls.cudnn("cudnnSetConvolutionMathType") { cudnnSetConvolutionMathType(handle, type) }
    }

    deinit { cudnnDestroyConvolutionDescriptor(handle) }
}

/// The three directions of a convolution, each with its own cuDNN algorithm search.
enum ConvolutionDirection: Int, CaseIterable, CustomStringConvertible {
    case forward, backwardData, backwardFilter

    var description: String {
        switch self {
        case .forward: "forward"
        case .backwardData: "backward-data"
        case .backwardFilter: "backward-filter"
        }
    }
}

/// One row of a cudnnFind* answer, whatever the direction.
struct ConvolutionAlgorithm: Equatable {
    var algorithm: Int32
    var status: cudnnStatus_t
    var mathType: cudnnMathType_t
    var memory: Int

    init(algorithm: Int32, status: cudnnStatus_t, mathType: cudnnMathType_t, memory: Int) {
        self.algorithm = algorithm; self.status = status; self.mathType = mathType; self.memory = memory
    }
    init(_ p: cudnnConvolutionFwdAlgoPerf_t) {
        self.init(algorithm: Int32(bitPattern: p.algo.rawValue), status: p.status, mathType: p.mathType, memory: p.memory)
    }
    init(_ p: cudnnConvolutionBwdDataAlgoPerf_t) {
        self.init(algorithm: Int32(bitPattern: p.algo.rawValue), status: p.status, mathType: p.mathType, memory: p.memory)
    }
    init(_ p: cudnnConvolutionBwdFilterAlgoPerf_t) {
        self.init(algorithm: Int32(bitPattern: p.algo.rawValue), status: p.status, mathType: p.mathType, memory: p.memory)
    }

    /// Whether a measured result may be used. Strict FP32 takes only `CUDNN_FMA_MATH`: both the
    /// tensor-op types and `CUDNN_DEFAULT_MATH` (which allows TF32 on sm_80 and newer) would
    /// round inputs to TF32.
    func usable(strictFP32: Bool) -> Bool {
        status == CUDNN_STATUS_SUCCESS && (!strictFP32 || mathType == CUDNN_FMA_MATH)
    }

    /// Whether the algorithm multiplies the operands as given and sums the products (the GEMM
    /// family: implicit, precomputed, explicit GEMM, direct), rather than in a transformed domain
    /// (FFT, Winograd), whose rounding is not that of the inputs. Under a reduced precision only
    /// these are used, so the result is what the format promises and what `selftest` checks:
    /// the inputs rounded once, products summed in FP32 (Verification/CUDAPrecisionChecks.swift).
    func sumsProducts(_ direction: ConvolutionDirection) -> Bool {
        switch direction {
        case .forward: algorithm <= Int32(CUDNN_CONVOLUTION_FWD_ALGO_DIRECT.rawValue)       // 0...3
        case .backwardData: algorithm <= Int32(CUDNN_CONVOLUTION_BWD_DATA_ALGO_1.rawValue)  // 0, 1
        case .backwardFilter: algorithm == Int32(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0.rawValue)
            || algorithm == Int32(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1.rawValue)
            || algorithm == Int32(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3.rawValue)
        }
    }
}

/// The algorithm of each direction of one convolution shape, searched on the direction's first
/// use only: an evaluation batch size (or a last partial batch) runs forward alone and pays for
/// one search, not three. Before each search the allocator's cache is given back to the driver,
/// because cudnnFind* allocates its own trial workspaces: with every freed block still cached,
/// fast algorithms that need a large workspace would fail the trial and a slow one would be
/// kept for the rest of the run.
final class ConvolutionAlgorithms {
    let strictFP32: Bool
    /// A reduced precision: GEMM-family algorithms only (`ConvolutionAlgorithm.sumsProducts`).
    let productsOnly: Bool
    let allocator: CUDAAllocator
    /// Measures a direction: cudnnFind*'s results, best first.
    let search: (ConvolutionDirection) throws -> [ConvolutionAlgorithm]
    private var chosen: [ConvolutionAlgorithm?] = [nil, nil, nil]

    init(strictFP32: Bool, productsOnly: Bool = false, allocator: CUDAAllocator,
         search: @escaping (ConvolutionDirection) throws -> [ConvolutionAlgorithm]) {
        self.strictFP32 = strictFP32
        self.productsOnly = productsOnly
        self.allocator = allocator
        self.search = search
    }

    /// The direction's algorithm, searched now if this is its first use; `isNew` says so (the
    /// caller then sets the algorithm's math type on the direction's descriptor).
    func choice(_ direction: ConvolutionDirection, what: @autoclosure () -> String) throws -> (ConvolutionAlgorithm, isNew: Bool) {
        if let c = chosen[direction.rawValue] { return (c, false) }
        try allocator.releaseCache()
        let results = try search(direction)
        guard let c = results.first(where: {
            $0.usable(strictFP32: strictFP32) && (!productsOnly || $0.sumsProducts(direction))
        }) else {
            throw CUDAError(library: .cudnn, status: .init(rawValue: Int32(CUDNN_STATUS_NOT_SUPPORTED.rawValue)),
                            call: "cudnnFind \(direction) algorithm (\(what()))",
                            detail: "no usable algorithm among \(results.count)\(strictFP32 ? " (strict FP32 takes FMA math only)" : "")"
                                + (productsOnly ? " (a reduced precision takes GEMM-family algorithms only)" : ""))
        }
        chosen[direction.rawValue] = c
        return (c, true)
    }
}

/// Everything cuDNN needs for one convolution shape in one layout and precision: descriptors
/// made once (x, w and y in the precision's operand type), algorithms chosen per direction on
/// first use (`ConvolutionAlgorithms`).
final class ConvolutionPlan {
    let geometry: ConvGeometry
    let layout: CUDALayout
    let precision: Precision
    let x: TensorDescriptor, y: TensorDescriptor
    let w: FilterDescriptor
    /// One descriptor per direction: each carries the math type of the algorithm chosen for it.
    let forwardConv: ConvolutionDescriptor, dataConv: ConvolutionDescriptor, filterConv: ConvolutionDescriptor
    private(set) var algorithms: ConvolutionAlgorithms!

    /// `strictFP32` matters at `.fp32` only (FMA math, no TF32); a reduced precision asks for
    /// tensor-op math.
    init(_ g: ConvGeometry, layout: CUDALayout, precision: Precision = .fp32, dnn: cudnnHandle_t?, strictFP32: Bool,
         allocator: CUDAAllocator) throws {
        geometry = g
        self.layout = layout
        self.precision = precision
        let format = layout.cudnnFormat
        let types = CUDAPrecisionFormats(precision)
        x = try TensorDescriptor(n: g.batch, c: g.inChannels, h: g.height, w: g.width, format: format, type: types.cudnnData)
        y = try TensorDescriptor(n: g.batch, c: g.outChannels, h: g.outHeight, w: g.outWidth, format: format, type: types.cudnnData)
        w = try FilterDescriptor(g, format: format, type: types.cudnnData)
        forwardConv = try ConvolutionDescriptor(g, computeType: types.cudnnCompute)
        dataConv = try ConvolutionDescriptor(g, computeType: types.cudnnCompute)
        filterConv = try ConvolutionDescriptor(g, computeType: types.cudnnCompute)
        let strictFP32 = strictFP32 && precision == .fp32
        let math = precision != .fp32 ? CUDNN_TENSOR_OP_MATH : strictFP32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH
        for d in [forwardConv, dataConv, filterConv] { try d.setMathType(math) }
        let (x, y, w) = (x, y, w)
        let (forwardConv, dataConv, filterConv) = (forwardConv, dataConv, filterConv)
        algorithms = ConvolutionAlgorithms(strictFP32: strictFP32, productsOnly: precision != .fp32, allocator: allocator) { direction in
            let requested: Int32 = 8
            var returned: Int32 = 0
            switch direction {
            case .forward:
                var r = [cudnnConvolutionFwdAlgoPerf_t](repeating: .init(), count: Int(requested))
                try CUDACalls.cudnn("cudnnFindConvolutionForwardAlgorithm(\(g))") {
                    cudnnFindConvolutionForwardAlgorithm(dnn, x.handle, w.handle, forwardConv.handle, y.handle,
                                                         requested, &returned, &r)
                }
                return r.prefix(Int(returned)).map(ConvolutionAlgorithm.init)
            case .backwardData:
                var r = [cudnnConvolutionBwdDataAlgoPerf_t](repeating: .init(), count: Int(requested))
                try CUDACalls.cudnn("cudnnFindConvolutionBackwardDataAlgorithm(\(g))") {
                    cudnnFindConvolutionBackwardDataAlgorithm(dnn, w.handle, y.handle, dataConv.handle, x.handle,
                                                              requested, &returned, &r)
                }
                return r.prefix(Int(returned)).map(ConvolutionAlgorithm.init)
            case .backwardFilter:
                var r = [cudnnConvolutionBwdFilterAlgoPerf_t](repeating: .init(), count: Int(requested))
                try CUDACalls.cudnn("cudnnFindConvolutionBackwardFilterAlgorithm(\(g))") {
                    cudnnFindConvolutionBackwardFilterAlgorithm(dnn, x.handle, y.handle, filterConv.handle, w.handle,
                                                                requested, &returned, &r)
                }
                return r.prefix(Int(returned)).map(ConvolutionAlgorithm.init)
            }
        }
    }

    func descriptor(_ direction: ConvolutionDirection) -> ConvolutionDescriptor {
        switch direction {
        case .forward: forwardConv
        case .backwardData: dataConv
        case .backwardFilter: filterConv
        }
    }

    /// The direction's algorithm (searched on first use; its math type then set on the descriptor).
    func algorithm(_ direction: ConvolutionDirection) throws -> ConvolutionAlgorithm {
        let (a, isNew) = try algorithms.choice(direction, what: "\(geometry), \(layout.rawValue.uppercased()), \(precision.rawValue)")
        if isNew { try descriptor(direction).setMathType(a.mathType) }
        return a
    }
}

/// A convolution plan's cache key: the shape, the memory order and the operand type its
/// descriptors describe.
struct ConvPlanKey: Hashable {
    let geometry: ConvGeometry
    let layout: CUDALayout
    var precision: Precision = .fp32
}

extension CUDABackend {
    /// The plan for `g` in the backend's layout and precision (descriptors made the first time
    /// the shape is seen; algorithms measured per direction on first use). The key holds the
    /// layout and precision too, so a plan is never used for memory of the other order or type.
    func plan(_ g: ConvGeometry) throws -> ConvolutionPlan {
        let key = ConvPlanKey(geometry: g, layout: layout, precision: precision)
        if let p = convPlans[key] { return p }
        let p = try ConvolutionPlan(g, layout: layout, precision: precision, dnn: dnn, strictFP32: strictFP32,
                                    allocator: allocator)
        convPlans[key] = p
        return p
    }

    /// The cuDNN format of `t`'s memory: the backend's layout for rank 4, NCHW for (N, C) (read
    /// as (N, C, 1, 1), where both orders coincide).
    func cudnnFormat(_ t: Tensor) -> cudnnTensorFormat_t {
        isChannelsLast(t) ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW
    }

    /// A cached descriptor for an (N, C) or (N, C, H, W) shape, in the format its memory has.
    func descriptor(_ t: Tensor) throws -> TensorDescriptor {
        let format = cudnnFormat(t)
        let key = t.shape + [Int(format.rawValue)]   // rank 2 and rank 4 never share a key
        if let d = tensorDescriptors[key] { return d }
        let (n, c, h, w) = t.nchw
        let d = try TensorDescriptor(n: n, c: c, h: h, w: w, format: format)
        tensorDescriptors[key] = d
        return d
    }

    /// The (1, C, 1, 1) descriptor of a per-channel vector (bias, batch-norm parameters) used
    /// with a tensor of `format`.
    func biasDescriptor(_ channels: Int, format: cudnnTensorFormat_t = CUDNN_TENSOR_NCHW) throws -> TensorDescriptor {
        let key = [1, channels, 1, 1, -1, Int(format.rawValue)]   // -1 keeps it apart from a real (1, C, 1, 1) tensor
        if let d = tensorDescriptors[key] { return d }
        let d = try TensorDescriptor(n: 1, c: channels, h: 1, w: 1, format: format)
        tensorDescriptors[key] = d
        return d
    }

    public func conv2dForward(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, bias: Tensor?, output y: Tensor) {
        ShapeChecks.conv2d(g, input: x, weight: w, output: y, bias: bias, "conv2dForward")
        recordFailure {
            let p = try plan(g)
            let a = try p.algorithm(.forward)
            let ws = try workspace.reserve(a.memory)
            var alpha: Float = 1, beta: Float = 0
            let (xs, ws16, ys) = precision == .fp32 ? (x.rawAddress, w.rawAddress, y.rawAddress)
                : (try reducedCopy(x, slot: 0), try reducedCopy(w, slot: 1), try reducedOutput(for: y, slot: 2))
            try queuedCUDNN("cudnnConvolutionForward(\(g), \(precision.rawValue))") {
                cudnnConvolutionForward(dnn, &alpha, p.x.handle, xs, p.w.handle, ws16, p.forwardConv.handle,
                                        cudnnConvolutionFwdAlgo_t(rawValue: UInt32(bitPattern: a.algorithm)), ws, a.memory,
                                        &beta, p.y.handle, ys)
            }
            if precision != .fp32 { widen(ys, into: y, accumulate: false) }
        }
        if let bias { addBias(y, bias: bias) }
    }

    public func conv2dBackwardData(_ g: ConvGeometry, gradOutput dy: Tensor, weight w: Tensor, gradInput dx: Tensor) {
        ShapeChecks.conv2d(g, input: dx, weight: w, output: dy, "conv2dBackwardData")
        recordFailure {
            let p = try plan(g)
            let a = try p.algorithm(.backwardData)
            let ws = try workspace.reserve(a.memory)
            var alpha: Float = 1, beta: Float = 0
            let (ws16, dys, dxs) = precision == .fp32 ? (w.rawAddress, dy.rawAddress, dx.rawAddress)
                : (try reducedCopy(w, slot: 0), try reducedCopy(dy, slot: 1), try reducedOutput(for: dx, slot: 2))
            try queuedCUDNN("cudnnConvolutionBackwardData(\(g), \(precision.rawValue))") {
                cudnnConvolutionBackwardData(dnn, &alpha, p.w.handle, ws16, p.y.handle, dys, p.dataConv.handle,
                                             cudnnConvolutionBwdDataAlgo_t(rawValue: UInt32(bitPattern: a.algorithm)), ws, a.memory,
                                             &beta, p.x.handle, dxs)
            }
            if precision != .fp32 { widen(dxs, into: dx, accumulate: false) }
        }
    }

    public func conv2dBackwardFilter(_ g: ConvGeometry, input x: Tensor, gradOutput dy: Tensor,
                                     gradWeight dw: Tensor, mode: GradMode) {
        ShapeChecks.conv2d(g, input: x, weight: dw, output: dy, "conv2dBackwardFilter")
        recordFailure {
            let p = try plan(g)
            let a = try p.algorithm(.backwardFilter)
            let ws = try workspace.reserve(a.memory)
            // Reduced: cuDNN writes the 16-bit gradient (beta 0) and the widening adds it to the
            // FP32 one, so accumulation stays FP32.
            let reduced = precision != .fp32
            var alpha: Float = 1, beta: Float = mode == .accumulate && !reduced ? 1 : 0
            let (xs, dys, dws) = !reduced ? (x.rawAddress, dy.rawAddress, dw.rawAddress)
                : (try reducedCopy(x, slot: 0), try reducedCopy(dy, slot: 1), try reducedOutput(for: dw, slot: 2))
            try queuedCUDNN("cudnnConvolutionBackwardFilter(\(g), \(precision.rawValue))") {
                cudnnConvolutionBackwardFilter(dnn, &alpha, p.x.handle, xs, p.y.handle, dys, p.filterConv.handle,
                                               cudnnConvolutionBwdFilterAlgo_t(rawValue: UInt32(bitPattern: a.algorithm)), ws, a.memory,
                                               &beta, p.w.handle, dws)
            }
            if reduced { widen(dws, into: dw, accumulate: mode == .accumulate) }
        }
    }

    /// `y[n, c, ...] += bias[c]` (cudnnAddTensor broadcasts the (1, C, 1, 1) bias).
    public func addBias(_ y: Tensor, bias: Tensor) {
        ShapeChecks.bias(y, bias: bias, "addBias")
        let c = y.nchw.c
        recordFailure {
            let yd = try descriptor(y), bd = try biasDescriptor(c, format: cudnnFormat(y))
            var alpha: Float = 1, beta: Float = 1
            try queuedCUDNN("cudnnAddTensor") {
                cudnnAddTensor(dnn, &alpha, bd.handle, bias.rawAddress, &beta, yd.handle, y.rawAddress)
            }
        }
    }

    /// `db (+)= sum of dy over N, H, W`: our column sums under `.nhwc` (CUDAChannelReductions.swift),
    /// else cudnnConvolutionBackwardBias.
    public func biasBackward(gradOutput dy: Tensor, gradBias db: Tensor, mode: GradMode) {
        ShapeChecks.bias(dy, bias: db, "biasBackward")
        if usesChannelKernels(dy) { return channelBiasBackward(gradOutput: dy, gradBias: db, mode: mode) }
        let c = dy.nchw.c
        recordFailure {
            let yd = try descriptor(dy), bd = try biasDescriptor(c, format: cudnnFormat(dy))
            var alpha: Float = 1, beta: Float = mode == .accumulate ? 1 : 0
            try queuedCUDNN("cudnnConvolutionBackwardBias") {
                cudnnConvolutionBackwardBias(dnn, &alpha, yd.handle, dy.rawAddress, &beta, bd.handle, db.rawAddress)
            }
        }
    }
}
#endif
