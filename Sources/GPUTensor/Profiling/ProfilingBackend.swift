#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What one kernel cost over a profiled interval.
public struct KernelProfile: Sendable, Equatable {
    /// The `Backend` method, e.g. "conv2dForward", "batchNormBackward".
    public var name: String
    public var calls: Int
    /// Wall time spent inside the calls (CLOCK_MONOTONIC).
    public var seconds: Double
    /// Floating-point operations performed, where the kernel has a known count (convolutions:
    /// `ConvGeometry.flops` per call; gemm: 2mnk); 0 otherwise.
    public var flops: Double

    public init(name: String, calls: Int, seconds: Double, flops: Double) {
        self.name = name; self.calls = calls; self.seconds = seconds; self.flops = flops
    }

    /// Achieved GFLOP/s, nil for kernels without a FLOP count.
    public var gflopsPerSecond: Double? {
        flops > 0 && seconds > 0 ? flops / (seconds * 1e9) : nil
    }
}

/// A `ForwardingBackend` that records, per kernel, the number of calls,
/// the wall time and (for convolutions and gemm) the FLOPs.
///
/// ```
/// let profiler = ProfilingBackend(wrapping: CPUBackend())
/// ... train with `profiler` as the backend ...
/// profiler.reset()            // after warm-up
/// ... timed steps ...
/// print(profiler.table(totalSeconds: elapsed))
/// ```
///
/// Timing asynchronous backends: a CUDA kernel call returns as soon as the launch is queued, so
/// with `synchronizeEachCall` (the default) the profiler calls `base.synchronize()` before it
/// stops the clock, and each kernel is charged its real execution time. This serialises the
/// GPU: the host can no longer queue work ahead of the device, so a profiled step is slower
/// than an unprofiled one, and the per-kernel times add up to more than the overlap-aware total.
/// With `synchronizeEachCall = false` the times are launch (host) costs only; kernels that wait
/// for the device themselves (`download`, `sum`, `synchronize`) then absorb the queued work.
/// On the CPU backend, whose kernels are synchronous, the flag makes no difference.
///
/// Not thread-safe: drive it from one thread, as trainers drive a backend. The bookkeeping is
/// a fixed table indexed by kernel, so a call allocates nothing beyond what `base` does.
public final class ProfilingBackend: ForwardingBackend {
    /// Whether to wait for the device after every call so that times are execution times
    /// (see the type's documentation).
    public var synchronizeEachCall: Bool
    /// Whether to count FLOPs of convolutions and gemm.
    public var countFlops: Bool

    private var calls: [Int]
    private var nanoseconds: [UInt64]
    private var flops: [Double]

    public init(wrapping base: Backend, synchronizeEachCall: Bool = true, countFlops: Bool = true) {
        self.synchronizeEachCall = synchronizeEachCall
        self.countFlops = countFlops
        calls = [Int](repeating: 0, count: BackendKernel.allCases.count)
        nanoseconds = [UInt64](repeating: 0, count: BackendKernel.allCases.count)
        flops = [Double](repeating: 0, count: BackendKernel.allCases.count)
        super.init(wrapping: base)
    }

    /// Clears every counter.
    public func reset() {
        for i in calls.indices { calls[i] = 0; nanoseconds[i] = 0; flops[i] = 0 }
    }

    /// The kernels called since the last reset, most time first (ties by name).
    public func report() -> [KernelProfile] {
        var out: [KernelProfile] = []
        for k in BackendKernel.allCases where calls[k.rawValue] > 0 {
            out.append(KernelProfile(name: k.name, calls: calls[k.rawValue],
                                     seconds: Double(nanoseconds[k.rawValue]) * 1e-9, flops: flops[k.rawValue]))
        }
        return out.sorted { $0.seconds != $1.seconds ? $0.seconds > $1.seconds : $0.name < $1.name }
    }

    /// The report as an aligned text table: time, % of `totalSeconds`, calls, ms per call and
    /// GFLOP/s where known. With `totalSeconds` (the wall time of the profiled interval) a final
    /// row shows the time spent outside the backend (layer bookkeeping, data, host code).
    public func table(totalSeconds: Double? = nil) -> String {
        let rows = report()
        let kernelSeconds = rows.reduce(0) { $0 + $1.seconds }
        let total = totalSeconds ?? kernelSeconds
        func percent(_ s: Double) -> String { total > 0 ? fixed(100 * s / total, 1) : "-" }
        var lines: [[String]] = [["kernel", "calls", "total ms", "%", "ms/call", "GFLOP/s"]]
        for r in rows {
            lines.append([r.name, String(r.calls), fixed(r.seconds * 1e3, 2), percent(r.seconds),
                          fixed(r.seconds * 1e3 / Double(r.calls), 3),
                          r.gflopsPerSecond.map { fixed($0, 1) } ?? ""])
        }
        lines.append(["all kernels", String(rows.reduce(0) { $0 + $1.calls }), fixed(kernelSeconds * 1e3, 2),
                      percent(kernelSeconds), "", ""])
        if let totalSeconds {
            lines.append(["outside backend", "", fixed((totalSeconds - kernelSeconds) * 1e3, 2),
                          percent(totalSeconds - kernelSeconds), "", ""])
        }
        var widths = [Int](repeating: 0, count: lines[0].count)
        for l in lines { for (i, c) in l.enumerated() { widths[i] = max(widths[i], c.count) } }
        return lines.map { l in
            l.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return i == 0 ? c + pad : pad + c
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    // MARK: Timing

    @inline(__always)
    private func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Every forwarded call comes through here (see `ForwardingBackend`).
    override public func around<R>(_ call: BackendCall, _ body: () throws -> R) rethrows -> R {
        let kernel = call.kernel
        let start = now()
        defer {
            // Not for `synchronize` itself: that would synchronize twice.
            if synchronizeEachCall && kernel != .synchronize { try? base.synchronize() }
            let i = kernel.rawValue
            calls[i] += 1
            nanoseconds[i] &+= now() &- start
            if countFlops { flops[i] += call.flops }
        }
        return try body()
    }
}

/// `x` with `digits` decimals, without Foundation's String(format:).
private func fixed(_ x: Double, _ digits: Int) -> String {
    guard x.isFinite else { return String(x) }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(x) * scale).rounded()
    guard scaled < 9e18 else { return String(x) }
    let n = UInt64(scaled), p = UInt64(scale)
    var s = String(n / p)
    if digits > 0 {
        let frac = String(n % p)
        s += "." + String(repeating: "0", count: digits - frac.count) + frac
    }
    return (x < 0 && n > 0 ? "-" : "") + s
}
