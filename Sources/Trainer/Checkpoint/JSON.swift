// A small strict JSON reader and string escaper for safetensors headers. Hand-written rather
// than JSONDecoder so that it keeps key order, reports byte positions, rejects duplicate keys,
// and bounds nesting depth: malformed input throws, never crashes.

/// JSON for safetensors headers, in a namespace of its own so it cannot clash with other JSON
/// helpers of the module.
enum HeaderJSON {}

extension HeaderJSON {
    /// A parsed JSON value. Objects keep their key order; numbers keep their text.
    enum Value: Equatable {
        case object([(key: String, value: HeaderJSON.Value)])
        case array([HeaderJSON.Value])
        case string(String)
        case number(String)
        case bool(Bool)
        case null

        static func == (a: HeaderJSON.Value, b: HeaderJSON.Value) -> Bool {
            switch (a, b) {
            case let (.object(x), .object(y)):
                return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
            case let (.array(x), .array(y)): return x == y
            case let (.string(x), .string(y)): return x == y
            case let (.number(x), .number(y)): return x == y
            case let (.bool(x), .bool(y)): return x == y
            case (.null, .null): return true
            default: return false
            }
        }

        /// "object", "array", ... for error messages.
        var typeName: String {
            switch self {
            case .object: return "an object"
            case .array: return "an array"
            case .string: return "a string"
            case .number: return "a number"
            case .bool: return "a boolean"
            case .null: return "null"
            }
        }

        /// The value as a non-negative integer, nil when it is not one (or does not fit in Int).
        var nonNegativeInteger: Int? {
            guard case .number(let text) = self, !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            return Int(text)
        }
    }

    struct ParseError: Error, Equatable {
        /// Byte offset in the parsed text.
        var offset: Int
        var message: String
    }

    struct Parser {
        static let maxDepth = 64

        /// Parses exactly one value surrounded by optional whitespace.
        static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws -> HeaderJSON.Value {
            var parser = HeaderJSON.Parser(bytes: bytes)
            parser.skipWhitespace()
            let value = try parser.parseValue(depth: 0)
            parser.skipWhitespace()
            guard parser.position == bytes.count else { throw parser.error("unexpected text after the JSON value") }
            return value
        }

        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0

        func error(_ message: String) -> HeaderJSON.ParseError { HeaderJSON.ParseError(offset: position, message: message) }

        var peek: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipWhitespace() {
            while let c = peek, c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { position += 1 }
        }

        mutating func expect(_ literal: String, _ value: HeaderJSON.Value) throws -> HeaderJSON.Value {
            for byte in literal.utf8 {
                guard peek == byte else { throw error("invalid literal (expected \(literal))") }
                position += 1
            }
            return value
        }

        mutating func parseValue(depth: Int) throws -> HeaderJSON.Value {
            guard depth < HeaderJSON.Parser.maxDepth else { throw error("nesting deeper than \(HeaderJSON.Parser.maxDepth) levels") }
            guard let c = peek else { throw error("unexpected end of text, expected a value") }
            switch c {
            case UInt8(ascii: "{"): return try parseObject(depth: depth)
            case UInt8(ascii: "["): return try parseArray(depth: depth)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): return try expect("true", .bool(true))
            case UInt8(ascii: "f"): return try expect("false", .bool(false))
            case UInt8(ascii: "n"): return try expect("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
            default: throw error("unexpected character '\(Unicode.Scalar(c).escaped(asASCII: true))', expected a value")
            }
        }

        mutating func parseObject(depth: Int) throws -> HeaderJSON.Value {
            position += 1   // {
            var members: [(key: String, value: HeaderJSON.Value)] = []
            var keys = Set<String>()
            skipWhitespace()
            if peek == UInt8(ascii: "}") { position += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard peek == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let keyStart = position
                let key = try parseString()
                guard keys.insert(key).inserted else {
                    throw HeaderJSON.ParseError(offset: keyStart, message: "duplicate key \"\(key)\"")
                }
                skipWhitespace()
                guard peek == UInt8(ascii: ":") else { throw error("expected ':' after key \"\(key)\"") }
                position += 1
                skipWhitespace()
                members.append((key, try parseValue(depth: depth + 1)))
                skipWhitespace()
                switch peek {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "}"): position += 1; return .object(members)
                default: throw error("expected ',' or '}' in object")
                }
            }
        }

