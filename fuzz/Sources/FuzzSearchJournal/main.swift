import FuzzSupport
import Trainer

/// A search's `journal.jsonl` and `sessions.jsonl` (what `search --resume` and the report read):
/// each line decoded and checked as data; then what the search computes from the records.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSearchJournal(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = bytes(data, size)
    if let records = try? SearchJournal.parse(bytes, file: "journal.jsonl") {
        for r in records {
            // What the reader lets through is in range: a formatter or an Int conversion cannot trap on it.
            let (seconds, wall) = (r.seconds ?? 0, r.wallSeconds ?? 0)
            precondition(seconds.isFinite && seconds >= 0 && wall.isFinite && wall >= 0)
            precondition((r.validationAccuracy ?? 0) >= 0 && (r.validationAccuracy ?? 0) <= 1)
            // A pruned search's per-epoch losses and rungs (`--pruner`): within the trial's epochs.
            if let values = r.values {
                precondition(values.count <= (r.config?.epochs ?? 0) && values.allSatisfy { ($0 ?? 0).isFinite })
                precondition((r.rungs ?? []).allSatisfy { $0 >= 1 && $0 <= values.count })
            }
        }
        let summary = SearchSummary(name: "fuzz", reuse: .paper, records: records)
        precondition(summary.trainingSeconds.isFinite)
    }
    _ = try? StudySession.parse(bytes, file: "sessions.jsonl")
    return 0
}

runLibFuzzer { fuzzSearchJournal($0, $1) }
