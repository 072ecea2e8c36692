/// Which backend runs which part of `strata selftest`, and the label every printed line carries.
///
/// The float64 suite (`KernelChecks.all`) compares with float64 references at FP32 tolerances.
/// A GPU backend in its default TF32 mode keeps 10 mantissa bits in GEMM and convolutions, so
/// that suite runs on a strict-FP32 backend of the same device; the cross-device suite (this
/// device against the CPU backend) runs on the backend as asked for (TF32 unless
/// `--strict-fp32`), and its GEMM and convolution comparisons allow TF32's error.
///
/// ```
/// [float64 ref, strict FP32] ok   gemm 3x4x5 ...
/// [vs cpu, TF32 math, TF32 tolerance] ok   conv2d ... forward+bias ...
/// ```
public struct SelfTestSuite {
    public let label: String
    public let backend: Backend
    public let checks: [KernelCheck]

    public init(label: String, backend: Backend, checks: [KernelCheck]) {
        self.label = label
        self.backend = backend
        self.checks = checks
    }

    /// `backend` as the user asked for it; `strictFP32` whether it is in strict mode;
    /// `makeStrict` opens a strict-FP32 backend of the same device (called only when needed);
    /// `crossDevice` the checks against the CPU (kernels, then whole models).
    public static func plan(for backend: Backend, strictFP32: Bool, makeStrict: () throws -> Backend,
                            crossDevice: [KernelCheck]) throws -> [SelfTestSuite] {
        guard backend.device != .cpu else {
            return [SelfTestSuite(label: "float64 ref, FP32", backend: backend, checks: KernelChecks.all)]
        }
        let strict = strictFP32 ? backend : try makeStrict()
        return [
            SelfTestSuite(label: "float64 ref, strict FP32", backend: strict, checks: KernelChecks.all),
            SelfTestSuite(label: "vs cpu, \(strictFP32 ? "strict FP32" : "TF32") math, TF32 tolerance",
                          backend: backend, checks: crossDevice),
        ]
    }

    /// One printed line: the suite's label, then the result.
    public func line(_ result: CheckResult) -> String { "[\(label)] \(result.summary)" }
}