        mutating func parseArray(depth: Int) throws -> HeaderJSON.Value {
            position += 1   // [
            var elements: [HeaderJSON.Value] = []
            skipWhitespace()
            if peek == UInt8(ascii: "]") { position += 1; return .array(elements) }
            while true {
                skipWhitespace()
                elements.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                switch peek {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "]"): position += 1; return .array(elements)
                default: throw error("expected ',' or ']' in array")
                }
            }
        }

        mutating func parseNumber() throws -> HeaderJSON.Value {
            let start = position
            func digits() -> Int {
                let s = position
                while let c = peek, c >= 48 && c <= 57 { position += 1 }
                return position - s
            }
            if peek == UInt8(ascii: "-") { position += 1 }
            let intStart = position
            guard digits() > 0 else { throw error("invalid number") }
            if bytes[intStart] == 48 && position - intStart > 1 {
                throw HeaderJSON.ParseError(offset: intStart, message: "invalid number (leading zero)")
            }
            if peek == UInt8(ascii: ".") {
                position += 1
                guard digits() > 0 else { throw error("invalid number (no digits after '.')") }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                position += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { position += 1 }
                guard digits() > 0 else { throw error("invalid number (no digits in exponent)") }
            }
            return .number(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self))
        }

        mutating func parseString() throws -> String {
            let start = position
            position += 1   // opening quote
            var scalars = String.UnicodeScalarView()
            var runStart = position
            // Appends the plain bytes since runStart, checking that they are valid UTF-8.
            func flush(_ end: Int) throws {
                guard end > runStart else { return }
                let run = UnsafeBufferPointer(rebasing: bytes[runStart..<end])
                guard let text = String(validating: run, as: UTF8.self) else {
                    throw HeaderJSON.ParseError(offset: runStart, message: "string is not valid UTF-8")
                }
                scalars.append(contentsOf: text.unicodeScalars)
            }
            while true {
                guard let c = peek else { throw HeaderJSON.ParseError(offset: start, message: "unterminated string") }
                switch c {
                case UInt8(ascii: "\""):
                    try flush(position)
                    position += 1
                    return String(scalars)
                case UInt8(ascii: "\\"):
                    try flush(position)
                    position += 1
                    guard let e = peek else { throw HeaderJSON.ParseError(offset: start, message: "unterminated string") }
                    position += 1
                    switch e {
                    case UInt8(ascii: "\""): scalars.append("\"")
                    case UInt8(ascii: "\\"): scalars.append("\\")
                    case UInt8(ascii: "/"): scalars.append("/")
                    case UInt8(ascii: "b"): scalars.append("\u{08}")
                    case UInt8(ascii: "f"): scalars.append("\u{0C}")
                    case UInt8(ascii: "n"): scalars.append("\n")
                    case UInt8(ascii: "r"): scalars.append("\r")
                    case UInt8(ascii: "t"): scalars.append("\t")
                    case UInt8(ascii: "u"):
                        var code = try parseHex4()
                        if (0xD800..<0xDC00).contains(code) {
                            // A high surrogate must be followed by \u and a low surrogate.
                            guard peek == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
                                throw error("unpaired surrogate in \\u escape")
                            }
                            position += 2
                            let low = try parseHex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate in \\u escape") }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00..<0xE000).contains(code) {
                            throw error("unpaired surrogate in \\u escape")
                        }
                        guard let scalar = Unicode.Scalar(code) else { throw error("invalid \\u escape") }
                        scalars.append(scalar)
                    default:
                        throw HeaderJSON.ParseError(offset: position - 1, message: "invalid escape character in string")
                    }
                    runStart = position
                case 0..<0x20:
                    throw error("control character in string (must be escaped)")
                default:
                    position += 1
                }
            }
        }

        mutating func parseHex4() throws -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let c = peek else { throw error("unterminated \\u escape") }
                let digit: UInt32
                switch c {
                case 48...57: digit = UInt32(c - 48)
                case 65...70: digit = UInt32(c - 55)
                case 97...102: digit = UInt32(c - 87)
                default: throw error("invalid hex digit in \\u escape")
                }
                value = value << 4 | digit
                position += 1
            }
            return value
        }
    }
}

extension HeaderJSON {
    /// `text` as a JSON string literal, quotes included. Non-ASCII stays as UTF-8.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{00}"..."\u{1F}", "\u{7F}":
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

// MARK: Decoding errors for people

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A `DecodingError` from `JSONDecoder` as one line naming the field:
/// `optimizer.learningRate must be a number, found a string`; `modelName is missing`.
public func describe(_ error: DecodingError) -> String {
    func path(_ keys: [CodingKey]) -> String {
        var out = ""
        for k in keys {
            if let i = k.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + k.stringValue }
        }
        return out
    }
    func expected(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int64.Type, is UInt64.Type, is Int32.Type, is UInt32.Type: return "a whole number"
        case is Float.Type, is Double.Type: return "a number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") || name.hasPrefix("[") { return "a list" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object (\(name))"
        }
    }
    /// "found a string" out of "Expected to decode Float but found a string instead."
    func found(_ debug: String) -> String {
        let parts = debug.split(separator: " ", omittingEmptySubsequences: false)
        guard let at = parts.indices.first(where: { $0 > 0 && parts[$0 - 1] == "but" && parts[$0] == "found" }) else { return "" }
        var rest = parts[(at + 1)...].map(String.init)
        if let end = rest.firstIndex(where: { $0.hasPrefix("instead") }) { rest = Array(rest[..<end]) }
        return rest.isEmpty ? "" : ", found " + rest.joined(separator: " ")
    }
    func named(_ keys: [CodingKey]) -> String {
        let p = path(keys)
        return p.isEmpty ? "the document" : p
    }
    switch error {
    case .typeMismatch(let type, let context):
        return "\(named(context.codingPath)) must be \(expected(type))\(found(context.debugDescription))"
    case .valueNotFound(let type, let context):
        return "\(named(context.codingPath)) is null, expected \(expected(type))"
    case .keyNotFound(let key, let context):
        return "\(path(context.codingPath + [key])) is missing"
    case .dataCorrupted(let context):
        let text = context.debugDescription
        if context.codingPath.isEmpty {
            return text.contains("JSON") ? "is not valid JSON" : text
        }
        return "\(path(context.codingPath)): \(text)"
    @unknown default:
        return "\(error)"
    }
}
