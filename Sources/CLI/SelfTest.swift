import ArgumentParser
import GPUTensor
import Trainer

/// Runs the kernel verification suite on a device: the check a GPU machine without XCTest gets.
struct SelfTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Check every kernel of a backend against float64 references and finite differences.",
        discussion: """
            On a GPU the float64 checks run with strict FP32 math (TF32 would fail them falsely), and \
            the checks against the CPU backend run in the math mode asked for (TF32 unless --strict-fp32) \
            with TF32 tolerances. Every line names its suite.
            """)

    @OptionGroup var deviceOptions: DeviceOptions

    @Option(help: "Run only checks whose family name contains this text (e.g. conv, batchnorm).")
    var filter: String?

    @Flag(help: "Print only failures and the summary.")
    var quiet = false

    func run() throws {
        let backend = try orExit { try deviceOptions.makeBackend() }
        print("selftest on \(backend.name)")
        let reference = CPUBackend()
        // The same random inputs through this device and the CPU backend, kernel by kernel,
        // plus a few training steps of a small network and of a ResNet through the trainer.
        let cross = KernelChecks.crossDevice(reference: reference) + ModelCrossDevice.checks(reference: reference)
            + TrialGroupChecks.checks
        let suites = try orExit {
            try SelfTestSuite.plan(for: backend, strictFP32: deviceOptions.strictFP32, makeStrict: {
                guard case .cuda(let n) = backend.device else { return backend }
                return try BackendFactory.make(.cuda(n), threads: deviceOptions.threads, strictFP32: true)
            }, crossDevice: cross)
        }
        var passed = 0, failed = 0
        for suite in suites {
            print("\(suite.label): \(suite.backend.name)")
            let counts = KernelChecks.run(suite.checks, on: suite.backend, filter: filter) { result in
                if !quiet || !result.passed { print(suite.line(result)) }
            }
            passed += counts.passed
            failed += counts.failed
        }
        print("\(passed) passed, \(failed) failed")
        if failed > 0 || passed == 0 { throw ExitCode.failure }
    }
}
