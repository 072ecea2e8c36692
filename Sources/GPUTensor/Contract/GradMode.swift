/// Whether a gradient kernel overwrites its destination or adds into it.
public enum GradMode: Sendable {
    case overwrite
    case accumulate
}
