import ArgumentParser
import GPUTensor
import Trainer

/// Runs the kernel verification suite on a device: the check a GPU machine without XCTest gets.
struct SelfTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Check every kernel of a backend against float64 references and finite differences.")

    @OptionGroup var deviceOptions: DeviceOptions

    @Option(help: "Run only checks whose family name contains this text (e.g. conv, batchnorm).")
    var filter: String?

    @Flag(help: "Print only failures and the summary.")
    var quiet = false

    func run() throws {
        let backend = try orExit { try deviceOptions.makeBackend() }
        print("selftest on \(backend.name)")
        let show = { (result: CheckResult) in if !quiet || !result.passed { print(result.summary) } }
        var (passed, failed) = KernelChecks.run(on: backend, filter: filter, report: show)
        if backend.device != .cpu {
            // The same random inputs through this device and the CPU backend, kernel by kernel,
            // plus a few training steps of a small network and of a ResNet through the trainer.
            print("cross-device checks against \(CPUBackend().name)")
            let reference = CPUBackend()
            let cross = KernelChecks.run(KernelChecks.crossDevice(reference: reference)
                                         + ModelCrossDevice.checks(reference: reference),
                                         on: backend, filter: filter, report: show)
            passed += cross.passed
            failed += cross.failed
        }
        print("\(passed) passed, \(failed) failed")
        if failed > 0 || passed == 0 { throw ExitCode.failure }
    }
}
