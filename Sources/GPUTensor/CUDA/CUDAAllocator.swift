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
    let runtime: CUDARuntime
    /// Bytes held by live blocks and by the cache.
    private(set) var bytesInUse = 0
    private(set) var bytesCached = 0

    init(runtime: CUDARuntime = .real) { self.runtime = runtime }

    /// Buckets: powers of two up to 1 MiB (at least 512 bytes), then multiples of 1 MiB, so large
    /// activations waste at most 1 MiB.
    static func bucket(_ bytes: Int) -> Int {
        let b = max(bytes, 512)
        if b <= 1 << 20 { return 1 << (Int.bitWidth - (b - 1).leadingZeroBitCount) }
        return (b + (1 << 20) - 1) & ~((1 << 20) - 1)
    }

    /// A block of at least `bytes`, from the cache or `cudaMalloc`.
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
        let p = try deviceMalloc(size, what: "")
        lock.lock(); bytesInUse += size; lock.unlock()
        return (p, size)
    }

    /// `cudaMalloc(bytes)`; when the device is out of memory, the cache is given back to the
    /// driver and the call retried once. The recovered failure is cleared from the runtime's
    /// last-error state. Also used for the cuDNN workspace, which lives outside the buckets.
    func deviceMalloc(_ bytes: Int, what: @autoclosure () -> String) throws -> UnsafeMutableRawPointer {
        func attempt() throws -> UnsafeMutableRawPointer {
            let (status, p) = runtime.malloc(bytes)
            try CUDACalls.cudart("cudaMalloc(\(what())\(bytes) bytes)") { status }
            guard let p else {
                throw CUDAError(library: .cudart, status: .cudaErrorMemoryAllocation, call: "cudaMalloc(\(what())\(bytes) bytes)")
            }
            return p
        }
        do {
            return try attempt()
        } catch let error as CUDAError where error.status == .cudaErrorMemoryAllocation && bytesCached > 0 {
            runtime.clearLastError()
            try releaseCache()
            return try attempt()
        }
    }

    /// Blocks freed while a CUDA graph is captured: the graph's kernels use them on every
    /// replay, so they must not go to other tensors until the graph is gone (`CUDAGraph`).
    private var held: [(block: UnsafeMutableRawPointer, size: Int)]?

    /// Returns a block to its bucket (the `Storage` release path), or to the graph being captured.
    func recycle(_ p: UnsafeMutableRawPointer, size: Int) {
        lock.lock(); defer { lock.unlock() }
        if held != nil {
            held!.append((p, size))
            return
        }
        free[size, default: []].append(p)
        bytesInUse -= size
        bytesCached += size
    }

    /// From now on, freed blocks are held (a graph capture begins).
    func beginHolding() {
        lock.lock(); defer { lock.unlock() }
        precondition(held == nil, "a graph capture is already under way")
        held = []
    }

    /// The blocks freed since `beginHolding`; freed blocks go to the cache again.
    func endHolding() -> [(block: UnsafeMutableRawPointer, size: Int)] {
        lock.lock(); defer { lock.unlock() }
        defer { held = nil }
        return held ?? []
    }

    /// Gives back blocks a graph held (once it is destroyed and the device is done with it).
    func recycle(held blocks: [(block: UnsafeMutableRawPointer, size: Int)]) {
        for (block, size) in blocks { recycle(block, size: size) }
    }

    /// Frees every cached block. Waits for the device first, since a block may still be in use
    /// by queued work of a tensor that was just released; if that wait fails (a kernel faulted),
    /// nothing is freed and the fault is thrown.
    func releaseCache() throws {
        lock.lock(); defer { lock.unlock() }
        guard bytesCached > 0 else { return }
        try runtime.synchronizeDevice(before: "releasing \(bytesCached) cached bytes")
        for list in free.values { for p in list { _ = runtime.free(p) } }
        free.removeAll()
        bytesCached = 0
    }

    /// Frees a block that is not in the cache (the workspace), after a checked device wait.
    func freeNow(_ p: UnsafeMutableRawPointer, what: @autoclosure () -> String) throws {
        try runtime.synchronizeDevice(before: "freeing \(what())")
        _ = runtime.free(p)
    }

    deinit {
        // At teardown a failed wait has nowhere to go; the blocks are freed regardless.
        _ = runtime.deviceSynchronize()
        for list in free.values { for p in list { _ = runtime.free(p) } }
    }
}

