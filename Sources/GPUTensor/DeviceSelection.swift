/// Turns a `--device` choice into a backend, with errors a user can act on.

public enum DeviceChoice: Sendable, Equatable {
    case cpu
    case cuda(Int)
    /// CUDA when this binary has it and a GPU answers, else the CPU.
    case auto

    /// Parses `cpu`, `cuda`, `cuda:N` or `auto`.
    public init?(parsing text: String) {
        if text == "auto" { self = .auto; return }
        guard let device = Device(parsing: text) else { return nil }
        switch device {
        case .cpu: self = .cpu
        case .cuda(let n): self = .cuda(n)
        }
    }
}

public struct DeviceUnavailable: Error, CustomStringConvertible {
    public let device: String
    public let reason: String
    public var description: String { "device \(device) is not usable: \(reason)" }
}

public enum BackendFactory {
    /// Whether this binary was built with the CUDA trait.
    public static var hasCUDA: Bool {
        #if CUDA
        return true
        #else
        return false
        #endif
    }

    /// The backend for `choice`; `notice` receives a one-line message when `auto` falls back.
    /// `strictFP32` turns TF32 tensor-core math off on CUDA (the CPU always computes in FP32).
    /// `batchSize`, the images per training step where the caller has one, picks the CUDA layout
    /// unless `STRATA_CUDA_LAYOUT` does (`CUDALayout.standard(forBatch:)`).
    /// `precision` is the format of convolutions and GEMMs (Precision.swift); a device that cannot
    /// compute in it is refused with `DeviceUnavailable` (the CPU: fp16 always, bf16 without
    /// AVX-512 BF16).
    public static func make(_ choice: DeviceChoice, threads: Int? = nil, strictFP32: Bool = false,
                            batchSize: Int? = nil, precision: Precision = .fp32,
                            notice: (String) -> Void = { _ in }) throws -> Backend {
        switch choice {
        case .cpu:
            return try cpu(threads: threads, precision: precision)
        case .cuda(let n):
            #if CUDA
            return try CUDABackend(deviceIndex: n, strictFP32: strictFP32, batchSize: batchSize, precision: precision)
            #else
            throw DeviceUnavailable(device: "cuda:\(n)",
                                    reason: "this strata was built without the CUDA trait (rebuild with `swift build --traits CUDA`, see README)")
            #endif
        case .auto:
            #if CUDA
            do {
                return try CUDABackend(deviceIndex: 0, strictFP32: strictFP32, batchSize: batchSize, precision: precision)
            } catch {
                notice("strata: no usable GPU (\(error)); using the CPU")
                return try cpu(threads: threads, precision: precision)
            }
            #else
            notice("strata: this build has no CUDA; using the CPU")
            return try cpu(threads: threads, precision: precision)
            #endif
        }
    }

    /// The CPU backend, or one line saying why it cannot run (oneDNN missing, a precision this
    /// CPU does not compute in).
    private static func cpu(threads: Int?, precision: Precision) throws -> CPUBackend {
        try CPUBackend.checkRuntime()
        if let reason = CPUBackend.refusal(precision) { throw DeviceUnavailable(device: "cpu", reason: reason) }
        return CPUBackend(threads: threads, precision: precision)
    }
}
