import CDNNL

// Batch norm's training forward and backward on oneDNN (bnorm_jit:avx512_core on our machines),
// plain and fused with the following ReLU (`dnnl_fuse_norm_relu`), on the backend's channels-last
// storage: x of (N, C) or (N, C, H, W) is N*H*W rows of C values, which is oneDNN's NHWC with
// H = W = 1 for (N, C). One plan per (shape, ReLU, epsilon), cached in the backend's `DNNLContext`.
// The inference forwards stay ours (one pass each, with their ReLU and residual epilogues)
// (CPUBatchNorm.swift), and so does the add + ReLU pass after oneDNN's batch norm in the training
// forward of batch norm + residual + ReLU (oneDNN 2.6's batch norm has no residual post-op), so
// that every training forward has oneDNN's statistics; bench/NOTES.md section 13.
//
// What oneDNN does not do, and this file does after its primitive:
// - the contract's running statistics (PyTorch's momentum, the unbiased variance n / (n - 1))
//   and `saveInvStd` = 1 / sqrt(var + eps) from oneDNN's batch mean and biased variance;
// - its backward wants the variance: recomputed from `saveInvStd` (1 / invStd^2 - eps, in Double:
//   the forward's variance to float rounding), since the contract carries only mean and 1/std;
// - NaN through the fused ReLU: oneDNN's ReLU turns NaN into 0 (bench/c/dnnl-bn-semantics.c),
//   our contract (and PyTorch) lets it through. A channel can only produce NaN when its mean,
//   variance, gamma or beta is not finite, so the forward checks those 4C values and, for such a
//   channel only, writes NaN back where the contract's map gives NaN and clears the mask there
//   (the contract's mask is `y > 0`, false for NaN; the jit kernel's bit already is clear, the
//   reference kernel's byte is set).
//
// The fused forward's workspace is oneDNN's: its ReLU mask (a bit per element for the jit kernel,
// a byte for the reference one), sized from oneDNN's own descriptor. The layer owns it
// (`batchNormReLUWorkspaceCount`) and hands the backward the one its forward wrote.
//
// oneDNN splits the statistics' reductions by thread, so results depend on the thread count (they
// are identical from run to run at one count), as the convolutions' already did; NOTES section 13.

/// The training-forward and backward batch-norm primitives of one (shape, ReLU, epsilon).
final class DNNLBatchNormPlan {
    struct Key: Hashable {
        var shape: [Int]    // (N, C, H, W); (N, C) as (N, C, 1, 1)
        var relu: Bool
        var epsilon: Float
    }

    let key: Key
    let training: dnnl_primitive_t
    let backward: dnnl_primitive_t
    /// Bytes of the fused ReLU's mask (0 without ReLU).
    let workspaceBytes: Int
    /// Whether that mask is a bit per element (the jit kernel) rather than a byte (the reference
    /// kernel), both in x's order: what the NaN fix-up clears (file header).
    let maskBits: Bool
    let src, dst, mean, variance, scale, shift, workspace, diffDst, diffSrc, diffScale, diffShift: dnnl_memory_t
    private let trainingPD, backwardPD: dnnl_primitive_desc_t

    init(_ key: Key, context: DNNLContext) {
        self.key = key
        let dataMD = memoryDesc(key.shape, dnnl_nhwc), channelMD = memoryDesc([key.shape[1]], dnnl_a)
        (trainingPD, workspaceBytes) = Self.trainingDescriptor(key, context: context)
        let elements = key.shape.reduce(1, *)
        maskBits = key.relu && workspaceBytes != elements
        precondition(!key.relu || workspaceBytes == elements || workspaceBytes == (elements + 7) / 8,
                     "oneDNN: batch-norm ReLU workspace of \(key) is \(workspaceBytes) bytes, neither a bit nor a byte per element")
        var desc = dnnl_batch_normalization_desc_t()
        var d = dataMD, dd = dataMD
        dnnlCheck(dnnl_batch_normalization_backward_desc_init(&desc, dnnl_backward, &dd, &d, key.epsilon, Self.flags(key.relu)),
                  "batch-norm backward descriptor \(key)")
        var pd: dnnl_primitive_desc_t?
        dnnlCheck(dnnl_primitive_desc_create(&pd, &desc, nil, context.engine, trainingPD), "batch-norm backward \(key)")
        backwardPD = pd!
        func primitive(_ pd: dnnl_primitive_desc_t) -> dnnl_primitive_t {
            var prim: dnnl_primitive_t?
            dnnlCheck(dnnl_primitive_create(&prim, pd), "batch-norm primitive \(key)")
            return prim!
        }
        training = primitive(trainingPD)
        backward = primitive(backwardPD)
        func memory(_ md: dnnl_memory_desc_t) -> dnnl_memory_t {
            var m = md, out: dnnl_memory_t?
            dnnlCheck(dnnl_memory_create(&out, &m, context.engine, nil), "memory_create")
            return out!
        }
        src = memory(dataMD); dst = memory(dataMD); diffDst = memory(dataMD); diffSrc = memory(dataMD)
        mean = memory(channelMD); variance = memory(channelMD); scale = memory(channelMD); shift = memory(channelMD)
        diffScale = memory(channelMD); diffShift = memory(channelMD)
        // Without ReLU there is no workspace; a bytes descriptor stands in, never passed.
        workspace = memory(key.relu ? DNNLConvolutionPlan.query(trainingPD, dnnl_query_workspace_md) : channelMD)
    }

