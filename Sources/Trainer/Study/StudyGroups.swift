#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A trial group as the journal records it: every event of a member while it trains in a group
/// carries `group: {id, members}` (the ids of all members the group was formed with).
public struct StudyGroup: Codable, Equatable, Sendable {
    public var id: String
    public var members: [String]

    public init(id: String, members: [String]) {
        self.id = id
        self.members = members
    }

    /// The groups of trials now training in one, by trial id: `StudyEvent.append` adds a member's
    /// group to each of its events. Set by the study engine when it submits a group job and
    /// cleared as each member's outcome is handled, so the study's own code (search, hpo) needs
    /// no knowledge of groups.
    static let current = Mutex<[String: StudyGroup]>([:])

    static func of(_ trial: String) -> StudyGroup? { current.withLock { $0[trial] } }
}

/// What the engine hands a worker for a group: the job of each member (their `job.json` paths,
/// in member order), written as `group.json` in the group's folder `groups/<id>/` of the study.
/// The group's own `TrialJob` names that folder; a worker that finds `group.json` there trains
/// the members together (`GroupJob`) and writes each member's `outcome.json` in its own folder.
///
/// Each member's folder also gets a `group` file naming the group while it is in one: a study
/// resumed after a kill re-forms the same group from it (from each member's last checkpoint,
/// which the group commits together), so its members end bit-identical to an uninterrupted run.
public struct GroupSpec: Codable, Equatable, Sendable {
    public var id: String
    public var members: [String]
    public var jobs: [String]

    public static let fileName = "group.json"
    /// The member's marker file, holding the group's id.
    public static let markerName = "group"

    public static func read(from path: String) throws -> GroupSpec { try SearchJSON.read(GroupSpec.self, from: path) }

    /// The group a trial folder's marker names, if any.
    static func marker(in trialDirectory: String) -> String? {
        guard let bytes = try? FileSystem.readFile(trialDirectory + "/" + markerName) else { return nil }
        let id = String(decoding: bytes, as: UTF8.self).trimmingSpaces
        return id.isEmpty ? nil : id
    }

    static func writeMarker(_ id: String, in trialDirectory: String) throws {
        try FileSystem.writeAtomically(Array((id + "\n").utf8), to: trialDirectory + "/" + markerName)
    }

    static func removeMarker(in trialDirectory: String) {
        unlink(trialDirectory + "/" + markerName)
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(self.drop { $0 == " " || $0 == "\n" }.reversed().drop { $0 == " " || $0 == "\n" }.reversed())
    }
}
