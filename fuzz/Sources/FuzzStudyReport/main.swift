import FuzzSupport
import Trainer

/// The search report (summary.json's totals and report.html) written from the records a journal
/// decodes to, as `strata search` writes it after a resume. Uses the public `SearchReport` API
/// as it is.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStudyReport(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = bytes(data, size)
    guard let records = try? SearchJournal.parse(bytes, file: "journal.jsonl"), !records.isEmpty else { return 0 }
    var last: [String: StudyEvent] = [:]
    for r in records { last[r.id] = r }
    let latest = records.filter { last[$0.id] == $0 }
    let sessions = (try? StudySession.parse(bytes, file: "sessions.jsonl")) ?? []
    let seconds = sessions.reduce(0) { $0 + $1.seconds }
    let summary = SearchSummary(name: "fuzz", reuse: .bestPrefix, records: latest, searchSeconds: seconds > 0 ? seconds : nil)
    let html = SearchReport.html(searches: [(summary, latest), (summary, records)], title: "fuzz")
    precondition(!html.isEmpty)
    return 0
}

runLibFuzzer { fuzzStudyReport($0, $1) }
