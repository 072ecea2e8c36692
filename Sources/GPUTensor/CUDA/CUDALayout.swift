// The CUDA backend's storage order of rank-4 tensors, chosen once per backend.
//
// Shapes stay logical everywhere ((N, C, H, W) activations, (O, I, KH, KW) weights). With
// `.nhwc` every rank-4 tensor is stored channels-last, physical order (dim0, dim2, dim3, dim1),
// exactly as the CPU backend stores it: cuDNN's tensor-core convolutions want NHWC and transpose
// NCHW float tensors internally (the first H200 run: strict FP32 as fast as TF32). `upload`,
// `download` and `copy` convert at the boundary with the permute kernels below, so callers only
// ever see logical row-major arrays; random fills and dropout index Philox by the logical index.
//
// Legend: N images, C channels, HW = H*W pixels. A channels-last tensor is N blocks of (HW, C)
// rows; slicing the first dimension (a sub-batch) is still a contiguous range.

/// The physical order of the CUDA backend's rank-4 tensors (`STRATA_CUDA_LAYOUT`).
public enum CUDALayout: String, Sendable, CaseIterable, CUDASetting {
    /// Row-major (N, C, H, W), the logical order itself.
    case nchw
    /// Channels-last (N, H, W, C) activations and (O, KH, KW, I) weights.
    case nhwc

    public static let variable = "STRATA_CUDA_LAYOUT"
    /// The default since the H200 runs of 2026-11-30 (scripts/gpu-check.sh, bench/GPU.md): with our
    /// batch norm, `bench train` at batch 128 ran 1.05-1.31x faster channels-last than NCHW
    /// (vgg16 22,793 vs 17,365 images/s); at batch 32 it was slower (resnet20 6,803 vs 12,287),
    /// see `standard(forBatch:)`.
    public static let standard: CUDALayout = .nhwc

    /// Below this many images per step a training run gets NCHW when `STRATA_CUDA_LAYOUT` is unset.
    public static let smallBatchLimit = 64

    /// The layout for a run that trains `batch` images per step, when the variable does not say:
    /// NCHW below `smallBatchLimit`, else `standard`. At batch 32 both H200 runs measured NCHW
    /// faster for every model (run 4: resnet20 8,527 vs 6,482 images/s, resnet56 3,137 vs 2,314,
    /// cnn 54,679 vs 37,640, vgg16 level at 5,911 vs 5,960; run 2: resnet20 12,287 vs 6,803): cuDNN's
    /// NHWC backward-data took 0.147 ms where NCHW took 0.067 at those sizes. nil (a command
    /// without one batch size) is `standard`. A fixed rule, so a run and its resume agree.
    public static func standard(forBatch batch: Int?) -> CUDALayout {
        guard let batch else { return standard }
        return batch < smallBatchLimit ? .nchw : standard
    }

    /// `STRATA_CUDA_LAYOUT`'s choice when it is set (and not blank), else `standard(forBatch:)`.
    public static func choose(environment value: String?, batch: Int?) throws -> CUDALayout {
        let blank = (value ?? "").allSatisfy { $0 == " " || $0 == "\t" }
        return blank ? standard(forBatch: batch) : try parse(environment: value)
    }
}

/// Who runs batch norm (and bias backward) on channels-last tensors (`STRATA_CUDA_BN`; with
/// `STRATA_CUDA_LAYOUT=nchw` it changes nothing: cuDNN's SPATIAL mode, fast on NCHW).
/// `strata`: our column-sum kernels (CUDAChannelReductions.swift), the default: cuDNN's fp32 NHWC
/// batch norm was 4-9x slower than its NCHW one on the H200. `cudnn`: cuDNN SPATIAL, `persistent`:
/// cuDNN SPATIAL_PERSISTENT for training steps (what PyTorch takes for cuDNN channels-last
/// training); both kept to compare against.
public enum CUDABatchNormMode: String, Sendable, CaseIterable, CUDASetting {
    case strata, cudnn, persistent

    public static let variable = "STRATA_CUDA_BN"
    public static let standard: CUDABatchNormMode = .strata
}

/// A choice of the CUDA backend read once from an environment variable when a backend is made.
public protocol CUDASetting: RawRepresentable<String>, CaseIterable {
    static var variable: String { get }
    static var standard: Self { get }
}

