/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011):
/// a counter-based generator. Every random kernel of every backend derives element `i` of a
/// call from `(seed, counter, i)` alone, so results do not depend on threading or device and a
/// run's random state is just a counter.
///
/// Element `i` of stream `(seed, counter)` is lane `i % 4` of the block
/// `philox(key: seed, ctr: (i / 4, counter))`.
public enum Philox {
    /// One 10-round block: four 32-bit outputs for a 128-bit counter and 64-bit key.
    @inline(__always)
    public static func block(seed: UInt64, counter: UInt64, index: UInt64) -> (UInt32, UInt32, UInt32, UInt32) {
        var c0 = UInt32(truncatingIfNeeded: index), c1 = UInt32(truncatingIfNeeded: index >> 32)
        var c2 = UInt32(truncatingIfNeeded: counter), c3 = UInt32(truncatingIfNeeded: counter >> 32)
        var k0 = UInt32(truncatingIfNeeded: seed), k1 = UInt32(truncatingIfNeeded: seed >> 32)
        for round in 0..<10 {
            if round > 0 { k0 &+= 0x9E37_79B9; k1 &+= 0xBB67_AE85 }
            let p0 = UInt64(0xD251_1F53) &* UInt64(c0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
            let hi0 = UInt32(truncatingIfNeeded: p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(truncatingIfNeeded: p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
        }
        return (c0, c1, c2, c3)
    }

    /// The 32-bit word at element `i` of stream `(seed, counter)`.
    @inline(__always)
    public static func bits(seed: UInt64, counter: UInt64, index i: Int) -> UInt32 {
        let b = block(seed: seed, counter: counter, index: UInt64(i >> 2))
        switch i & 3 {
        case 0: return b.0
        case 1: return b.1
        case 2: return b.2
        default: return b.3
        }
    }

    /// Maps 32 random bits to a float in [0, 1) using the top 24 bits (exact in float32).
    @inline(__always)
    public static func unit(_ bits: UInt32) -> Float { Float(bits >> 8) * (1.0 / 16_777_216.0) }

    /// Uniform in [0, 1) at element `i` of stream `(seed, counter)`.
    @inline(__always)
    public static func uniform(seed: UInt64, counter: UInt64, index i: Int) -> Float {
        unit(bits(seed: seed, counter: counter, index: i))
    }

    /// Standard normal at element `i`: Box-Muller on the block's word pairs (0,1) and (2,3);
    /// even lanes take the cosine, odd lanes the sine, with `u1 = (w_even + 1) / 2^32` in (0, 1]
    /// and `u2 = w_odd / 2^32`. Computed in Double, rounded once.
    @inline(__always)
    public static func normal(seed: UInt64, counter: UInt64, index i: Int) -> Float {
        let b = block(seed: seed, counter: counter, index: UInt64(i >> 2))
        let (a, c) = (i & 2) == 0 ? (b.0, b.1) : (b.2, b.3)
        let u1 = (Double(a) + 1.0) * (1.0 / 4_294_967_296.0)
        let u2 = Double(c) * (1.0 / 4_294_967_296.0)
        let r = (-2.0 * _log(u1)).squareRoot()
        let theta = 2.0 * Double.pi * u2
        return Float((i & 1) == 0 ? r * _cos(theta) : r * _sin(theta))
    }
}

// libm through Glibc, without pulling in Foundation.
#if canImport(Glibc)
import Glibc
@inline(__always) func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Glibc.cos(x) }
@inline(__always) func _sin(_ x: Double) -> Double { Glibc.sin(x) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Darwin.cos(x) }
@inline(__always) func _sin(_ x: Double) -> Double { Darwin.sin(x) }
#endif
