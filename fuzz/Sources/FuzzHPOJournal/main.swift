import FuzzSupport
import Trainer

/// An hpo's `journal.jsonl` (trial lines and the final training's events), as `hpo --resume`
/// reads it: with and without the run's trial count.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHPOJournal(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = bytes(data, size)
    for trials in [nil, 8] as [Int?] {
        guard let lines = try? HPORun.parseJournal(bytes, file: "journal.jsonl", trials: trials) else { continue }
        for e in lines {
            precondition((e.seconds ?? 0).isFinite && (e.seconds ?? 0) >= 0 && e.cost.isFinite)
            precondition((e.testAccuracy ?? 0) >= 0 && (e.testAccuracy ?? 0) <= 1)
            _ = e.objectives.last.map { $0.isNaN || $0.isFinite }
        }
    }
    return 0
}

runLibFuzzer { fuzzHPOJournal($0, $1) }
