import GPUTensor

/// Max pooling with a square window, PyTorch `nn.MaxPool2d(window, stride, padding)`
/// (implicit -infinity padding). Backward routes each gradient to the first maximum of its window.
///
/// The layer owns the backend's max-pool workspace (the window positions a training forward saves
/// for the backward, `PoolingKernels`), allocated with its other buffers for the largest batch and
/// reused; it is scratch, not state (not in `stateDict`, never checkpointed).
public final class MaxPool2D: Pool2D {
    /// (maxPoolWorkspaceCount of the largest batch); nil where the backend needs none.
    private var workspace: Tensor?
    /// Whether the last forward saved its positions in `workspace` (a training forward did).
    private var positionsSaved = false

    public override init(name: String = "", window: Int, stride: Int? = nil, padding: Int = 0) {
        super.init(name: name, window: window, stride: stride, padding: padding)
    }

    override var kind: String { "MaxPool2D" }

    override func prepareKernels(_ g: PoolGeometry) throws {
        let count = backend.maxPoolWorkspaceCount(g)
        workspace = count > 0 ? try backend.allocate([count]) : nil
        workspaceSlice = nil
        positionsSaved = false
    }

    /// The workspace's first `maxPoolWorkspaceCount(g)` elements (g's batch may be smaller),
    /// kept for the last batch size so that a step asks the backend nothing.
    private var workspaceSlice: (batch: Int, tensor: Tensor?)?
    private func workspace(_ g: PoolGeometry) -> Tensor? {
        if let workspaceSlice, workspaceSlice.batch == g.batch { return workspaceSlice.tensor }
        let slice = workspace.map { $0.slice(0..<backend.maxPoolWorkspaceCount(g)) }
        workspaceSlice = (g.batch, slice)
        return slice
    }

    override func poolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, mode: ForwardMode) {
        // Inference (evaluation, prediction, frozen prefixes) saves no positions.
        positionsSaved = mode == .training
        backend.maxPoolForward(g, input: x, output: y, workspace: positionsSaved ? workspace(g) : nil)
    }

    override func poolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        let ws = workspace(g)
        if ws != nil && !positionsSaved {
            // A backward after an inference forward (Synflow scores a model that way): the same
            // forward again, now saving the positions (y gets the values it already holds).
            backend.maxPoolForward(g, input: x, output: y, workspace: ws)
            positionsSaved = true
        }
        backend.maxPoolBackward(g, input: x, output: y, workspace: ws, gradOutput: dy, gradInput: dx)
    }
}
