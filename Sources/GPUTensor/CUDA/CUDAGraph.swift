#if CUDA
import CCuda

/// `STRATA_CUDA_GRAPHS`: `off` (the default) or `on`, which allows `CUDABackend.captureGraph`.
/// Prepared for replaying a training step of static shapes with one launch (the per-layer
/// kernels are launch-bound at small batches); not yet run on a GPU and not yet called by the
/// trainer.
public enum CUDAGraphMode: String, Sendable, CaseIterable, CUDASetting {
    case off, on

    public static let variable = "STRATA_CUDA_GRAPHS"
    public static let standard: CUDAGraphMode = .off
}

/// Work of a `CUDABackend` recorded once and replayed with one launch (`cudaGraphLaunch`).
///
/// The graph holds every device block freed while it was captured (its kernels use them on each
/// replay) and gives them back to the allocator when it goes, after the stream is idle.
public final class CUDAGraph {
    private let exec: cudaGraphExec_t?
    private let graph: cudaGraph_t?
    private let held: [(block: UnsafeMutableRawPointer, size: Int)]
    private let backend: CUDABackend

    init(exec: cudaGraphExec_t?, graph: cudaGraph_t?, held: [(block: UnsafeMutableRawPointer, size: Int)], backend: CUDABackend) {
        self.exec = exec; self.graph = graph; self.held = held; self.backend = backend
    }

    /// Queues one replay on the backend's stream; a failure is thrown by the next `synchronize`.
    public func launch() {
        backend.recordFailure {
            try backend.queuedCUDART("cudaGraphLaunch") { cudaGraphLaunch(exec, backend.stream) }
        }
    }

    deinit {
        cudaStreamSynchronize(backend.stream)
        if let exec { cudaGraphExecDestroy(exec) }
        if let graph { cudaGraphDestroy(graph) }
        backend.allocator.recycle(held: held)
    }
}

extension CUDABackend {
    /// Records the work `body` queues on the stream into a graph instead of running it, for
    /// `CUDAGraph.launch` to replay. Needs `STRATA_CUDA_GRAPHS=on`. The rules, for a training
    /// step of static shapes:
    /// - run the step once first (cuDNN's algorithm search and the first allocations must not
    ///   happen while capturing);
    /// - `body` must not upload, download or synchronize: a replay does not repeat the host's
    ///   side (upload the batch into the same input tensors before each `launch` instead); an
    ///   upload while capturing is recorded as the failure the next `synchronize` throws;
    /// - every tensor `body` reads or writes that outlives it must stay alive as long as the
    ///   graph (blocks freed inside `body` are held by the graph);
    /// - kernel arguments are frozen: a learning rate or Adam step count that changes per step
    ///   must come from device memory (for example a multi-tensor table re-uploaded before each
    ///   launch), or the optimizer step stays outside the graph.
    public func captureGraph(_ body: () throws -> Void) throws -> CUDAGraph {
        guard graphMode == .on else {
            throw CUDAError(library: .cudart, status: .init(rawValue: 800 /* cudaErrorNotPermitted */), call: "captureGraph",
                            detail: "CUDA graphs are off (\(CUDAGraphMode.variable)=on allows them)")
        }
        try synchronize()
        try CUDACalls.cudart("cudaStreamBeginCapture") { cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed) }
        allocator.beginHolding()
        capturing = true
        var graph: cudaGraph_t?
        let failure: Error?
        do { try body(); failure = nil } catch { failure = error }
        capturing = false
        let held = allocator.endHolding()
        let ended = cudaStreamEndCapture(stream, &graph)
        func giveBack() {
            if let graph { cudaGraphDestroy(graph) }
            allocator.recycle(held: held)
        }
        if let failure { giveBack(); throw failure }
        do {
            try CUDACalls.cudart("cudaStreamEndCapture") { ended }
            try throwSticky()
            var exec: cudaGraphExec_t?
            try CUDACalls.cudart("cudaGraphInstantiate") { cudaGraphInstantiate(&exec, graph, 0) }
            return CUDAGraph(exec: exec, graph: graph, held: held, backend: self)
        } catch {
            giveBack()
            throw error
        }
    }
}
#endif

#if CUDA
/// `selftest`'s check of graph capture (with `STRATA_CUDA_GRAPHS=on`; nothing otherwise): a
/// captured add and scale replayed twice, the input uploaded anew before each replay, against
/// the same arithmetic in Float on the host.
enum CUDAGraphChecks {
    static func replay(_ b: Backend) throws -> [CheckResult] {
        guard let cuda = b as? CUDABackend, cuda.graphMode == .on else { return [] }
        let n = 1000
        let y = checkInput(n, seed: 1950).map(Float.init)
        let x = try b.allocate([n]), yt = try b.tensor(y, shape: [n]), out = try b.allocate([n])
        b.add(x, yt, output: out)   // the step once before capturing it
        let graph = try cuda.captureGraph {
            b.add(x, yt, output: out)
            b.scale(out, by: 2, output: out)
        }
        var results: [CheckResult] = []
        for round in 0..<2 {
            let xv = checkInput(n, seed: 1960 + UInt64(round)).map(Float.init)
            b.upload(xv, to: x)
            graph.launch()
            let expected = zip(xv, y).map { Double(2 * ($0 + $1)) }
            results.append(compare("CUDA graph replay \(round + 1) of add + scale (\(n))", actual: try b.download(out),
                                   expected: expected, tolerance: Tolerance(atol: 1e-30, rtol: 0)))
        }
        return results
    }
}
#endif
