#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The first field in which two settings differ, as `space.grid.lr: [0.01,0.001] here, [0.01]
/// in the directory`, so that a refusal to reuse a study directory says what changed.
enum SettingsDifference {
    static func first<T: Encodable>(_ mine: T, _ theirs: T) -> String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let a = try? encoder.encode(mine), let b = try? encoder.encode(theirs),
              let x = try? parse(Array(a)), let y = try? parse(Array(b)) else { return nil }
        return difference(x, y, path: "")
    }

    private static func parse(_ bytes: [UInt8]) throws -> HeaderJSON.Value {
        try bytes.withUnsafeBufferPointer { try HeaderJSON.Parser.parse($0) }
    }

    private static func difference(_ x: HeaderJSON.Value, _ y: HeaderJSON.Value, path: String) -> String? {
        func join(_ key: String) -> String { path.isEmpty ? key : path + "." + key }
        if case .object(let a) = x, case .object(let b) = y {
            let left = Dictionary(a.map { ($0.key, $0.value) }, uniquingKeysWith: { u, _ in u })
            let right = Dictionary(b.map { ($0.key, $0.value) }, uniquingKeysWith: { u, _ in u })
            for key in Set(left.keys).union(right.keys).sorted() {
                guard let u = left[key] else { return "\(join(key)): absent here, \(text(right[key]!)) in the directory" }
                guard let v = right[key] else { return "\(join(key)): \(text(u)) here, absent in the directory" }
                if let d = difference(u, v, path: join(key)) { return d }
            }
            return nil
        }
        if x == y { return nil }
        return "\(path.isEmpty ? "settings" : path): \(text(x)) here, \(text(y)) in the directory"
    }

    /// Compact JSON text of a value, cut at 80 characters.
    static func text(_ value: HeaderJSON.Value) -> String {
        let s: String
        switch value {
        case .object(let fields): s = "{" + fields.map { "\"\($0.key)\":" + text($0.value) }.joined(separator: ",") + "}"
        case .array(let items): s = "[" + items.map(text).joined(separator: ",") + "]"
        case .string(let v): s = "\"" + v + "\""
        case .number(let v): s = v
        case .bool(let v): s = v ? "true" : "false"
        case .null: s = "null"
        }
        return s.count > 80 ? String(s.prefix(77)) + "..." : s
    }
}
