/// Where a tensor lives and which backend computes on it.
public enum Device: Hashable, Sendable, CustomStringConvertible {
    case cpu
    case cuda(Int)

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(let n): return "cuda:\(n)"
        }
    }

    /// Parses `cpu`, `cuda` (device 0) or `cuda:N`.
    public init?(parsing text: String) {
        if text == "cpu" { self = .cpu; return }
        if text == "cuda" { self = .cuda(0); return }
        if text.hasPrefix("cuda:"), let n = Int(text.dropFirst(5)), n >= 0 { self = .cuda(n); return }
        return nil
    }
}