    deinit {
        for p in [training, backward] { dnnl_primitive_destroy(p) }
        for pd in [trainingPD, backwardPD] { dnnl_primitive_desc_destroy(pd) }
        for m in [src, dst, mean, variance, scale, shift, workspace, diffDst, diffSrc, diffScale, diffShift] {
            dnnl_memory_destroy(m)
        }
    }

    /// Gamma and beta as separate tensors (no (2, C) copy), and the ReLU if fused.
    static func flags(_ relu: Bool) -> UInt32 {
        dnnl_use_scale.rawValue | dnnl_use_shift.rawValue | (relu ? dnnl_fuse_norm_relu.rawValue : 0)
    }

    /// The training forward's primitive descriptor and its workspace's size in bytes.
    static func trainingDescriptor(_ key: Key, context: DNNLContext) -> (dnnl_primitive_desc_t, Int) {
        var desc = dnnl_batch_normalization_desc_t()
        var d = memoryDesc(key.shape, dnnl_nhwc)
        dnnlCheck(dnnl_batch_normalization_forward_desc_init(&desc, dnnl_forward_training, &d, key.epsilon, flags(key.relu)),
                  "batch-norm forward descriptor \(key)")
        var pd: dnnl_primitive_desc_t?
        dnnlCheck(dnnl_primitive_desc_create(&pd, &desc, nil, context.engine, nil), "batch-norm forward \(key)")
        guard key.relu else { return (pd!, 0) }
        var ws = DNNLConvolutionPlan.query(pd!, dnnl_query_workspace_md)
        return (pd!, dnnl_memory_desc_get_size(&ws))
    }

    static func bind(_ m: dnnl_memory_t, _ t: Tensor) -> dnnl_memory_t { bind(m, t.hostPointer) }

    static func bind(_ m: dnnl_memory_t, _ p: UnsafeMutablePointer<Float>) -> dnnl_memory_t {
        dnnlCheck(dnnl_memory_set_data_handle(m, p), "set_data_handle")
        return m
    }
}

extension CPUBackend {
    /// oneDNN's ReLU mask for x of `shape`, in float32 elements rounded up.
    public func batchNormReLUWorkspaceCount(shape: [Int]) -> Int {
        let key = DNNLBatchNormPlan.Key(shape: batchNormDims(shape), relu: true, epsilon: 1e-5)
        // The size does not depend on epsilon; a descriptor alone answers (no primitive is made).
        let context = dnnl
        context.useThreads()
        let (pd, bytes) = DNNLBatchNormPlan.trainingDescriptor(key, context: context)
        dnnl_primitive_desc_destroy(pd)
        return (bytes + 3) / 4
    }

