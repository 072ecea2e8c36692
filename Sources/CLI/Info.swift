import ArgumentParser
import GPUTensor
import Trainer

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show build traits, devices and BLAS threads.")

    func run() throws {
        print("strata \(TrainerVersion.string)")
        print("build traits: \(BackendFactory.hasCUDA ? "CUDA" : "none (CPU only)")")
        let cpu = CPUBackend()
        print("devices:")
        print("  cpu: \(cpu.name)")
        if BackendFactory.hasCUDA {
            do {
                let gpu = try BackendFactory.make(.cuda(0))
                print("  cuda:0: \(gpu.name)")
            } catch {
                print("  cuda: unavailable (\(error))")
            }
        } else {
            print("  cuda: not in this build (rebuild with `swift build --traits CUDA`)")
        }
    }
}
