/// A block of float32 memory owned by one backend (host memory for the CPU, device memory for CUDA).
/// Freed when the last tensor viewing it goes away.
public final class Storage: @unchecked Sendable {
    public let device: Device
    /// Capacity in float32 elements.
    public let count: Int
    /// Host or device address of element 0.
    public let base: UnsafeMutableRawPointer
    private let release: @Sendable (UnsafeMutableRawPointer) -> Void

    public init(device: Device, count: Int, base: UnsafeMutableRawPointer,
                release: @escaping @Sendable (UnsafeMutableRawPointer) -> Void) {
        self.device = device
        self.count = count
        self.base = base
        self.release = release
    }

    deinit { release(base) }
}

/// A dense float32 tensor: a logical shape over a contiguous range of a `Storage`.
/// Image tensors are (N, C, H, W). The order of the elements in memory is the backend's choice
/// (`Backend`'s conventions: the CPU stores rank-4 tensors channels-last), so read and write
/// them through the backend (`upload`, `download`, `copy`), not through `hostPointer`, unless
/// you are that backend. Tensors are views: copying one copies the reference, not the data.
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public let storage: Storage
    /// First element, in elements from `storage.base`.
    public let offset: Int
    public let shape: [Int]

    public init(storage: Storage, offset: Int = 0, shape: [Int]) {
        let count = shape.reduce(1, *)
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(offset >= 0 && offset + count <= storage.count,
                     "view \(shape) at \(offset) exceeds storage of \(storage.count) elements")
        self.storage = storage
        self.offset = offset
        self.shape = shape
    }

    public var device: Device { storage.device }
    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    public var description: String { "Tensor(\(shape), \(device))" }

    /// The same memory under another shape with the same element count. Only for tensors whose
    /// backend stores both shapes alike: not from or to a rank-4 shape on the CPU (channels-last);
    /// use `Backend.copy` into a tensor of the new shape there.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(storage: storage, offset: offset, shape: newShape)
    }

    /// Rows `range` of the first dimension (a sub-batch), sharing storage (contiguous in every
    /// backend's storage order).
    public func slice(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0],
                     "slice \(range) out of \(shape)")
        let row = shape.dropFirst().reduce(1, *)
        var s = shape
        s[0] = range.count
        return Tensor(storage: storage, offset: offset + range.lowerBound * row, shape: s)
    }

    /// Address of the first element, in the backend's address space (device memory for CUDA).
    public var rawAddress: UnsafeMutableRawPointer {
        storage.base + offset * MemoryLayout<Float>.stride
    }

    /// Host pointer to the first element. Only for CPU tensors.
    public var hostPointer: UnsafeMutablePointer<Float> {
        precondition(device == .cpu, "hostPointer on a \(device) tensor")
        return rawAddress.assumingMemoryBound(to: Float.self)
    }

    /// Dimensions interpreted as (N, C, H, W); rank-2 tensors read as (N, C, 1, 1).
    public var nchw: (n: Int, c: Int, h: Int, w: Int) {
        switch rank {
        case 4: return (shape[0], shape[1], shape[2], shape[3])
        case 2: return (shape[0], shape[1], 1, 1)
        default: preconditionFailure("expected rank 2 or 4, got \(shape)")
        }
    }
}
