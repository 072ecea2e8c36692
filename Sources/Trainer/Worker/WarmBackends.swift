import GPUTensor

/// Backends kept in this process between trials (a warm search worker): a CPU backend keeps its
/// oneDNN engine, stream and convolution plans, a CUDA backend its context and cuDNN plans.
/// Reusing one is safe because a backend keeps no training state: runs allocate their own tensors,
/// and the random kernels are counter-based (seed, counter), not stateful.
///
/// Off until `enable()`: `make` then builds a new backend every call, as `BackendFactory` does.
public enum WarmBackends {
    nonisolated(unsafe) private static var enabled = false
    nonisolated(unsafe) private static var kept: [String: Backend] = [:]
    nonisolated(unsafe) public private(set) static var hits = 0

    public static func enable() { enabled = true }

    /// Forgets every kept backend and stops keeping (tests).
    public static func disable() {
        enabled = false
        kept.removeAll()
        hits = 0
    }

    /// `BackendFactory.make`, or the backend made before for the same device, threads, FP32
    /// mode, precision and (CUDA, whose layout depends on it) batch size. `auto` is kept under what it
    /// resolved to only when no notice was given (a fallback is re-tried, and said, each time).
    /// The precision has no default: a group's backend once defaulted to FP32 under bf16 members.
    public static func make(_ choice: DeviceChoice, threads: Int? = nil, strictFP32: Bool = false,
                            batchSize: Int? = nil, precision: Precision,
                            notice: (String) -> Void = { _ in }) throws -> Backend {
        guard enabled else {
            return try BackendFactory.make(choice, threads: threads, strictFP32: strictFP32, batchSize: batchSize,
                                           precision: precision, notice: notice)
        }
        let key = "\(choice) threads=\(threads.map(String.init) ?? "-") strict=\(strictFP32) precision=\(precision.rawValue) "
            + "batch=\(choice == .cpu ? "-" : batchSize.map(String.init) ?? "-")"
        if let backend = kept[key] {
            hits += 1
            return backend
        }
        var noticed = false
        let backend = try BackendFactory.make(choice, threads: threads, strictFP32: strictFP32, batchSize: batchSize,
                                              precision: precision, notice: { noticed = true; notice($0) })
        if !noticed { kept[key] = backend }
        return backend
    }
}
