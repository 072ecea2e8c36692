#if CUDA
import CCuda

// MARK: Kernels (NVRTC source, part of `CUDAKernelSource.text`) and their typed signatures

extension CUDAKernelSource {
    /// Max, average and global-average pooling, NCHW and channels-last.
    static let pooling = #"""
// ---- Pooling (x (N, C, H, W), y (N, C, OH, OW); planes = N*C) ----------------------------------
// The first maximum of window (oi, oj) in row-major order; NaN wins, as on the CPU. Pixel (r, c)
// of the plane is plane[(r * w + c) * ps]: ps = 1 for NCHW, C for NHWC. Returns r * w + c.
__device__ __forceinline__ i64 window_argmax(const float* plane, i64 h, i64 w, i64 oi, i64 oj, i64 k, i64 s,
                                             i64 pad, i64 ps, float* bestOut) {
    i64 r0 = max(oi * s - pad, 0ll), r1 = min(oi * s - pad + k, h);
    i64 c0 = max(oj * s - pad, 0ll), c1 = min(oj * s - pad + k, w);
    float best = -__int_as_float(0x7f800000);
    i64 at = r0 * w + c0;
    for (i64 r = r0; r < r1; ++r)
        for (i64 c = c0; c < c1; ++c) {
            float v = plane[(r * w + c) * ps];
            if (v > best || (v != v && best == best)) { best = v; at = r * w + c; }
        }
    *bestOut = best;
    return at;
}

extern "C" __global__ void maxpool_forward(const float* x, float* y, i64 planes, i64 h, i64 w, i64 oh, i64 ow,
                                           i64 k, i64 s, i64 pad) {
    GRID_STRIDE(e, planes * oh * ow) {
        i64 oj = e % ow, oi = (e / ow) % oh, plane = e / (oh * ow);
        float best;
        window_argmax(x + plane * h * w, h, w, oi, oj, k, s, pad, 1, &best);
        y[e] = best;
    }
}

// Gather form (no atomics, deterministic): dx[r, c] sums dy over the windows whose first maximum is (r, c).
extern "C" __global__ void maxpool_backward(const float* x, const float* dy, float* dx, i64 planes, i64 h, i64 w,
                                            i64 oh, i64 ow, i64 k, i64 s, i64 pad) {
    GRID_STRIDE(e, planes * h * w) {
        i64 c = e % w, r = (e / w) % h, plane = e / (h * w);
        const float* xp = x + plane * h * w;
        // Windows oi with oi*s - pad <= r < oi*s - pad + k.
        i64 oi0 = max((r + pad - k + s) / s, 0ll), oi1 = min((r + pad) / s, oh - 1);
        i64 oj0 = max((c + pad - k + s) / s, 0ll), oj1 = min((c + pad) / s, ow - 1);
        if (r + pad - k + 1 < 0) oi0 = 0;
        if (c + pad - k + 1 < 0) oj0 = 0;
        float acc = 0.0f;
        for (i64 oi = oi0; oi <= oi1; ++oi)
            for (i64 oj = oj0; oj <= oj1; ++oj) {
                float best;
                if (window_argmax(xp, h, w, oi, oj, k, s, pad, 1, &best) == r * w + c)
                    acc += dy[(plane * oh + oi) * ow + oj];
            }
        dx[e] = acc;
    }
}

// Zero padding counted in the divisor (count_include_pad): window^2.
extern "C" __global__ void avgpool_forward(const float* x, float* y, i64 planes, i64 h, i64 w, i64 oh, i64 ow,
                                           i64 k, i64 s, i64 pad, float inv) {
    GRID_STRIDE(e, planes * oh * ow) {
        i64 oj = e % ow, oi = (e / ow) % oh, plane = e / (oh * ow);
        const float* xp = x + plane * h * w;
        i64 r0 = max(oi * s - pad, 0ll), r1 = min(oi * s - pad + k, h);
        i64 c0 = max(oj * s - pad, 0ll), c1 = min(oj * s - pad + k, w);
        float acc = 0.0f;
        for (i64 r = r0; r < r1; ++r) for (i64 c = c0; c < c1; ++c) acc += xp[r * w + c];
        y[e] = acc * inv;
    }
}

extern "C" __global__ void avgpool_backward(const float* dy, float* dx, i64 planes, i64 h, i64 w, i64 oh, i64 ow,
                                            i64 k, i64 s, i64 pad, float inv) {
    GRID_STRIDE(e, planes * h * w) {
        i64 c = e % w, r = (e / w) % h, plane = e / (h * w);
        i64 oi0 = (r + pad - k + 1 <= 0) ? 0 : (r + pad - k + s) / s, oi1 = min((r + pad) / s, oh - 1);
        i64 oj0 = (c + pad - k + 1 <= 0) ? 0 : (c + pad - k + s) / s, oj1 = min((c + pad) / s, ow - 1);
        float acc = 0.0f;
        for (i64 oi = oi0; oi <= oi1; ++oi)
            for (i64 oj = oj0; oj <= oj1; ++oj) acc += dy[(plane * oh + oi) * ow + oj];
        dx[e] = acc * inv;
    }
}

// x (planes, HW) -> y (planes): the mean of each plane, accumulated in double.
extern "C" __global__ void global_avgpool_forward(const float* x, float* y, i64 planes, i64 hw) {
    GRID_STRIDE(p, planes) {
        double acc = 0.0;
        for (i64 k = 0; k < hw; ++k) acc += (double)x[p * hw + k];
        y[p] = (float)(acc / (double)hw);
    }
}

extern "C" __global__ void global_avgpool_backward(const float* dy, float* dx, i64 planes, i64 hw, float inv) {
    GRID_STRIDE(e, planes * hw) dx[e] = dy[e / hw] * inv;
}

// Channels-last variants (element ((n * H + i) * W + j) * C + c): the same formulas as the NCHW
// kernels above, one thread per physical output element.
extern "C" __global__ void maxpool_forward_nhwc(const float* x, float* y, i64 n, i64 c, i64 h, i64 w, i64 oh, i64 ow,
                                                i64 k, i64 s, i64 pad) {
    GRID_STRIDE(e, n * oh * ow * c) {
        i64 ch = e % c, oj = (e / c) % ow, oi = (e / (c * ow)) % oh, image = e / (c * ow * oh);
        float best;
        window_argmax(x + image * h * w * c + ch, h, w, oi, oj, k, s, pad, c, &best);
        y[e] = best;
    }
}

extern "C" __global__ void maxpool_backward_nhwc(const float* x, const float* dy, float* dx, i64 n, i64 c, i64 h,
                                                 i64 w, i64 oh, i64 ow, i64 k, i64 s, i64 pad) {
    GRID_STRIDE(e, n * h * w * c) {
        i64 ch = e % c, col = (e / c) % w, r = (e / (c * w)) % h, image = e / (c * w * h);
        const float* xp = x + image * h * w * c + ch;
        const float* dyp = dy + image * oh * ow * c + ch;
        i64 oi0 = (r + pad - k + 1 <= 0) ? 0 : (r + pad - k + s) / s, oi1 = min((r + pad) / s, oh - 1);
        i64 oj0 = (col + pad - k + 1 <= 0) ? 0 : (col + pad - k + s) / s, oj1 = min((col + pad) / s, ow - 1);
        float acc = 0.0f;
        for (i64 oi = oi0; oi <= oi1; ++oi)
            for (i64 oj = oj0; oj <= oj1; ++oj) {
                float best;
                if (window_argmax(xp, h, w, oi, oj, k, s, pad, c, &best) == r * w + col)
                    acc += dyp[(oi * ow + oj) * c];
            }
        dx[e] = acc;
    }
}

extern "C" __global__ void avgpool_forward_nhwc(const float* x, float* y, i64 n, i64 c, i64 h, i64 w, i64 oh, i64 ow,
                                                i64 k, i64 s, i64 pad, float inv) {
    GRID_STRIDE(e, n * oh * ow * c) {
        i64 ch = e % c, oj = (e / c) % ow, oi = (e / (c * ow)) % oh, image = e / (c * ow * oh);
        const float* xp = x + image * h * w * c + ch;
        i64 r0 = max(oi * s - pad, 0ll), r1 = min(oi * s - pad + k, h);
        i64 c0 = max(oj * s - pad, 0ll), c1 = min(oj * s - pad + k, w);
        float acc = 0.0f;
        for (i64 r = r0; r < r1; ++r) for (i64 col = c0; col < c1; ++col) acc += xp[(r * w + col) * c];
        y[e] = acc * inv;
    }
}

extern "C" __global__ void avgpool_backward_nhwc(const float* dy, float* dx, i64 n, i64 c, i64 h, i64 w, i64 oh, i64 ow,
                                                 i64 k, i64 s, i64 pad, float inv) {
    GRID_STRIDE(e, n * h * w * c) {
        i64 ch = e % c, col = (e / c) % w, r = (e / (c * w)) % h, image = e / (c * w * h);
        const float* dyp = dy + image * oh * ow * c + ch;
        i64 oi0 = (r + pad - k + 1 <= 0) ? 0 : (r + pad - k + s) / s, oi1 = min((r + pad) / s, oh - 1);
        i64 oj0 = (col + pad - k + 1 <= 0) ? 0 : (col + pad - k + s) / s, oj1 = min((col + pad) / s, ow - 1);
        float acc = 0.0f;
        for (i64 oi = oi0; oi <= oi1; ++oi)
            for (i64 oj = oj0; oj <= oj1; ++oj) acc += dyp[(oi * ow + oj) * c];
        dx[e] = acc * inv;
    }
}

// x (N, HW, C) -> y (N, C): one thread per (image, channel), accumulated in double.
extern "C" __global__ void global_avgpool_forward_nhwc(const float* x, float* y, i64 n, i64 c, i64 hw) {
    GRID_STRIDE(q, n * c) {
        i64 ch = q % c, image = q / c;
        const float* xp = x + image * hw * c + ch;
        double acc = 0.0;
        for (i64 k = 0; k < hw; ++k) acc += (double)xp[k * c];
        y[q] = (float)(acc / (double)hw);
    }
}

extern "C" __global__ void global_avgpool_backward_nhwc(const float* dy, float* dx, i64 n, i64 c, i64 hw, float inv) {
    GRID_STRIDE(e, n * hw * c) dx[e] = dy[(e / (hw * c)) * c + e % c] * inv;
}
"""#
}

extension CUDAKernels {
    /// `maxpool_forward(const float* x, float* y, i64 planes, i64 h, i64 w, i64 oh, i64 ow, i64 k, i64 s, i64 pad)`
    static let maxPoolForward = CUDAKernel<Tensor, Tensor, Int, Int, Int, Int, Int, Int, Int, Int>(.maxpool_forward)

    /// `maxpool_backward(const float* x, const float* dy, float* dx, i64 planes, i64 h, i64 w, i64 oh, i64 ow, i64 k, i64 s, i64 pad)`
    static let maxPoolBackward = CUDAKernel<Tensor, Tensor, Tensor, Int, Int, Int, Int, Int, Int, Int, Int>(.maxpool_backward)

    /// `avgpool_forward(const float* x, float* y, i64 planes, i64 h, i64 w, i64 oh, i64 ow, i64 k, i64 s, i64 pad, float inv)`
    static let avgPoolForward = CUDAKernel<Tensor, Tensor, Int, Int, Int, Int, Int, Int, Int, Int, Float>(.avgpool_forward)

    /// `avgpool_backward(const float* dy, float* dx, i64 planes, i64 h, i64 w, i64 oh, i64 ow, i64 k, i64 s, i64 pad, float inv)`
    static let avgPoolBackward = CUDAKernel<Tensor, Tensor, Int, Int, Int, Int, Int, Int, Int, Int, Float>(.avgpool_backward)

    /// `global_avgpool_forward(const float* x, float* y, i64 planes, i64 hw)`
    static let globalAvgPoolForward = CUDAKernel<Tensor, Tensor, Int, Int>(.global_avgpool_forward)

    /// `global_avgpool_backward(const float* dy, float* dx, i64 planes, i64 hw, float inv)`
    static let globalAvgPoolBackward = CUDAKernel<Tensor, Tensor, Int, Int, Float>(.global_avgpool_backward)

    /// `maxpool_forward_nhwc(const float* x, float* y, i64 n, i64 c, i64 h, i64 w, i64 oh, i64 ow, i64 k, i64 s, i64 pad)`
    static let maxPoolForwardNHWC = CUDAKernel<Tensor, Tensor, Int, Int, Int, Int, Int, Int, Int, Int, Int>(.maxpool_forward_nhwc)

    /// `maxpool_backward_nhwc(const float* x, const float* dy, float* dx, i64 n, i64 c, i64 h, i64 w, i64 oh, i64 ow, i64 k, i64 s, i64 pad)`
    static let maxPoolBackwardNHWC = CUDAKernel<Tensor, Tensor, Tensor, Int, Int, Int, Int, Int, Int, Int, Int, Int>(.maxpool_backward_nhwc)

    /// `avgpool_forward_nhwc(const float* x, float* y, i64 n, i64 c, i64 h, i64 w, i64 oh, i64 ow, i64 k, i64 s, i64 pad, float inv)`
    static let avgPoolForwardNHWC = CUDAKernel<Tensor, Tensor, Int, Int, Int, Int, Int, Int, Int, Int, Int, Float>(.avgpool_forward_nhwc)

    /// `avgpool_backward_nhwc(const float* dy, float* dx, i64 n, i64 c, i64 h, i64 w, i64 oh, i64 ow, i64 k, i64 s, i64 pad, float inv)`
    static let avgPoolBackwardNHWC = CUDAKernel<Tensor, Tensor, Int, Int, Int, Int, Int, Int, Int, Int, Int, Float>(.avgpool_backward_nhwc)

    /// `global_avgpool_forward_nhwc(const float* x, float* y, i64 n, i64 c, i64 hw)`
    static let globalAvgPoolForwardNHWC = CUDAKernel<Tensor, Tensor, Int, Int, Int>(.global_avgpool_forward_nhwc)

    /// `global_avgpool_backward_nhwc(const float* dy, float* dx, i64 n, i64 c, i64 hw, float inv)`
    static let globalAvgPoolBackwardNHWC = CUDAKernel<Tensor, Tensor, Int, Int, Int, Float>(.global_avgpool_backward_nhwc)
}

// MARK: Launchers

// Pooling: launchers for the NVRTC kernels (own kernels rather than cuDNN pooling, so max-pool ties
// route to the first maximum exactly as on the CPU). Channels-last tensors (`isChannelsLast`,
// CUDALayout.swift) take the `_nhwc` variants. Max pooling keeps no window positions
// (`maxPoolWorkspaceCount` is the contract's default, 0): the backward gathers, per input, the dy of
// the windows whose first maximum it is, recomputed from x; that writes dx once without atomics.
extension CUDABackend {
    public func maxPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, workspace: Tensor?) {
        ShapeChecks.pool(g, input: x, output: y, "maxPoolForward")
        if isChannelsLast(x) {
            launch(CUDAKernels.maxPoolForwardNHWC, count: y.count,
                   x, y, g.batch, g.channels, g.height, g.width, g.outHeight, g.outWidth, g.window, g.stride, g.padding)
        } else {
            launch(CUDAKernels.maxPoolForward, count: y.count,
                   x, y, g.batch * g.channels, g.height, g.width, g.outHeight, g.outWidth, g.window, g.stride, g.padding)
        }
    }

    public func maxPoolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, workspace: Tensor?,
                                gradOutput dy: Tensor, gradInput dx: Tensor) {
        ShapeChecks.pool(g, input: x, output: y, "maxPoolBackward")
        ShapeChecks.pool(g, input: dx, output: dy, "maxPoolBackward")
        if isChannelsLast(x) {
            launch(CUDAKernels.maxPoolBackwardNHWC, count: dx.count,
                   x, dy, dx, g.batch, g.channels, g.height, g.width, g.outHeight, g.outWidth, g.window, g.stride, g.padding)
        } else {
            launch(CUDAKernels.maxPoolBackward, count: dx.count,
                   x, dy, dx, g.batch * g.channels, g.height, g.width, g.outHeight, g.outWidth, g.window, g.stride, g.padding)
        }
    }

    public func avgPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) {
        ShapeChecks.pool(g, input: x, output: y, "avgPoolForward")
        let inv = 1 / Float(g.window * g.window)
        if isChannelsLast(x) {
            launch(CUDAKernels.avgPoolForwardNHWC, count: y.count,
                   x, y, g.batch, g.channels, g.height, g.width, g.outHeight, g.outWidth, g.window, g.stride, g.padding, inv)
        } else {
            launch(CUDAKernels.avgPoolForward, count: y.count,
                   x, y, g.batch * g.channels, g.height, g.width, g.outHeight, g.outWidth, g.window, g.stride, g.padding, inv)
        }
    }

    public func avgPoolBackward(_ g: PoolGeometry, gradOutput dy: Tensor, gradInput dx: Tensor) {
        ShapeChecks.pool(g, input: dx, output: dy, "avgPoolBackward")
        let inv = 1 / Float(g.window * g.window)
        if isChannelsLast(dx) {
            launch(CUDAKernels.avgPoolBackwardNHWC, count: dx.count,
                   dy, dx, g.batch, g.channels, g.height, g.width, g.outHeight, g.outWidth, g.window, g.stride, g.padding, inv)
        } else {
            launch(CUDAKernels.avgPoolBackward, count: dx.count,
                   dy, dx, g.batch * g.channels, g.height, g.width, g.outHeight, g.outWidth, g.window, g.stride, g.padding, inv)
        }
    }

    public func globalAvgPoolForward(input x: Tensor, output y: Tensor) {
        ShapeChecks.globalAvgPool(input: x, output: y, "globalAvgPoolForward")
        let (n, c, h, w) = x.nchw
        if isChannelsLast(x) {
            launch(CUDAKernels.globalAvgPoolForwardNHWC, count: n * c, x, y, n, c, h * w)
        } else {
            launch(CUDAKernels.globalAvgPoolForward, count: n * c, x, y, n * c, h * w)
        }
    }

    public func globalAvgPoolBackward(gradOutput dy: Tensor, gradInput dx: Tensor) {
        ShapeChecks.globalAvgPool(input: dx, output: dy, "globalAvgPoolBackward")
        let (n, c, h, w) = dx.nchw
        if isChannelsLast(dx) {
            launch(CUDAKernels.globalAvgPoolBackwardNHWC, count: dx.count, dy, dx, n, c, h * w, 1 / Float(h * w))
        } else {
            launch(CUDAKernels.globalAvgPoolBackward, count: dx.count, dy, dx, n * c, h * w, 1 / Float(h * w))
        }
    }
}
#endif
