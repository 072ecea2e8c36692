#if CUDA
import CCuda

// cuDNN convolutions (NCHW float32): descriptors owned by final classes, one plan per
// ConvGeometry with the algorithms cudnnFind* measured, a shared workspace grown on demand.

/// A 4-D NCHW float32 tensor descriptor; rank-2 shapes (N, C) read as (N, C, 1, 1).
final class TensorDescriptor {
    let handle: cudnnTensorDescriptor_t?

    init(n: Int, c: Int, h: Int, w: Int) throws {
        var d: cudnnTensorDescriptor_t?
        try CUDACalls.cudnn("cudnnCreateTensorDescriptor") { cudnnCreateTensorDescriptor(&d) }
        handle = d
        try CUDACalls.cudnn("cudnnSetTensor4dDescriptor(\(n)x\(c)x\(h)x\(w))") {
            cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, Int32(n), Int32(c), Int32(h), Int32(w))
        }
    }

    deinit { cudnnDestroyTensorDescriptor(handle) }
}

final class FilterDescriptor {
    let handle: cudnnFilterDescriptor_t?

    init(_ g: ConvGeometry) throws {
        var d: cudnnFilterDescriptor_t?
        try CUDACalls.cudnn("cudnnCreateFilterDescriptor") { cudnnCreateFilterDescriptor(&d) }
        handle = d
        try CUDACalls.cudnn("cudnnSetFilter4dDescriptor") {
            cudnnSetFilter4dDescriptor(d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, Int32(g.outChannels),
                                       Int32(g.inChannels), Int32(g.kernelH), Int32(g.kernelW))
        }
    }

    deinit { cudnnDestroyFilterDescriptor(handle) }
}

final class ConvolutionDescriptor {
    let handle: cudnnConvolutionDescriptor_t?

    init(_ g: ConvGeometry) throws {
        var d: cudnnConvolutionDescriptor_t?
        try CUDACalls.cudnn("cudnnCreateConvolutionDescriptor") { cudnnCreateConvolutionDescriptor(&d) }
        handle = d
        // CROSS_CORRELATION: what deep learning calls convolution (no kernel flip), as the CPU does.
        try CUDACalls.cudnn("cudnnSetConvolution2dDescriptor") {
            cudnnSetConvolution2dDescriptor(d, Int32(g.padH), Int32(g.padW), Int32(g.strideH), Int32(g.strideW),
                                            1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT)
        }
    }

    func setMathType(_ type: cudnnMathType_t) throws {
        try CUDACalls.cudnn("cudnnSetConvolutionMathType") { cudnnSetConvolutionMathType(handle, type) }
    }

    deinit { cudnnDestroyConvolutionDescriptor(handle) }
}

/// Everything cuDNN needs for one convolution shape, chosen once.
final class ConvolutionPlan {
    let x: TensorDescriptor, y: TensorDescriptor
    let w: FilterDescriptor
    /// One descriptor per direction: each carries the math type of the algorithm chosen for it.
    let forwardConv: ConvolutionDescriptor, dataConv: ConvolutionDescriptor, filterConv: ConvolutionDescriptor
    var forward = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM
    var backwardData = CUDNN_CONVOLUTION_BWD_DATA_ALGO_0
    var backwardFilter = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0
    var forwardBytes = 0, backwardDataBytes = 0, backwardFilterBytes = 0

