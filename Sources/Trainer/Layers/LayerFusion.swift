import Foundation
import GPUTensor

/// Which layer pairs run as one fused kernel. Today: a `BatchNorm2D` directly followed by an
/// in-place `ReLU` (ResNet's stem and the first half of each basic block, VGG's conv-BN-ReLU),
/// through the backend's `batchNormReLU*` kernels. The layers stay as they are (names, checkpoint
/// keys, costs, freezing, growth and analysis do not change); containers (`forwardChain`,
/// `BasicBlock`) decide to run the pair fused. On the CPU fused and unfused give the same bits.
///
/// And at the end of a basic block, `relu(bn2(h) + shortcut)` as one forward kernel
/// (`batchNormAddReLUForward*`; its backward stays ReLU's then batch norm's, since the shortcut
/// needs ReLU's gradient too).
///
/// `STRATA_FUSE=off` (read once) runs every layer on its own, `STRATA_FUSE=bn-relu` fuses batch
/// norm + ReLU but not the residual add, for A/B measurements.
public enum LayerFusion {
    /// Whether containers fuse; a test may set it (not while a model runs).
    nonisolated(unsafe) public static var enabled: Bool = setting != "off"
    /// Whether basic blocks also fuse bn2 + residual add + ReLU (only while `enabled`).
    nonisolated(unsafe) public static var residualAdd: Bool = setting != "bn-relu"

    private static var setting: String {
        guard let v = getenv("STRATA_FUSE") else { return "on" }
        return String(cString: v).lowercased()
    }

    /// The ReLU to fuse into `layer` when `next` follows it, or nil.
    @inline(__always)
    static func relu(fusedInto layer: any Layer, followedBy next: any Layer) -> ReLU? {
        guard enabled, layer is BatchNorm2D, let relu = next as? ReLU, relu.inPlace else { return nil }
        return relu
    }
}
