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
    /// `precision` (default: the backend's) adds, on the CPU, the reduced-precision checks
    /// (PrecisionChecks.swift) on a backend of that precision, made here when `backend` is not one.
    public static func plan(for backend: Backend, strictFP32: Bool, makeStrict: () throws -> Backend,
                            crossDevice: [KernelCheck], precision: Precision? = nil) throws -> [SelfTestSuite] {
        guard backend.device != .cpu else { return cpuPlan(for: backend, precision: precision ?? backend.precision) }
        let strict = strictFP32 ? backend : try makeStrict()
        return [
            SelfTestSuite(label: "float64 ref, strict FP32", backend: strict, checks: KernelChecks.all),
            SelfTestSuite(label: "vs cpu, \(strictFP32 ? "strict FP32" : "TF32") math, TF32 tolerance",
                          backend: backend, checks: crossDevice),
        ]
    }

    /// The float64 suite on an FP32 CPU backend (its FP32 tolerances would fail bf16 falsely), then
    /// in bf16 the bf16 checks on a bf16 backend, or a suite without checks whose label says why
    /// they were skipped (a CPU without AVX-512 BF16).
    static func cpuPlan(for backend: Backend, precision: Precision) -> [SelfTestSuite] {
        let threads = (backend as? CPUBackend)?.threads
        let fp32 = backend.precision == .fp32 ? backend : CPUBackend(threads: threads)
        var suites = [SelfTestSuite(label: "float64 ref, FP32", backend: fp32, checks: KernelChecks.all)]
        guard precision == .bf16 else { return suites }
        if CPUBackend.supportsBF16 {
            let bf16 = backend.precision == .bf16 ? backend : CPUBackend(threads: threads, precision: .bf16)
            suites.append(SelfTestSuite(label: "float64 ref, bf16 inputs, FP32 accumulation", backend: bf16,
                                        checks: KernelChecks.precisionChecks(.bf16)))
        } else {
            suites.append(SelfTestSuite(label: "SKIP bf16 checks: this CPU lacks AVX-512 BF16", backend: fp32, checks: []))
        }
        return suites
    }

    /// One printed line: the suite's label, then the result.
    public func line(_ result: CheckResult) -> String { "[\(label)] \(result.summary)" }
}