    init(_ g: ConvGeometry, dnn: cudnnHandle_t?, strictFP32: Bool) throws {
        x = try TensorDescriptor(n: g.batch, c: g.inChannels, h: g.height, w: g.width)
        y = try TensorDescriptor(n: g.batch, c: g.outChannels, h: g.outHeight, w: g.outWidth)
        w = try FilterDescriptor(g)
        forwardConv = try ConvolutionDescriptor(g)
        dataConv = try ConvolutionDescriptor(g)
        filterConv = try ConvolutionDescriptor(g)
        let math = strictFP32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH
        for d in [forwardConv, dataConv, filterConv] { try d.setMathType(math) }
        /// Tensor-op results are skipped in strict mode: they would round inputs to TF32.
        func allowed(_ status: cudnnStatus_t, _ type: cudnnMathType_t) -> Bool {
            status == CUDNN_STATUS_SUCCESS
                && !(strictFP32 && (type == CUDNN_TENSOR_OP_MATH || type == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
        }
        let requested: Int32 = 8
        var returned: Int32 = 0

        var fwd = [cudnnConvolutionFwdAlgoPerf_t](repeating: .init(), count: Int(requested))
        try CUDACalls.cudnn("cudnnFindConvolutionForwardAlgorithm(\(g))") {
            cudnnFindConvolutionForwardAlgorithm(dnn, x.handle, w.handle, forwardConv.handle, y.handle,
                                                 requested, &returned, &fwd)
        }
        guard let f = fwd.prefix(Int(returned)).first(where: { allowed($0.status, $0.mathType) }) else {
            throw CUDAError(library: .cudnn, status: .init(rawValue: Int32(CUDNN_STATUS_NOT_SUPPORTED.rawValue)),
                            call: "cudnnFindConvolutionForwardAlgorithm(\(g))", detail: "no usable algorithm")
        }
        forward = f.algo; forwardBytes = f.memory
        try forwardConv.setMathType(f.mathType)

        var bwd = [cudnnConvolutionBwdDataAlgoPerf_t](repeating: .init(), count: Int(requested))
        try CUDACalls.cudnn("cudnnFindConvolutionBackwardDataAlgorithm(\(g))") {
            cudnnFindConvolutionBackwardDataAlgorithm(dnn, w.handle, y.handle, dataConv.handle, x.handle,
                                                      requested, &returned, &bwd)
        }
        guard let bd = bwd.prefix(Int(returned)).first(where: { allowed($0.status, $0.mathType) }) else {
            throw CUDAError(library: .cudnn, status: .init(rawValue: Int32(CUDNN_STATUS_NOT_SUPPORTED.rawValue)),
                            call: "cudnnFindConvolutionBackwardDataAlgorithm(\(g))", detail: "no usable algorithm")
        }
        backwardData = bd.algo; backwardDataBytes = bd.memory
        try dataConv.setMathType(bd.mathType)

        var bwf = [cudnnConvolutionBwdFilterAlgoPerf_t](repeating: .init(), count: Int(requested))
        try CUDACalls.cudnn("cudnnFindConvolutionBackwardFilterAlgorithm(\(g))") {
            cudnnFindConvolutionBackwardFilterAlgorithm(dnn, x.handle, y.handle, filterConv.handle, w.handle,
                                                        requested, &returned, &bwf)
        }
        guard let bf = bwf.prefix(Int(returned)).first(where: { allowed($0.status, $0.mathType) }) else {
            throw CUDAError(library: .cudnn, status: .init(rawValue: Int32(CUDNN_STATUS_NOT_SUPPORTED.rawValue)),
                            call: "cudnnFindConvolutionBackwardFilterAlgorithm(\(g))", detail: "no usable algorithm")
        }
        backwardFilter = bf.algo; backwardFilterBytes = bf.memory
        try filterConv.setMathType(bf.mathType)
    }
}

extension CUDABackend {
    private func checkShapes(_ g: ConvGeometry, x: Tensor, w: Tensor, y: Tensor) {
        precondition(x.shape == g.inputShape && w.shape == g.weightShape && y.shape == g.outputShape,
                     "\(g): x \(x.shape), w \(w.shape), y \(y.shape)")
    }

    /// The plan for `g`, measured by cudnnFind* the first time the shape is seen.
    func plan(_ g: ConvGeometry) throws -> ConvolutionPlan {
        if let p = convPlans[g] { return p }
        let p = try ConvolutionPlan(g, dnn: dnn, strictFP32: strictFP32)
        convPlans[g] = p
        return p
    }

    /// A cached descriptor for an (N, C) or (N, C, H, W) shape.
    func descriptor(_ t: Tensor) throws -> TensorDescriptor {
        if let d = tensorDescriptors[t.shape] { return d }
        let (n, c, h, w) = t.nchw
        let d = try TensorDescriptor(n: n, c: c, h: h, w: w)
        tensorDescriptors[t.shape] = d
        return d
    }

    func biasDescriptor(_ channels: Int) throws -> TensorDescriptor {
        let key = [1, channels, 1, 1, -1]   // -1 keeps it apart from a real (1, C, 1, 1) tensor
        if let d = tensorDescriptors[key] { return d }
        let d = try TensorDescriptor(n: 1, c: channels, h: 1, w: 1)
        tensorDescriptors[key] = d
        return d
    }

    public func conv2dForward(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, bias: Tensor?, output y: Tensor) {
        checkShapes(g, x: x, w: w, y: y)
        if let bias { precondition(bias.count == g.outChannels, "\(g): bias \(bias.shape)") }
        recordFailure {
            let p = try plan(g)
            let ws = try workspace.reserve(p.forwardBytes)
            var alpha: Float = 1, beta: Float = 0
            try CUDACalls.cudnn("cudnnConvolutionForward(\(g))") {
                cudnnConvolutionForward(dnn, &alpha, p.x.handle, x.rawAddress, p.w.handle, w.rawAddress,
                                        p.forwardConv.handle, p.forward, ws, p.forwardBytes, &beta, p.y.handle, y.rawAddress)
            }
        }
        if let bias { addBias(y, bias: bias) }
    }

    public func conv2dBackwardData(_ g: ConvGeometry, gradOutput dy: Tensor, weight w: Tensor, gradInput dx: Tensor) {
        checkShapes(g, x: dx, w: w, y: dy)
        recordFailure {
            let p = try plan(g)
            let ws = try workspace.reserve(p.backwardDataBytes)
            var alpha: Float = 1, beta: Float = 0
            try CUDACalls.cudnn("cudnnConvolutionBackwardData(\(g))") {
                cudnnConvolutionBackwardData(dnn, &alpha, p.w.handle, w.rawAddress, p.y.handle, dy.rawAddress,
                                             p.dataConv.handle, p.backwardData, ws, p.backwardDataBytes,
                                             &beta, p.x.handle, dx.rawAddress)
            }
        }
    }

    public func conv2dBackwardFilter(_ g: ConvGeometry, input x: Tensor, gradOutput dy: Tensor,
                                     gradWeight dw: Tensor, mode: GradMode) {
        checkShapes(g, x: x, w: dw, y: dy)
        recordFailure {
            let p = try plan(g)
            let ws = try workspace.reserve(p.backwardFilterBytes)
            var alpha: Float = 1, beta: Float = mode == .accumulate ? 1 : 0
            try CUDACalls.cudnn("cudnnConvolutionBackwardFilter(\(g))") {
                cudnnConvolutionBackwardFilter(dnn, &alpha, p.x.handle, x.rawAddress, p.y.handle, dy.rawAddress,
                                               p.filterConv.handle, p.backwardFilter, ws, p.backwardFilterBytes,
                                               &beta, p.w.handle, dw.rawAddress)
            }
        }
    }

    /// `y[n, c, ...] += bias[c]` (cudnnAddTensor broadcasts the (1, C, 1, 1) bias).
    public func addBias(_ y: Tensor, bias: Tensor) {
        let c = y.nchw.c
        precondition(bias.count == c, "addBias: bias \(bias.shape) for \(y.shape)")
        recordFailure {
            let yd = try descriptor(y), bd = try biasDescriptor(c)
            var alpha: Float = 1, beta: Float = 1
            try CUDACalls.cudnn("cudnnAddTensor") {
                cudnnAddTensor(dnn, &alpha, bd.handle, bias.rawAddress, &beta, yd.handle, y.rawAddress)
            }
        }
    }

    /// `db (+)= sum of dy over N, H, W` (cudnnConvolutionBackwardBias).
    public func biasBackward(gradOutput dy: Tensor, gradBias db: Tensor, mode: GradMode) {
        let c = dy.nchw.c
        precondition(db.count == c, "biasBackward: bias \(db.shape) for \(dy.shape)")
        recordFailure {
            let yd = try descriptor(dy), bd = try biasDescriptor(c)
            var alpha: Float = 1, beta: Float = mode == .accumulate ? 1 : 0
            try CUDACalls.cudnn("cudnnConvolutionBackwardBias") {
                cudnnConvolutionBackwardBias(dnn, &alpha, yd.handle, dy.rawAddress, &beta, bd.handle, db.rawAddress)
            }
        }
    }
}
#endif
