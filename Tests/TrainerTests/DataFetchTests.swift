import XCTest
import Foundation
@testable import Trainer
#if canImport(Glibc)
import Glibc
#endif

/// A one-connection-at-a-time HTTP/1.1 server on 127.0.0.1 (never another interface) serving
/// fixed files, with Range support, and a switch that breaks off a file's first transfer.
final class FixtureHTTPServer: @unchecked Sendable {
    let port: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var files: [String: [UInt8]]
    private var truncateOnce: Set<String> = []
    private var log: [String] = []

    init(files: [String: [UInt8]]) throws {
        self.files = files
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 8) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    var baseURL: String { "http://127.0.0.1:\(port)/" }

    func set(_ path: String, _ bytes: [UInt8]) { locked { files[path] = bytes } }
    func breakFirstTransfer(of path: String) { locked { _ = truncateOnce.insert(path) } }
    var requests: [String] { locked { log } }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func serve() {
        while true {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            handle(connection)
            close(connection)
        }
    }

    private func handle(_ connection: Int32) {
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: request, as: UTF8.self).contains("\r\n\r\n") {
            let n = read(connection, &buffer, buffer.count)
            guard n > 0 else { return }
            request += buffer[0..<n]
        }
        let lines = String(decoding: request, as: UTF8.self).components(separatedBy: "\r\n")
        let path = String(lines[0].split(separator: " ")[1].dropFirst())
        let range = lines.first { $0.lowercased().hasPrefix("range:") }
        let (body, truncate) = locked { () -> ([UInt8]?, Bool) in
            log.append("GET /\(path)" + (range.map { " " + $0 } ?? ""))
            return (files[path], truncateOnce.remove(path) != nil)
        }
        func send(_ bytes: [UInt8]) {
            var done = 0
            while done < bytes.count {
                let n = bytes[done...].withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
                guard n > 0 else { return }
                done += n
            }
        }
        guard let body else {
            send(Array("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
            return
        }
        var start = 0
        if let range, let value = range.split(separator: "=").last, let from = Int(value.split(separator: "-")[0]) {
            start = from
        }
        if start >= body.count && start > 0 {
            send(Array("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */\(body.count)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
            return
        }
        let status = start > 0 ? "206 Partial Content\r\nContent-Range: bytes \(start)-\(body.count - 1)/\(body.count)" : "200 OK"
        send(Array("HTTP/1.1 \(status)\r\nContent-Length: \(body.count - start)\r\nConnection: close\r\n\r\n".utf8))
        // A broken-off transfer: half the body, then the connection closes.
        send(Array(body[start..<(truncate ? start + (body.count - start) / 2 : body.count)]))
    }
}

final class DataFetchTests: XCTestCase {
    /// A small CIFAR-10-shaped archive: tar.gz of cifar-10-batches-bin with 2 train and 1 test records.
    func fixtureArchive() -> [UInt8] {
        func records(_ labels: [UInt8]) -> [UInt8] { labels.flatMap { [$0] + [UInt8](repeating: $0 &* 20, count: 3072) } }
        return gzip(tarArchive([("cifar-10-batches-bin/data_batch_1.bin", records([1, 2])),
                                ("cifar-10-batches-bin/test_batch.bin", records([3])),
                                ("cifar-10-batches-bin/batches.meta.txt", Array("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n".utf8))]))
    }

    func spec(_ archive: [UInt8], baseURL: String) -> RemoteDataset {
        RemoteDataset(name: "tiny", baseURL: baseURL, files: [
            RemoteFile(name: "tiny.tar.gz", size: Int64(archive.count), sha256: SHA256.hex(archive), md5: MD5.hex(archive)),
        ], unpack: .tarGz)
    }

    func assertFetchError(_ reason: FetchError.Reason, naming text: String, _ body: () throws -> Void,
                          file: StaticString = #filePath, line: UInt = #line) {
        do {
            try body()
            XCTFail("expected FetchError.\(reason)", file: file, line: line)
        } catch let error as FetchError {
            XCTAssertEqual(error.reason, reason, "\(error)", file: file, line: line)
            XCTAssertTrue(error.message.contains(text), "\(error) does not name \(text)", file: file, line: line)
            XCTAssertFalse(error.message.contains("\n"), "not one line: \(error)", file: file, line: line)
        } catch {
            XCTFail("expected FetchError.\(reason), got \(error)", file: file, line: line)
        }
    }

    func testFetchDownloadsVerifiesAndUnpacks() throws {
        let archive = fixtureArchive()
        let server = try FixtureHTTPServer(files: ["ok/tiny.tar.gz": archive])
        defer { server.stop() }
        let dir = try makeTemporaryDirectory(self)
        var sawProgress = false
        let path = try DatasetFetch.fetch(spec(archive, baseURL: "https://unused.invalid/"), into: dir,
                                          mirror: server.baseURL + "ok") { event in
            if case .progress(let done, let total) = event, total == Int64(archive.count), done == total { sawProgress = true }
        }
        XCTAssertEqual(path, dir + "/tiny")
        XCTAssertTrue(sawProgress)
        let (train, test) = try DatasetLoader.load(path: path)
        XCTAssertEqual(train.labels, [1, 2])
        XCTAssertEqual(test.labels, [3])
        XCTAssertEqual(train.classNames.first, "a")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["tiny"], "no partial or staging folder left")

        // Again: recognised, nothing downloaded.
        var already = false
        _ = try DatasetFetch.fetch(spec(archive, baseURL: server.baseURL + "ok/"), into: dir) { event in
            if case .alreadyPresent = event { already = true }
        }
        XCTAssertTrue(already)
        XCTAssertEqual(server.requests.count, 1)
    }

    func testCorruptDownloadIsRefusedAndNothingIsLeftHalfExtracted() throws {
        let archive = fixtureArchive()
        var corrupt = archive
        corrupt[corrupt.count / 2] ^= 0x55
        let server = try FixtureHTTPServer(files: ["tiny.tar.gz": corrupt])
        defer { server.stop() }
        let dir = try makeTemporaryDirectory(self)
        assertFetchError(.digestMismatch, naming: server.baseURL + "tiny.tar.gz") {
            try DatasetFetch.fetch(spec(archive, baseURL: server.baseURL), into: dir)
        }
        XCTAssertNil(FileSystem.kind(of: dir + "/tiny"))
        XCTAssertNil(FileSystem.kind(of: dir + "/.tiny.unpacking"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "the corrupt download is deleted")
    }

    func testTruncatedDownloadResumesWithARangeRequest() throws {
        let archive = fixtureArchive()
        let server = try FixtureHTTPServer(files: ["tiny.tar.gz": archive])
        defer { server.stop() }
        server.breakFirstTransfer(of: "tiny.tar.gz")
        let dir = try makeTemporaryDirectory(self)
        assertFetchError(.network, naming: server.baseURL + "tiny.tar.gz") {
            try DatasetFetch.fetch(spec(archive, baseURL: server.baseURL), into: dir)
        }
        let kept = DatasetFetch.fileSize(dir + "/.tiny.partial/tiny.tar.gz.part") ?? 0
        XCTAssertEqual(kept, archive.count / 2)
        XCTAssertNil(FileSystem.kind(of: dir + "/tiny"))
        var resumedFrom: Int64 = -1
        try DatasetFetch.fetch(spec(archive, baseURL: server.baseURL), into: dir) { event in
            if case .downloading(_, let from) = event { resumedFrom = from }
        }
        XCTAssertEqual(resumedFrom, Int64(kept))
        XCTAssertEqual(server.requests.last, "GET /tiny.tar.gz Range: bytes=\(kept)-")
        XCTAssertEqual(try DatasetLoader.load(path: dir + "/tiny").train.labels, [1, 2])
    }

    func testMissingFileAndNoServerFailWithOneLineNamingTheURL() throws {
        let server = try FixtureHTTPServer(files: [:])
        let dir = try makeTemporaryDirectory(self)
        let archive = fixtureArchive()
        assertFetchError(.http(404), naming: server.baseURL + "tiny.tar.gz") {
            try DatasetFetch.fetch(spec(archive, baseURL: server.baseURL), into: dir)
        }
        let closed = server.baseURL
        server.stop()
        assertFetchError(.network, naming: closed + "tiny.tar.gz") {
            try DatasetFetch.fetch(spec(archive, baseURL: closed), into: dir)
        }
        XCTAssertNil(FileSystem.kind(of: dir + "/tiny"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "no empty partial download left")
    }

    func testExistingFolderIsNotReplacedWithoutOverwrite() throws {
        let archive = fixtureArchive()
        let server = try FixtureHTTPServer(files: ["tiny.tar.gz": archive])
        defer { server.stop() }
        let dir = try makeTemporaryDirectory(self)
        try FileManager.default.createDirectory(atPath: dir + "/tiny", withIntermediateDirectories: true)
        try writeBytes([1, 2, 3], to: dir + "/tiny/mine.txt")
        assertFetchError(.destinationExists, naming: dir + "/tiny") {
            try DatasetFetch.fetch(spec(archive, baseURL: server.baseURL), into: dir)
        }
        XCTAssertEqual(try FileSystem.readFile(dir + "/tiny/mine.txt"), [1, 2, 3])
        XCTAssertTrue(server.requests.isEmpty, "refused before downloading")
        try DatasetFetch.fetch(spec(archive, baseURL: server.baseURL), into: dir, overwrite: true)
        XCTAssertNil(FileSystem.kind(of: dir + "/tiny/mine.txt"))
        XCTAssertEqual(try DatasetLoader.load(path: dir + "/tiny").test.labels, [3])
    }

    func testCatalogueNamesTheFourDatasets() {
        XCTAssertEqual(RemoteDataset.catalogue.map(\.name), ["cifar10", "cifar100", "mnist", "fashion-mnist"])
        for d in RemoteDataset.catalogue {
            for f in d.files {
                XCTAssertTrue(f.sha256 != nil || f.md5 != nil, "\(d.name)/\(f.name) has no digest")
                XCTAssertEqual(d.url(of: f, mirror: "http://m/x"), "http://m/x/" + f.name)
            }
        }
        XCTAssertEqual(RemoteDataset.named("cifar10")?.url(of: RemoteDataset.named("cifar10")!.files[0]),
                       "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz")
    }
}
