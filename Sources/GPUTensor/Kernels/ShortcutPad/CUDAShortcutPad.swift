#if CUDA
import CCuda

// MARK: Kernels (NVRTC source, part of `CUDAKernelSource.text`) and their typed signatures

extension CUDAKernelSource {
    /// `shortcutPad` forward and backward (C symbols `shortcut_pad_*`, listed in
    /// `CUDAKernelSource.Kernel`).
    static let shortcutPad = #"""
// ---- shortcutPad (x, y: (N, C, H, W)) ----------------------------------------------------------
// shortcutPad forward: y (N, Cout, OH, OW) from x (N, Cin, H, W) at channels
// offset ..< offset + Cin, every stride-th row and column; zero elsewhere.
extern "C" __global__ void shortcut_pad_forward(const float* x, float* y, i64 n, i64 cin, i64 h, i64 w, i64 cout,
                                            i64 oh, i64 ow, i64 stride, i64 offset) {
    GRID_STRIDE(e, n * cout * oh * ow) {
        i64 j = e % ow, i = (e / ow) % oh, co = (e / (ow * oh)) % cout, image = e / (ow * oh * cout);
        i64 ci = co - offset;
        y[e] = (ci >= 0 && ci < cin) ? x[((image * cin + ci) * h + i * stride) * w + j * stride] : 0.0f;
    }
}

// Its adjoint: dx (N, Cin, H, W) from dy (N, Cout, OH, OW).
extern "C" __global__ void shortcut_pad_backward(const float* dy, float* dx, i64 n, i64 cin, i64 h, i64 w, i64 cout,
                                             i64 oh, i64 ow, i64 stride, i64 offset) {
    GRID_STRIDE(e, n * cin * h * w) {
        i64 j = e % w, i = (e / w) % h, ci = (e / (w * h)) % cin, image = e / (w * h * cin);
        bool hit = i % stride == 0 && j % stride == 0;
        dx[e] = hit ? dy[((image * cout + ci + offset) * oh + i / stride) * ow + j / stride] : 0.0f;
    }
}

extern "C" __global__ void shortcut_pad_forward_nhwc(const float* x, float* y, i64 n, i64 cin, i64 h, i64 w,
                                                             i64 cout, i64 oh, i64 ow, i64 stride, i64 offset) {
    GRID_STRIDE(e, n * cout * oh * ow) {
        i64 co = e % cout, j = (e / cout) % ow, i = (e / (cout * ow)) % oh, image = e / (cout * ow * oh);
        i64 ci = co - offset;
        y[e] = (ci >= 0 && ci < cin) ? x[((image * h + i * stride) * w + j * stride) * cin + ci] : 0.0f;
    }
}

extern "C" __global__ void shortcut_pad_backward_nhwc(const float* dy, float* dx, i64 n, i64 cin, i64 h, i64 w,
                                                              i64 cout, i64 oh, i64 ow, i64 stride, i64 offset) {
    GRID_STRIDE(e, n * cin * h * w) {
        i64 ci = e % cin, j = (e / cin) % w, i = (e / (cin * w)) % h, image = e / (cin * w * h);
        bool hit = i % stride == 0 && j % stride == 0;
        dx[e] = hit ? dy[((image * oh + i / stride) * ow + j / stride) * cout + ci + offset] : 0.0f;
    }
}
"""#
}

extension CUDAKernels {
    /// `shortcut_pad_forward(const float* x, float* y, i64 n, i64 cin, i64 h, i64 w, i64 cout, i64 oh, i64 ow, i64 stride, i64 offset)`
    static let shortcutPadForward = CUDAKernel<Tensor, Tensor, Int, Int, Int, Int, Int, Int, Int, Int, Int>(.shortcut_pad_forward)

    /// `shortcut_pad_backward(const float* dy, float* dx, i64 n, i64 cin, i64 h, i64 w, i64 cout, i64 oh, i64 ow, i64 stride, i64 offset)`
    static let shortcutPadBackward = CUDAKernel<Tensor, Tensor, Int, Int, Int, Int, Int, Int, Int, Int, Int>(.shortcut_pad_backward)

    /// `shortcut_pad_forward_nhwc(const float* x, float* y, i64 n, i64 cin, i64 h, i64 w, i64 cout, i64 oh, i64 ow, i64 stride, i64 offset)`
    static let shortcutPadForwardNHWC = CUDAKernel<Tensor, Tensor, Int, Int, Int, Int, Int, Int, Int, Int, Int>(.shortcut_pad_forward_nhwc)

    /// `shortcut_pad_backward_nhwc(const float* dy, float* dx, i64 n, i64 cin, i64 h, i64 w, i64 cout, i64 oh, i64 ow, i64 stride, i64 offset)`
    static let shortcutPadBackwardNHWC = CUDAKernel<Tensor, Tensor, Int, Int, Int, Int, Int, Int, Int, Int, Int>(.shortcut_pad_backward_nhwc)
}

// MARK: Launchers

// `shortcutPad`: channels-last tensors (`isChannelsLast`, CUDALayout.swift) take the `_nhwc` variants.
extension CUDABackend {
    public func shortcutPadForward(_ x: Tensor, output y: Tensor, stride: Int, channelOffset: Int) {
        ShapeChecks.shortcutPad(x, y, stride: stride, channelOffset: channelOffset, "shortcutPadForward")
        let (_, cin, h, w) = x.nchw, (n, cout, oh, ow) = y.nchw
        let kernel = isChannelsLast(x) ? CUDAKernels.shortcutPadForwardNHWC : CUDAKernels.shortcutPadForward
        launch(kernel, count: y.count, x, y, n, cin, h, w, cout, oh, ow, stride, channelOffset)
    }

    public func shortcutPadBackward(gradOutput dy: Tensor, gradInput dx: Tensor, stride: Int, channelOffset: Int) {
        ShapeChecks.shortcutPad(dx, dy, stride: stride, channelOffset: channelOffset, "shortcutPadBackward")
        let (_, cin, h, w) = dx.nchw, (n, cout, oh, ow) = dy.nchw
        let kernel = isChannelsLast(dx) ? CUDAKernels.shortcutPadBackwardNHWC : CUDAKernels.shortcutPadBackward
        launch(kernel, count: dx.count, dy, dx, n, cin, h, w, cout, oh, ow, stride, channelOffset)
    }
}
#endif
