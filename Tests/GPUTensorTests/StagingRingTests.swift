import XCTest
@testable import GPUTensor

/// The upload staging ring's bookkeeping (`StagingRing`, used by the CUDA backend's uploads)
/// against a fake device: buffers are numbers, a fence passes when the fake device says so.
final class StagingRingTests: XCTestCase {
    /// A fake stream: copies out of slots complete in the order they were queued, when `finish` says.
    final class FakeDevice {
        var nextBuffer = 0
        var allocated: [Int: Int] = [:]       // buffer -> capacity
        var released: [Int] = []
        var waits: [Int] = []
        /// Queued copies, oldest first: (buffer, offset, bytes).
        var pending: [(buffer: Int, offset: Int, bytes: Int)] = []

        func isDone(_ buffer: Int) -> Bool { !pending.contains { $0.buffer == buffer } }
        func wait(_ buffer: Int) {
            waits.append(buffer)
            // The stream runs in order: everything up to the buffer's last copy finishes.
            if let last = pending.lastIndex(where: { $0.buffer == buffer }) { pending.removeFirst(last + 1) }
        }
        func allocate(_ capacity: Int) -> Int { nextBuffer += 1; allocated[nextBuffer] = capacity; return nextBuffer }
        func release(_ buffer: Int) {
            XCTAssertTrue(isDone(buffer), "buffer \(buffer) released with a copy in flight")
            released.append(buffer); allocated[buffer] = nil
        }
        func finish(_ count: Int) { pending.removeFirst(min(count, pending.count)) }
    }

    /// One upload: acquire, check the region is inside its buffer and overlaps no copy in flight, queue it.
    @discardableResult
    private func upload(_ bytes: Int, _ ring: inout StagingRing<Int>, _ device: FakeDevice,
                        file: StaticString = #filePath, line: UInt = #line) throws -> (buffer: Int, offset: Int) {
        let (slot, offset) = try ring.acquire(bytes: bytes, isDone: device.isDone, wait: device.wait,
                                              allocate: device.allocate, release: device.release)
        let buffer = ring.slots[slot].buffer
        XCTAssertEqual(offset % StagingRing<Int>.alignment, 0, file: file, line: line)
        XCTAssertLessThanOrEqual(offset + bytes, device.allocated[buffer] ?? -1, "region outside its buffer", file: file, line: line)
        for copy in device.pending where copy.buffer == buffer {
            XCTAssertTrue(offset + bytes <= copy.offset || copy.offset + copy.bytes <= offset,
                          "region \(offset)+\(bytes) of buffer \(buffer) overlaps a copy in flight at \(copy.offset)+\(copy.bytes)",
                          file: file, line: line)
        }
        device.pending.append((buffer, offset, bytes))
        ring.queued(slot)
        return (buffer, offset)
    }

    func testSmallUploadsShareTheOpenSlotWithoutWaiting() throws {
        var ring = StagingRing<Int>(), device = FakeDevice()
        let labels = try upload(128 * 4, &ring, device)
        let params = try upload(10 * 4, &ring, device)
        let images = try upload(3 * 32 * 32 * 4 * 64, &ring, device)
        XCTAssertEqual(device.allocated.count, 1)
        XCTAssertEqual([labels.buffer, params.buffer, images.buffer], [1, 1, 1])
        XCTAssertEqual([labels.offset, params.offset, images.offset], [0, 512, 768])
        XCTAssertEqual(device.waits, [])
    }

    func testStepsQueueAheadUntilEverySlotIsInFlightThenWaitForTheOldest() throws {
        var ring = StagingRing<Int>(maxSlots: 3), device = FakeDevice()
        let batch = 3 * 32 * 32 * 4 * 128   // 1.5 MiB: a 2 MiB slot holds one
        for _ in 0..<3 { try upload(batch, &ring, device) }
        XCTAssertEqual(device.allocated.count, 3)
        XCTAssertEqual(device.waits, [], "three uploads in flight, none waited for")
        try upload(batch, &ring, device)
        XCTAssertEqual(device.waits, [1], "the fourth waits for the oldest slot only")
        XCTAssertEqual(device.allocated.count, 3)
    }

