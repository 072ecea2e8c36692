/// The shape preconditions of the `Backend` contract, written once for every backend.
///
/// Each function is named after the requirement it guards and checks what that requirement's
/// specification says about shapes, counts and arguments; a failure is a bug
/// in the caller (a precondition, see Backend.swift), and its message names the call and the
/// shapes. A backend calls the check first thing in its implementation:
///
/// ```
/// public func add(_ a: Tensor, _ b: Tensor, output out: Tensor) {
///     ShapeChecks.add(a, b, output: out)
///     ...
/// }
/// ```
/// The checks compare dimensions one by one and build no arrays, so a steady-state step still
/// allocates nothing. Checks that depend on one backend's own limits (cuDNN's, OpenBLAS's) stay
/// in that backend.
///
/// This file holds the shared helpers and the memory calls; each kernel family's checks sit in an
/// extension under its specification (Kernels/<Family>/<Family>.swift).
public enum ShapeChecks {
    // MARK: Helpers

    /// Whether `t` is (n, c, h, w), without building an array.
    @inline(__always)
    public static func isShape(_ t: Tensor, _ n: Int, _ c: Int, _ h: Int, _ w: Int) -> Bool {
        t.rank == 4 && t.shape[0] == n && t.shape[1] == c && t.shape[2] == h && t.shape[3] == w
    }

    @inline(__always)
    static func disjoint(_ a: Tensor, _ b: Tensor) -> Bool {
        a.storage !== b.storage || a.offset + a.count <= b.offset || b.offset + b.count <= a.offset
    }

    // MARK: Memory

    @inline(__always)
    public static func upload(_ count: Int, to destination: Tensor) {
        precondition(count == destination.count, "upload of \(count) values into \(destination)")
    }

    @inline(__always)
    public static func download(_ source: Tensor, into count: Int) {
        precondition(count == source.count, "download of \(source) into \(count) values")
    }

    @inline(__always)
    public static func copy(_ source: Tensor, to destination: Tensor) {
        precondition(source.count == destination.count, "copy \(source) to \(destination)")
    }
}