extension CUDASetting {
    /// The choice named by the variable's `value`: unset or empty is `standard`, case and blanks
    /// are ignored; anything else throws one line naming the variable and the choices.
    public static func parse(environment value: String?) throws -> Self {
        let word = String((value ?? "").filter { $0 != " " && $0 != "\t" }).lowercased()
        guard !word.isEmpty else { return standard }
        guard let choice = Self(rawValue: word) else {
            throw CUDASettingError(variable: variable, value: value ?? "", choices: allCases.map(\.rawValue))
        }
        return choice
    }
}

/// An environment variable of the CUDA backend holds something that is not one of its choices.
public struct CUDASettingError: Error, CustomStringConvertible, Equatable {
    public let variable: String
    public let value: String
    public let choices: [String]
    public var description: String {
        "\(variable)='\(value)': expected \(choices.joined(separator: " or "))"
    }
}

#if CUDA
import CCuda
#if canImport(Glibc)
import Glibc
#endif

// MARK: Kernels (NVRTC source, part of `CUDAKernelSource.text`) and their typed signatures

extension CUDAKernelSource {
    /// Logical (NCHW) <-> channels-last (NHWC) permutes, for upload, download and copy.
    static let layout = #"""
// ---- Layout: logical NCHW <-> channels-last NHWC (N images of C x HW) -------------------------
// One thread per output element; x and y must not overlap.
extern "C" __global__ void nchw_to_nhwc(const float* x, float* y, i64 n, i64 c, i64 hw) {
    GRID_STRIDE(e, n * c * hw) {
        i64 ch = e % c, p = (e / c) % hw, image = e / (c * hw);
        y[e] = x[(image * c + ch) * hw + p];
    }
}

extern "C" __global__ void nhwc_to_nchw(const float* x, float* y, i64 n, i64 c, i64 hw) {
    GRID_STRIDE(e, n * c * hw) {
        i64 p = e % hw, ch = (e / hw) % c, image = e / (c * hw);
        y[e] = x[(image * hw + p) * c + ch];
    }
}
"""#
}

extension CUDAKernels {
    /// `nchw_to_nhwc(const float* x, float* y, i64 n, i64 c, i64 hw)`
    static let nchwToNHWC = CUDAKernel<Tensor, Tensor, Int, Int, Int>(.nchw_to_nhwc)
    /// `nhwc_to_nchw(const float* x, float* y, i64 n, i64 c, i64 hw)`
    static let nhwcToNCHW = CUDAKernel<Tensor, Tensor, Int, Int, Int>(.nhwc_to_nchw)
}

// MARK: Storage order

extension CUDABackend {
    /// Whether kernels must read `t` channels-last: every rank-4 tensor under `.nhwc` (when C
    /// or HW is 1 both orders coincide, so the NHWC kernels are right for those too).
    @inline(__always)
    func isChannelsLast(_ t: Tensor) -> Bool { layout == .nhwc && t.rank == 4 }

    /// Whether a tensor of `shape` puts some element elsewhere than row-major order would: rank 4
    /// with more than one channel and more than one pixel, under `.nhwc`.
    @inline(__always)
    func isPermuted(_ shape: [Int]) -> Bool {
        layout == .nhwc && shape.count == 4 && shape[1] > 1 && shape[2] * shape[3] > 1
    }

    /// Whether two shapes of one element count put every logical element at the same position.
    @inline(__always)
    func storedAlike(_ a: [Int], _ b: [Int]) -> Bool { a == b || !isPermuted(a) && !isPermuted(b) }

    /// `y` (stored as `shape`, channels-last) = `x` (logical row-major), on the stream.
    func permuteToStorage(_ x: Tensor, _ y: Tensor, shape: [Int]) {
        launch(CUDAKernels.nchwToNHWC, count: y.count, x, y, shape[0], shape[1], shape[2] * shape[3])
    }

    /// `y` (logical row-major) = `x` (stored as `shape`, channels-last), on the stream.
    func permuteToLogical(_ x: Tensor, _ y: Tensor, shape: [Int]) {
        launch(CUDAKernels.nhwcToNCHW, count: y.count, x, y, shape[0], shape[1], shape[2] * shape[3])
    }

    /// A flat device tensor of `count` elements for one permute (recycled when released; one
    /// stream, so later work that reuses the block runs after the permute).
    func permuteScratch(_ count: Int) throws -> Tensor {
        try allocate([count])
    }
}
#endif