    public func batchNormForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor, momentum: Float, epsilon: Float) {
        // Also refuses one value per channel (as PyTorch does: its unbiased variance is undefined).
        ShapeChecks.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                             runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd)
        dnnlBatchNormTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar,
                              saveMean: saveMean, saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon, relu: nil)
    }

    /// oneDNN's batch norm with its fused ReLU, its mask into `workspace`; NaN put back (file header).
    public func batchNormReLUForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor, momentum: Float, epsilon: Float, workspace: Tensor?) {
        ShapeChecks.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                             runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                             "batchNormReLUForwardTraining")
        precondition(x.storage !== y.storage || x.offset != y.offset, "batchNormReLUForwardTraining: x aliases y")
        dnnlBatchNormTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar,
                              saveMean: saveMean, saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon,
                              relu: workspace ?? { preconditionFailure("batch norm + ReLU: no workspace (batchNormReLUWorkspaceCount)") }())
    }

    /// oneDNN's batch norm, then `y = max(y + residual, 0)` in one pass of ours (oneDNN 2.6 has no
    /// residual post-op): the unfused composition's bits, and the same statistics as every other
    /// training forward (NOTES section 13).
    public func batchNormAddReLUForwardTraining(input x: Tensor, residual: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor, momentum: Float, epsilon: Float) {
        ShapeChecks.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                             runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                             "batchNormAddReLUForwardTraining")
        ShapeChecks.batchNormResidual(input: x, residual: residual, output: y, "batchNormAddReLUForwardTraining")
        dnnlBatchNormTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar,
                              saveMean: saveMean, saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon, relu: nil)
        addReLUInPlace(y, residual: residual)
    }

    /// With xhat = (x - mean) * invStd over the channel's M = N*H*W values:
    /// `dbeta = sum dy`, `dgamma = sum dy*xhat`, `dx = gamma*invStd * (dy - dbeta/M - xhat*dgamma/M)`.
    public func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float) {
        ShapeChecks.batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                                      gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta)
        dnnlBatchNormBackward(input: x, gradOutput: dy, gamma: gamma, beta: nil, saveMean: saveMean, saveInvStd: saveInvStd,
                              gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode, epsilon: epsilon,
                              relu: nil)
    }

    /// The backward with dy masked by the ReLU mask its forward saved in `workspace` (y is not read).
    public func batchNormReLUBackward(input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gamma: Tensor, beta: Tensor, saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float, workspace: Tensor?) {
        ShapeChecks.batchNormReLUBackward(input: x, output: y, gradOutput: dy, gamma: gamma, beta: beta, saveMean: saveMean,
                                          saveInvStd: saveInvStd, gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta)
        dnnlBatchNormBackward(input: x, gradOutput: dy, gamma: gamma, beta: beta, saveMean: saveMean, saveInvStd: saveInvStd,
                              gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode, epsilon: epsilon,
                              relu: workspace ?? { preconditionFailure("batch norm + ReLU: no workspace (batchNormReLUWorkspaceCount)") }())
    }

    /// x's shape as oneDNN's (N, C, H, W).
    private func batchNormDims(_ shape: [Int]) -> [Int] {
        switch shape.count {
        case 4: return shape
        case 2: return [shape[0], shape[1], 1, 1]
        default: preconditionFailure("batch norm: expected rank 2 or 4, got \(shape)")
        }
    }

    private func batchNormPlan(_ shape: [Int], relu: Bool, epsilon: Float) -> DNNLBatchNormPlan {
        let key = DNNLBatchNormPlan.Key(shape: batchNormDims(shape), relu: relu, epsilon: epsilon)
        return dnnl.plan(key) { DNNLBatchNormPlan(key, context: dnnl) }
    }

    /// oneDNN's training forward (with the ReLU when `relu`, its mask's workspace, is given), then
    /// the contract's saved and running statistics.
    private func dnnlBatchNormTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor, momentum: Float, epsilon: Float, relu mask: Tensor?) {
        let plan = batchNormPlan(x.shape, relu: mask != nil, epsilon: epsilon), context = dnnl
        if mask != nil {
            ShapeChecks.batchNormReLUWorkspace(mask, count: (plan.workspaceBytes + 3) / 4, "batchNormReLUForwardTraining")
        }
        let ch = x.nchw.c, m = x.count / ch
        let variance = workspace.buffer(slot: bnVarianceSlot, count: ch)
        typealias P = DNNLBatchNormPlan
        var args = [(DNNL_ARG_SRC, P.bind(plan.src, x)), (DNNL_ARG_DST, P.bind(plan.dst, y)),
                    (DNNL_ARG_MEAN, P.bind(plan.mean, saveMean)), (DNNL_ARG_VARIANCE, P.bind(plan.variance, variance)),
                    (DNNL_ARG_SCALE, P.bind(plan.scale, gamma)), (DNNL_ARG_SHIFT, P.bind(plan.shift, beta))]
        if let mask { args.append((DNNL_ARG_WORKSPACE, P.bind(plan.workspace, mask))) }
        context.useThreads()
        context.execute(plan.training, args, "batch-norm forward \(plan.key)")
        let smp = saveMean.hostPointer, sip = saveInvStd.hostPointer
        let rmp = runningMean.hostPointer, rvp = runningVar.hostPointer
        let gp = gamma.hostPointer, bp = beta.hostPointer
        let mom = Double(momentum), eps = Double(epsilon), unbias = Double(m) / Double(m - 1)
        var nonFinite = false
        for c in 0..<ch {
            let v = Double(variance[c])
            sip[c] = Float(1 / (v + eps).squareRoot())
            rmp[c] = Float((1 - mom) * Double(rmp[c]) + mom * Double(smp[c]))
            rvp[c] = Float((1 - mom) * Double(rvp[c]) + mom * v * unbias)
            nonFinite = nonFinite || !(smp[c].isFinite && variance[c].isFinite && gp[c].isFinite && bp[c].isFinite)
        }
        guard mask != nil, nonFinite else { return }
        // NaN back where the contract's map `(x - mean) * invStd * gamma + beta` gives it, its mask
        // cleared (the jit kernel's already is; the reference kernel sets it for NaN) (file header).
        let xp = x.hostPointer, yp = y.hostPointer
        let bytes = UnsafeMutableRawPointer(mask!.hostPointer).assumingMemoryBound(to: UInt8.self)
        for c in 0..<ch where !(smp[c].isFinite && variance[c].isFinite && gp[c].isFinite && bp[c].isFinite) {
            for r in 0..<m where ((xp[r * ch + c] - smp[c]) * sip[c] * gp[c] + bp[c]).isNaN {
                let i = r * ch + c
                yp[i] = .nan
                if plan.maskBits { bytes[i / 8] &= ~(UInt8(1) << (i % 8)) } else { bytes[i] = 0 }
            }
        }
    }

    /// oneDNN's backward (dy masked by the ReLU mask `relu` when given); dgamma and dbeta written
    /// or added per `mode`.
    private func dnnlBatchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, beta: Tensor?, saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float, relu mask: Tensor?) {
        let plan = batchNormPlan(x.shape, relu: mask != nil, epsilon: epsilon), context = dnnl
        if mask != nil { ShapeChecks.batchNormReLUWorkspace(mask, count: (plan.workspaceBytes + 3) / 4, "batchNormReLUBackward") }
        let ch = x.nchw.c
        // The forward's variance from 1 / sqrt(var + eps) (file header); then the gradients of
        // gamma and beta, into scratch when they are to be added.
        let scratch = workspace.buffer(slot: bnVarianceSlot, count: 3 * ch)
        let variance = scratch, sums = scratch + ch
        let sip = saveInvStd.hostPointer
        for c in 0..<ch {
            let s = Double(sip[c])
            variance[c] = Float(1 / (s * s) - Double(epsilon))
        }
        let accumulate = mode == .accumulate
        typealias P = DNNLBatchNormPlan
        var args = [(DNNL_ARG_SRC, P.bind(plan.src, x)), (DNNL_ARG_DIFF_DST, P.bind(plan.diffDst, dy)),
                    (DNNL_ARG_MEAN, P.bind(plan.mean, saveMean)), (DNNL_ARG_VARIANCE, P.bind(plan.variance, variance)),
                    (DNNL_ARG_SCALE, P.bind(plan.scale, gamma)),
                    (DNNL_ARG_SHIFT, P.bind(plan.shift, (beta ?? gamma).hostPointer)),   // not read by the backward
                    (DNNL_ARG_DIFF_SRC, P.bind(plan.diffSrc, dx)),
                    (DNNL_ARG_DIFF_SCALE, P.bind(plan.diffScale, accumulate ? sums : gradGamma.hostPointer)),
                    (DNNL_ARG_DIFF_SHIFT, P.bind(plan.diffShift, accumulate ? sums + ch : gradBeta.hostPointer))]
        if let mask { args.append((DNNL_ARG_WORKSPACE, P.bind(plan.workspace, mask))) }
        context.useThreads()
        context.execute(plan.backward, args, "batch-norm backward \(plan.key)")
        if accumulate {
            let dgp = gradGamma.hostPointer, dbp = gradBeta.hostPointer
            for c in 0..<ch {
                dgp[c] += sums[c]
                dbp[c] += sums[ch + c]
            }
        }
    }
}

/// Workspace slot of the batch variance (forward) and of the backward's variance and gradient sums.
private let bnVarianceSlot = 0xB1_00
