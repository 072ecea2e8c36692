/// Training FLOPs, counted as they are executed: by phase and by key (a layer or stage name),
/// plus the FLOPs that reuse saved: backward not run for a frozen prefix, and forward of a frozen
/// prefix not recomputed because its outputs were cached.
///
/// It is updated per batch per layer, so the hot path is a plain add into a fixed struct: register
/// each key once with `slot(for:)` and pass the slot, or pass a precomputed key string (one hash
/// lookup, no allocation after the key's first use). Never build key strings per call.
///
/// Counts are Doubles: exact integers up to 2^53 (9e15), and a relative error near 1e-16 beyond,
/// which is plenty for the 1e18 FLOPs of a long ImageNet run.
///
/// ```swift
/// var ledger = FlopLedger()
/// let conv1 = ledger.slot(for: "conv1")
/// ledger.add(.forward, 2 * macs, slot: conv1)
/// ledger.skip(.frozenBackward, 2 * 2 * macs, key: "layer1")
/// let before = ledger.snapshot()   // ... one epoch later:
/// let epoch = EpochFlops(from: before, to: ledger.snapshot())
/// ```
public struct FlopLedger: Equatable, Sendable {
    /// Where executed FLOPs went. Backward is split because a frozen layer right after the trainable
    /// part still needs backward-data (to pass the gradient down) but not backward-weights.
    public enum Phase: String, Codable, CaseIterable, Sendable {
        case forward, backwardData, backwardWeights, optimizer
    }

    /// Why FLOPs were not executed.
    public enum SkipReason: String, Codable, CaseIterable, Sendable {
        /// Backward (data and weights) of a frozen prefix: backward stops before it.
        case frozenBackward
        /// Forward of a frozen prefix whose outputs came from the activation cache.
        case cachedForward
    }

    /// One key's counters. A fixed struct so that an update is one add, not a lookup.
    public struct Counters: Codable, Equatable, Sendable {
        public var forward = 0.0
        public var backwardData = 0.0
        public var backwardWeights = 0.0
        public var optimizer = 0.0
        public var skippedFrozenBackward = 0.0
        public var skippedCachedForward = 0.0

        public init() {}

        public subscript(phase: Phase) -> Double {
            get {
                switch phase {
                case .forward: return forward
                case .backwardData: return backwardData
                case .backwardWeights: return backwardWeights
                case .optimizer: return optimizer
                }
            }
            set {
                switch phase {
                case .forward: forward = newValue
                case .backwardData: backwardData = newValue
                case .backwardWeights: backwardWeights = newValue
                case .optimizer: optimizer = newValue
                }
            }
        }

        public subscript(reason: SkipReason) -> Double {
            get {
                switch reason {
                case .frozenBackward: return skippedFrozenBackward
                case .cachedForward: return skippedCachedForward
                }
            }
            set {
                switch reason {
                case .frozenBackward: skippedFrozenBackward = newValue
                case .cachedForward: skippedCachedForward = newValue
                }
            }
        }

        public var executed: Double { forward + backwardData + backwardWeights + optimizer }
        public var skipped: Double { skippedFrozenBackward + skippedCachedForward }

        public static func + (a: Counters, b: Counters) -> Counters {
            var r = a
            r.forward += b.forward
            r.backwardData += b.backwardData
            r.backwardWeights += b.backwardWeights
            r.optimizer += b.optimizer
            r.skippedFrozenBackward += b.skippedFrozenBackward
            r.skippedCachedForward += b.skippedCachedForward
            return r
        }

        public static func - (a: Counters, b: Counters) -> Counters {
            var r = a
            r.forward -= b.forward
            r.backwardData -= b.backwardData
            r.backwardWeights -= b.backwardWeights
            r.optimizer -= b.optimizer
            r.skippedFrozenBackward -= b.skippedFrozenBackward
            r.skippedCachedForward -= b.skippedCachedForward
            return r
        }
    }

    /// A key's position in the ledger; valid for the ledger that issued it (and its copies).
    public struct Slot: Hashable, Sendable {
        fileprivate let index: Int
    }

    // Parallel arrays in first-use order; `index` maps a key to its position.
    private var keys: [String] = []
    private var counters: [Counters] = []
    private var index: [String: Int] = [:]

    public init() {}

    /// The slot for `key`, registering it on first use.
    public mutating func slot(for key: String) -> Slot {
        if let i = index[key] { return Slot(index: i) }
        index[key] = keys.count
        keys.append(key)
        counters.append(Counters())
        return Slot(index: keys.count - 1)
    }

    /// Adds executed FLOPs (finite, >= 0).
    @inline(__always)
    public mutating func add(_ phase: Phase, _ flops: Double, slot: Slot) {
        precondition(flops >= 0 && flops.isFinite, "FlopLedger: FLOPs must be finite and >= 0, got \(flops)")
        counters[slot.index][phase] += flops
    }

