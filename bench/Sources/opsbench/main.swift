import GPUTensor

// opsbench [repeats] [threads]: prints the table, then the JSON report.
let args = CommandLine.arguments
let repeats = args.count > 1 ? Int(args[1]) ?? 5 : 5
let threads = args.count > 2 ? Int(args[2]) : nil
let backend = CPUBackend(threads: threads)
let report = try OpsBenchmark.run(on: backend, repeats: repeats)
print(report.table())
print(report.json())
