/// Random fills (element i from Philox stream (seed, counter), see `Philox`).
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol RandomKernels: AnyObject {
    // MARK: Random fills (element i from Philox stream (seed, counter), see `Philox`)

    /// `low + (high - low) * u` with u uniform in [0, 1) (float rounding may reach `high`).
    func fillUniform(_ x: Tensor, low: Float, high: Float, seed: UInt64, counter: UInt64)
    /// Normal(mean, std) by Box-Muller.
    func fillNormal(_ x: Tensor, mean: Float, std: Float, seed: UInt64, counter: UInt64)
}