    func testAFinishedSlotIsReusedWithoutWaitingOrAllocating() throws {
        var ring = StagingRing<Int>(maxSlots: 2), device = FakeDevice()
        let batch = 1_500_000
        try upload(batch, &ring, device)
        try upload(batch, &ring, device)
        device.finish(1)
        let third = try upload(batch, &ring, device)
        XCTAssertEqual(third.buffer, 1)
        XCTAssertEqual(third.offset, 0)
        XCTAssertEqual(device.waits, [])
        XCTAssertEqual(device.allocated.count, 2)
    }

    func testALargerUploadGrowsOnlyAFreeSlot() throws {
        var ring = StagingRing<Int>(maxSlots: 1), device = FakeDevice()
        try upload(1000, &ring, device)
        // Too big for the open slot; the only slot is in flight: wait, then replace it.
        let big = try upload(5 << 20, &ring, device)
        XCTAssertEqual(device.waits, [1])
        XCTAssertEqual(device.released, [1])
        XCTAssertEqual(device.allocated[big.buffer], 8 << 20)
    }

    func testTheByteLimitHoldsWhileAnUploadStillFits() throws {
        var ring = StagingRing<Int>(maxSlots: 8, maxBytes: 4 << 20), device = FakeDevice()
        for _ in 0..<6 { try upload(1_500_000, &ring, device) }
        XCTAssertLessThanOrEqual(ring.totalBytes, 4 << 20)
        XCTAssertEqual(device.allocated.count, 2)
        XCTAssertFalse(device.waits.isEmpty)
        // One upload bigger than the limit still gets a slot.
        let huge = try upload(6 << 20, &ring, device)
        XCTAssertGreaterThanOrEqual(device.allocated[huge.buffer] ?? 0, 6 << 20)
    }

    func testAFailedAllocationKeepsTheOldBuffer() throws {
        var ring = StagingRing<Int>(maxSlots: 1), device = FakeDevice()
        try upload(1000, &ring, device)
        device.finish(1)
        struct NoMemory: Error {}
        XCTAssertThrowsError(try ring.acquire(bytes: 4 << 20, isDone: device.isDone, wait: device.wait,
                                              allocate: { _ in throw NoMemory() }, release: device.release))
        XCTAssertEqual(ring.slots.map(\.buffer), [1])
        XCTAssertEqual(device.released, [])
        XCTAssertEqual(try upload(1000, &ring, device).buffer, 1)
    }

    /// Random sizes and completions: no region ever overlaps a copy in flight (checked in `upload`).
    func testRandomTrafficNeverOverwritesACopyInFlight() throws {
        var generator = SystemRandomNumberGenerator()
        for limit in [1, 2, 3, 8] {
            var ring = StagingRing<Int>(maxSlots: limit, maxBytes: 32 << 20), device = FakeDevice()
            for _ in 0..<400 {
                let bytes = [4, 512, 40_000, 1 << 20, 3 << 20][Int.random(in: 0..<5, using: &generator)]
                try upload(bytes, &ring, device)
                if Int.random(in: 0..<3, using: &generator) == 0 { device.finish(Int.random(in: 0..<4, using: &generator)) }
                XCTAssertLessThanOrEqual(ring.slots.count, limit)
            }
        }
    }

    func testSlotCapacities() {
        XCTAssertEqual(StagingRing<Int>.capacity(for: 1), 1 << 20)
        XCTAssertEqual(StagingRing<Int>.capacity(for: (1 << 20) + 1), 2 << 20)
        XCTAssertEqual(StagingRing<Int>.capacity(for: 64 << 20), 64 << 20)
        XCTAssertEqual(StagingRing<Int>.capacity(for: (64 << 20) + 1), 65 << 20)
    }
}
