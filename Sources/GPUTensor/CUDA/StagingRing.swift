/// The bookkeeping of the CUDA backend's upload staging: which pinned host region an upload may
/// fill now without waiting for the device's queued work. No CUDA in it (buffers and their
/// fences are the caller's), so it is tested without a GPU and without the CUDA trait.
///
/// Slots are pinned buffers, each with a fence (a CUDA event) recorded after every copy out of
/// it. Uploads fill the open slot one after another at 256-byte aligned offsets (labels, images
/// and small per-call parameters share it); when the next upload does not fit, another slot whose
/// copies have all finished is opened, or a new one is made while under `maxSlots` and
/// `maxBytes`; only when every slot still has a copy in flight does the host wait, for the slot
/// used longest ago. A region is never handed out while a copy from it may be in flight.
struct StagingRing<Buffer> {
    struct Slot {
        var buffer: Buffer
        var capacity: Int
        /// Bytes handed out since the slot was opened.
        var used = 0
        /// A copy out of the slot was queued and its fence has not been seen to pass.
        var inFlight = false
        var lastUse = 0
    }

    private(set) var slots: [Slot] = []
    /// The slot uploads are filling, if any.
    private(set) var open: Int?
    let maxSlots: Int
    let maxBytes: Int
    private var uses = 0

    static var alignment: Int { 256 }

    init(maxSlots: Int = 8, maxBytes: Int = 256 << 20) {
        self.maxSlots = max(1, maxSlots)
        self.maxBytes = maxBytes
    }

    var totalBytes: Int { slots.reduce(0) { $0 + $1.capacity } }

    /// A new slot's size for an upload of `bytes`: at least 1 MiB, powers of two up to 64 MiB,
    /// then whole MiB.
    static func capacity(for bytes: Int) -> Int {
        let b = max(bytes, 1 << 20)
        if b <= 64 << 20 { return 1 << (Int.bitWidth - (b - 1).leadingZeroBitCount) }
        return (b + (1 << 20) - 1) & ~((1 << 20) - 1)
    }

    /// Where an upload of `bytes` goes: a slot and the offset in its buffer. `isDone` asks whether
    /// a slot's fence has passed (never blocks), `wait` blocks until it has; `allocate` makes a
    /// pinned buffer with its fence and `release` frees one (only ever one with nothing in flight).
    /// Call `queued(slot)` once the copy out of the region is queued.
    mutating func acquire(bytes: Int, isDone: (Buffer) -> Bool, wait: (Buffer) throws -> Void,
                          allocate: (Int) throws -> Buffer, release: (Buffer) -> Void) throws -> (slot: Int, offset: Int) {
        let size = max(Self.alignment, (bytes + Self.alignment - 1) / Self.alignment * Self.alignment)
        uses += 1
        if let o = open, slots[o].used + size <= slots[o].capacity {
            return take(o, size)
        }
        // Slots whose copies have all finished may be refilled from their start.
        for i in slots.indices where slots[i].inFlight && isDone(slots[i].buffer) { slots[i].inFlight = false }
        let free = slots.indices.filter { !slots[$0].inFlight }
        if let fit = free.filter({ slots[$0].capacity >= size }).min(by: { slots[$0].capacity < slots[$1].capacity }) {
            return take(fit, size, reset: true)
        }
        let needed = Self.capacity(for: size)
        if slots.count < maxSlots && totalBytes + needed <= maxBytes {
            slots.append(Slot(buffer: try allocate(needed), capacity: needed))
            return take(slots.count - 1, size, reset: true)
        }
        // Every slot is in flight, or the free ones are too small and no new one is allowed.
        let slot: Int
        if let small = free.max(by: { slots[$0].capacity < slots[$1].capacity }) {
            slot = small
        } else {
            slot = slots.indices.min { slots[$0].lastUse < slots[$1].lastUse }!
            try wait(slots[slot].buffer)
            slots[slot].inFlight = false
        }
        if slots[slot].capacity < size {
            // Made first, so a failed allocation leaves the old buffer in place.
            let grown = try allocate(needed)
            release(slots[slot].buffer)
            slots[slot].buffer = grown
            slots[slot].capacity = needed
        }
        return take(slot, size, reset: true)
    }

    /// Marks that a copy out of `slot` was queued (its fence recorded after it).
    mutating func queued(_ slot: Int) { slots[slot].inFlight = true }

    private mutating func take(_ slot: Int, _ size: Int, reset: Bool = false) -> (slot: Int, offset: Int) {
        if reset { slots[slot].used = 0 }
        let offset = slots[slot].used
        slots[slot].used += size
        slots[slot].lastUse = uses
        open = slot
        return (slot, offset)
    }

    /// Every buffer, for the owner to free at teardown (after the device is idle).
    var buffers: [Buffer] { slots.map(\.buffer) }
}
