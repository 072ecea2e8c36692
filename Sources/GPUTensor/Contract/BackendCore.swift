/// The part of the contract every backend needs before any kernel: the device, a name, memory,
/// copies between host and device, and waiting for queued work.
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol BackendCore: AnyObject {
    var device: Device { get }
    /// A short human-readable name ("cpu (oneDNN AVX-512, 2 threads)").
    var name: String { get }
    /// The format convolutions and GEMMs compute in (Precision.swift); FP32 for everything else.
    var precision: Precision { get }

    // MARK: Memory

    /// A zero-filled tensor. Throws when the device is out of memory.
    func allocate(_ shape: [Int]) throws -> Tensor
    func upload(_ source: UnsafeBufferPointer<Float>, to destination: Tensor)
    func download(_ source: Tensor, into destination: UnsafeMutableBufferPointer<Float>) throws
    /// `destination = source` in logical row-major order (same element count, same device).
    func copy(_ source: Tensor, to destination: Tensor)
    /// Waits for queued kernels and reports a device failure, if any.
    func synchronize() throws
}
