import FuzzSupport
import Trainer

/// An hpo's `journal.jsonl` (trial lines and the final training's events), as `hpo --resume`
/// reads it: with and without the run's trial count.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHPOJournal(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = bytes(data, size)
    for trials in [nil, 8] as [Int?] {
        guard let lines = try? HPORun.parseJournal(bytes, file: "journal.jsonl", trials: trials) else { continue }
        for line in lines {
            switch line {
            case .trial(let r):
                precondition(r.seconds.isFinite && r.seconds >= 0 && r.cost.isFinite)
                _ = r.values.last.map { $0.isNaN || $0.isFinite }
            case .final(let f):
                precondition((f.testAccuracy ?? 0) >= 0 && (f.testAccuracy ?? 0) <= 1)
            }
        }
    }
    return 0
}

runLibFuzzer { fuzzHPOJournal($0, $1) }
