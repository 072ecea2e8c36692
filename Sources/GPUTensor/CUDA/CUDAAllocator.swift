#if CUDA
import CCuda

/// A caching device allocator: blocks are rounded up to a size bucket and, when their `Storage`
/// goes away, returned to that bucket's free list instead of to `cudaFree`. A training step that
/// allocates the same shapes every step therefore calls `cudaMalloc` only in its first step.
///
/// Reuse is safe without events because the backend has one stream: work that used a block
/// before it was freed is ordered before work that uses it again.
final class CUDAAllocator: @unchecked Sendable {
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private let lock = HostMutex()
    private let device: Int32
    /// Bytes held by live blocks and by the cache.
    private(set) var bytesInUse = 0
    private(set) var bytesCached = 0

    init(device: Int32) { self.device = device }

    /// Buckets: powers of two up to 1 MiB (at least 512 bytes), then multiples of 1 MiB, so large
    /// activations waste at most 1 MiB.
    static func bucket(_ bytes: Int) -> Int {
        let b = max(bytes, 512)
        if b <= 1 << 20 { return 1 << (Int.bitWidth - (b - 1).leadingZeroBitCount) }
        return (b + (1 << 20) - 1) & ~((1 << 20) - 1)
    }

    /// A block of at least `bytes`, from the cache or `cudaMalloc` (which, when out of memory, is
    /// retried once after the cache is given back to the driver).
    func allocate(bytes: Int) throws -> (UnsafeMutableRawPointer, Int) {
        let size = Self.bucket(bytes)
        lock.lock()
        if var list = free[size], let p = list.popLast() {
            free[size] = list
            bytesCached -= size
            bytesInUse += size
            lock.unlock()
            return (p, size)
        }
        lock.unlock()
        var raw: UnsafeMutableRawPointer?
        do {
            try CUDACalls.cudart("cudaMalloc(\(size) bytes)") { cudaMalloc(&raw, size) }
        } catch let error as CUDAError where error.status == .cudaErrorMemoryAllocation {
            releaseCache()
            try CUDACalls.cudart("cudaMalloc(\(size) bytes)") { cudaMalloc(&raw, size) }
        }
        guard let p = raw else {
            throw CUDAError(library: .cudart, status: .cudaErrorMemoryAllocation, call: "cudaMalloc(\(size) bytes)")
        }
        lock.lock(); bytesInUse += size; lock.unlock()
        return (p, size)
    }

    /// Returns a block to its bucket (the `Storage` release path).
    func recycle(_ p: UnsafeMutableRawPointer, size: Int) {
        lock.lock(); defer { lock.unlock() }
        free[size, default: []].append(p)
        bytesInUse -= size
        bytesCached += size
    }

    /// Frees every cached block (waits for the device first, since a block may still be in use
    /// by queued work of a tensor that was just released).
    func releaseCache() {
        lock.lock(); defer { lock.unlock() }
        guard bytesCached > 0 else { return }
        cudaDeviceSynchronize()
        for list in free.values { for p in list { cudaFree(p) } }
        free.removeAll()
        bytesCached = 0
    }

    deinit { releaseCache() }
}

/// Page-locked host memory for staging uploads and downloads, so `cudaMemcpyAsync` really is
/// asynchronous and runs at full bus speed. Grown on demand; one buffer per direction.
final class PinnedBuffer {
    private(set) var base: UnsafeMutableRawPointer?
    private(set) var capacity = 0

    /// At least `bytes` of pinned memory (contents not kept when it grows).
    func reserve(_ bytes: Int) throws -> UnsafeMutableRawPointer {
        if let base, capacity >= bytes { return base }
        if let base { cudaFreeHost(base); self.base = nil; capacity = 0 }
        let size = max(CUDAAllocator.bucket(bytes), 1 << 20)
        var raw: UnsafeMutableRawPointer?
        try CUDACalls.cudart("cudaMallocHost(\(size) bytes)") { cudaMallocHost(&raw, size) }
        base = raw
        capacity = size
        return raw!
    }

    deinit { if let base { cudaFreeHost(base) } }
}
#endif