/// Page-locked host memory for staging uploads and downloads, so `cudaMemcpyAsync` really is
/// asynchronous and runs at full bus speed. Grown on demand; the downloads' buffer (uploads have
/// `UploadStaging`).
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

/// Pinned host memory for uploads, many in flight at once (`StagingRing` decides where each
/// goes): each buffer has an event recorded after every copy out of it, so the host waits only
/// when every buffer still has a copy queued, and then only for the oldest, never for the
/// device's other work.
final class UploadStaging {
    struct Slot {
        let base: UnsafeMutableRawPointer
        let copied: cudaEvent_t?
    }
    private var ring = StagingRing<Slot>()
    let mode: CUDAUploadMode

    init(mode: CUDAUploadMode = .standard) { self.mode = mode }

    /// A pinned region of at least `bytes` that no queued copy reads; call `queued` after
    /// queueing the copy out of it.
    func region(_ bytes: Int) throws -> (slot: Int, pointer: UnsafeMutableRawPointer) {
        if mode == .sync, let open = ring.open {
            // As before the ring: the previous upload's copy, and so all work queued before it, first.
            try CUDACalls.cudart("cudaEventSynchronize(previous upload)") { cudaEventSynchronize(ring.slots[open].buffer.copied) }
        }
        let (slot, offset) = try ring.acquire(
            bytes: bytes,
            isDone: { cudaEventQuery($0.copied) != cudaErrorNotReady },
            wait: { slot in try CUDACalls.cudart("cudaEventSynchronize(upload staging)") { cudaEventSynchronize(slot.copied) } },
            allocate: { size in
                var raw: UnsafeMutableRawPointer?, event: cudaEvent_t?
                try CUDACalls.cudart("cudaMallocHost(\(size) bytes)") { cudaMallocHost(&raw, size) }
                do {
                    try CUDACalls.cudart("cudaEventCreateWithFlags") { cudaEventCreateWithFlags(&event, UInt32(cudaEventDisableTiming)) }
                } catch { cudaFreeHost(raw); throw error }
                return Slot(base: raw!, copied: event)
            },
            release: { slot in cudaFreeHost(slot.base); cudaEventDestroy(slot.copied) })
        return (slot, ring.slots[slot].buffer.base + offset)
    }

    /// Records the slot's event after the copy just queued on `stream`.
    func queued(_ slot: Int, on stream: cudaStream_t?) throws {
        try CUDACalls.cudart("cudaEventRecord(upload staging)") { cudaEventRecord(ring.slots[slot].buffer.copied, stream) }
        ring.queued(slot)
    }

    /// The owner waits for its stream before this goes.
    deinit { for slot in ring.buffers { cudaFreeHost(slot.base); cudaEventDestroy(slot.copied) } }
}

/// `STRATA_CUDA_UPLOAD`: `ring` (the default) lets uploads queue ahead of the device's work;
/// `sync` makes each upload wait for the previous one's copy, as before the staging ring, so
/// that a GPU run can time what the ring is worth.
public enum CUDAUploadMode: String, Sendable, CaseIterable, CUDASetting {
    case ring, sync

    public static let variable = "STRATA_CUDA_UPLOAD"
    public static let standard: CUDAUploadMode = .ring
}

/// Device memory for cuDNN workspaces and reduction partials, grown on demand and never
/// shrunk, so a steady state allocates nothing. Allocated through the allocator's
/// `deviceMalloc`, so that a large workspace under memory pressure gets the cache's memory.
final class DeviceWorkspace {
    private var block: UnsafeMutableRawPointer?
    private(set) var capacity = 0
    let allocator: CUDAAllocator

    init(allocator: CUDAAllocator) { self.allocator = allocator }

    func reserve(_ bytes: Int) throws -> UnsafeMutableRawPointer? {
        guard bytes > 0 else { return block }
        if capacity >= bytes { return block }
        if let old = block {
            try allocator.freeNow(old, what: "the \(capacity)-byte workspace")
            block = nil; capacity = 0
        }
        block = try allocator.deviceMalloc(bytes, what: "workspace ")
        capacity = bytes
        return block
    }

    deinit { if let block { _ = allocator.runtime.free(block) } }
}
#endif
