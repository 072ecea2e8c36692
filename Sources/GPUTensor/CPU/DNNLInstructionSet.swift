import CDNNL
import CDNNLLoader

/// The instruction set oneDNN's kernels use on this CPU (chosen at run time from the CPU's
/// features), shown in the CPU backend's name.
enum DNNLInstructionSet {
    /// Looked up once: the CPU does not change under a running process.
    static let name: String = {
        var message = [CChar](repeating: 0, count: 256)
        guard strata_dnnl_load(&message, Int32(message.count)) == 0 else { return "unavailable" }
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_sse41: return "SSE4.1"
        case dnnl_cpu_isa_avx: return "AVX"
        case dnnl_cpu_isa_avx2: return "AVX2"
        case dnnl_cpu_isa_avx2_vnni: return "AVX2 VNNI"
        case dnnl_cpu_isa_avx512_core: return "AVX-512"
        case dnnl_cpu_isa_avx512_core_vnni: return "AVX-512 VNNI"
        case dnnl_cpu_isa_avx512_core_bf16: return "AVX-512 BF16"
        case dnnl_cpu_isa_avx512_core_amx: return "AMX"
        default: return "other ISA"
        }
    }()
}