    public mutating func add(_ phase: Phase, _ flops: Double, key: String) {
        add(phase, flops, slot: slot(for: key))
    }

    /// Adds FLOPs that were not executed thanks to reuse (finite, >= 0).
    @inline(__always)
    public mutating func skip(_ reason: SkipReason, _ flops: Double, slot: Slot) {
        precondition(flops >= 0 && flops.isFinite, "FlopLedger: FLOPs must be finite and >= 0, got \(flops)")
        counters[slot.index][reason] += flops
    }

    public mutating func skip(_ reason: SkipReason, _ flops: Double, key: String) {
        skip(reason, flops, slot: slot(for: key))
    }

    /// Adds every key's counters of `other` (e.g. a stage's ledger into the run's).
    public mutating func merge(_ other: FlopLedger) {
        for (i, key) in other.keys.enumerated() {
            let s = slot(for: key)
            counters[s.index] = counters[s.index] + other.counters[i]
        }
    }

    // MARK: Totals (cold path: they walk all keys)

    /// All keys, sorted.
    public var sortedKeys: [String] { keys.sorted() }

    /// The counters of `key`; zeros when it was never used.
    public func counters(for key: String) -> Counters {
        index[key].map { counters[$0] } ?? Counters()
    }

    /// The sum over all keys.
    public var totals: Counters { counters.reduce(Counters(), +) }

    public func total(_ phase: Phase) -> Double { counters.reduce(0) { $0 + $1[phase] } }
    public func total(_ reason: SkipReason) -> Double { counters.reduce(0) { $0 + $1[reason] } }
    public var executedTotal: Double { counters.reduce(0) { $0 + $1.executed } }
    public var skippedTotal: Double { counters.reduce(0) { $0 + $1.skipped } }

    /// A frozen copy of the counts, for `metrics.jsonl` and `summary.json`.
    public func snapshot() -> FlopSnapshot {
        var byKey: [String: Counters] = [:]
        byKey.reserveCapacity(keys.count)
        for (i, key) in keys.enumerated() { byKey[key] = counters[i] }
        return FlopSnapshot(byKey: byKey)
    }

    /// A ledger holding a snapshot's counts again (after resuming a run).
    public init(restoring snapshot: FlopSnapshot) {
        for key in snapshot.byKey.keys.sorted() {
            let s = slot(for: key)
            counters[s.index] = snapshot.byKey[key]!
        }
    }

    /// Equal counts per key, whatever order the keys were first used in.
    public static func == (a: FlopLedger, b: FlopLedger) -> Bool { a.snapshot() == b.snapshot() }
}

/// The ledger's counts at one moment. In JSON: `executed`, `skipped`, `total` (the counters summed
/// over keys) and `byKey` (an object, key name -> counters).
///
/// Key order: JSON objects are what a reader wants here (`.byKey["layer1"]`), and this toolchain's
/// JSONEncoder writes any keyed container in hash order, so the order is sorted and stable only
/// with `.sortedKeys`, which `RunDirectory` always sets for `metrics.jsonl` and `summary.json`.
public struct FlopSnapshot: Codable, Equatable, Sendable {
    public let byKey: [String: FlopLedger.Counters]

    public init(byKey: [String: FlopLedger.Counters]) { self.byKey = byKey }

    /// The sum over all keys.
    public var total: FlopLedger.Counters { byKey.values.reduce(FlopLedger.Counters(), +) }
    public var executed: Double { total.executed }
    public var skipped: Double { total.skipped }

    /// `self - earlier`, key by key; a key missing on one side counts as zeros.
    public func subtracting(_ earlier: FlopSnapshot) -> FlopSnapshot {
        var out = byKey
        for (key, old) in earlier.byKey { out[key] = (out[key] ?? FlopLedger.Counters()) - old }
        return FlopSnapshot(byKey: out)
    }

    private enum CodingKeys: String, CodingKey { case total, executed, skipped, byKey }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(executed, forKey: .executed)
        try c.encode(skipped, forKey: .skipped)
        try c.encode(total, forKey: .total)
        try c.encode(byKey, forKey: .byKey)
    }

    // The totals are derived; only `byKey` is read back.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        byKey = try c.decode([String: FlopLedger.Counters].self, forKey: .byKey)
    }
}

/// One epoch's FLOPs (the difference of the snapshots taken before and after it) and the running
/// totals at its end: one `metrics.jsonl` line's worth.
public struct EpochFlops: Codable, Equatable, Sendable {
    /// Counts of this epoch only.
    public let epoch: FlopSnapshot
    /// Executed FLOPs since the run started, at the end of this epoch.
    public let cumulativeExecuted: Double
    /// Skipped FLOPs since the run started, at the end of this epoch.
    public let cumulativeSkipped: Double

    public init(from before: FlopSnapshot, to after: FlopSnapshot) {
        epoch = after.subtracting(before)
        cumulativeExecuted = after.executed
        cumulativeSkipped = after.skipped
    }
}
