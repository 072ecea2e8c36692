import CCurl
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A download that failed: one line naming the URL (or the file) and why.
public struct FetchError: Error, CustomStringConvertible, Equatable {
    public enum Reason: Equatable, Sendable {
        /// No answer (offline, DNS, refused, timed out) or the transfer broke off.
        case network
        /// The server answered with an HTTP error status (404, ...).
        case http(Int)
        /// The file arrived but its size or digest is not the pinned one.
        case digestMismatch
        /// The destination holds something else (`--overwrite` replaces it).
        case destinationExists
        /// Writing to the destination failed.
        case io
    }

    public let reason: Reason
    public let message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { message }
}

/// HTTP(S) downloads through libcurl that resume where a previous attempt stopped.
///
/// Why libcurl rather than Foundation's URLSession: on Linux URLSession lives in
/// FoundationNetworking, which needs the full Foundation (the product ships with
/// FoundationEssentials at most, as a static binary) and is itself a wrapper over libcurl; its
/// resume data (`cancel(byProducingResumeData:)`) is unimplemented there, and progress needs a
/// delegate and a run loop. libcurl from Debian is well kept, and Range requests, redirects,
/// TLS, timeouts and progress are options of one call.
public enum Download {
    /// Progress: bytes of the file on disk so far, and the whole size when the server says it.
    public typealias Progress = (_ done: Int64, _ total: Int64?) -> Void

    /// Downloads `url` into `path`, appending to what `path` already holds with an HTTP Range
    /// request (a server that ignores Range sends the whole file, which replaces the partial
    /// one). A transfer that breaks off leaves the partial file for the next call to resume.
    public static func fetch(url: String, to path: String, progress: @escaping Progress = { _, _ in }) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FetchError(.io, "\(path): cannot open for writing: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        fstat(fd, &info)
        let resumeFrom = Int64(info.st_size)

        guard let curl = curl_easy_init() else { throw FetchError(.network, "cannot download \(url): curl_easy_init failed") }
        defer { curl_easy_cleanup(curl) }
        let context = Transfer(fd: fd, resumeFrom: resumeFrom, curl: curl, progress: progress)
        let unmanaged = Unmanaged.passRetained(context)
        defer { unmanaged.release() }
        let pointer = unmanaged.toOpaque()

        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let code: CURLcode = url.withCString { urlString in
            errorBuffer.withUnsafeMutableBufferPointer { errors in
                _ = strata_curl_set_pointer(curl, CURLOPT_URL, urlString)
                _ = strata_curl_set_pointer(curl, CURLOPT_ERRORBUFFER, errors.baseAddress)
                _ = strata_curl_set_long(curl, CURLOPT_FOLLOWLOCATION, 1)
                _ = strata_curl_set_long(curl, CURLOPT_FAILONERROR, 1)       // no error pages in the file
                _ = strata_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT, 30)
                _ = strata_curl_set_long(curl, CURLOPT_LOW_SPEED_LIMIT, 1)   // stalled for a minute: give up
                _ = strata_curl_set_long(curl, CURLOPT_LOW_SPEED_TIME, 60)
                _ = strata_curl_set_pointer(curl, CURLOPT_USERAGENT, "strata-data-fetch")
                if resumeFrom > 0 { _ = strata_curl_set_offset(curl, CURLOPT_RESUME_FROM_LARGE, curl_off_t(resumeFrom)) }
                _ = strata_curl_set_write(curl, { data, size, count, user in
                    Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue().write(data!, size * count)
                })
                _ = strata_curl_set_pointer(curl, CURLOPT_WRITEDATA, pointer)
                _ = strata_curl_set_long(curl, CURLOPT_NOPROGRESS, 0)
                _ = strata_curl_set_progress(curl, { user, total, now, _, _ in
                    Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue().report(total: Int64(total), now: Int64(now))
                    return 0
                })
                _ = strata_curl_set_pointer(curl, CURLOPT_XFERINFODATA, pointer)
                return curl_easy_perform(curl)
            }
        }
        if let failure = context.failure { throw failure }
        let status = strata_curl_response_code(curl)
        switch code {
        case CURLE_OK:
            return
        case CURLE_HTTP_RETURNED_ERROR where status == 416 && resumeFrom > 0:
            return   // the partial file is already whole: the digest check decides
        case CURLE_HTTP_RETURNED_ERROR:
            throw FetchError(.http(status), "cannot download \(url): the server answered HTTP \(status)")
        default:
            let detail = String(cString: errorBuffer).isEmpty ? String(cString: curl_easy_strerror(code)) : String(cString: errorBuffer)
            let had = context.written + (context.replaced ? 0 : resumeFrom)
            let tail = code == CURLE_PARTIAL_FILE || code == CURLE_OPERATION_TIMEDOUT || code == CURLE_RECV_ERROR
                ? " (\(had) bytes kept; run the command again to resume)" : ""
            throw FetchError(.network, "cannot download \(url): \(detail)\(tail)")
        }
    }

    /// State shared with libcurl's C callbacks.
    private final class Transfer {
        let fd: Int32
        let resumeFrom: Int64
        let curl: UnsafeMutableRawPointer
        let progress: Progress
        var checkedStatus = false
        var replaced = false
        var written: Int64 = 0
        var failure: FetchError?
        var lastReport: Int64 = -1

        init(fd: Int32, resumeFrom: Int64, curl: UnsafeMutableRawPointer, progress: @escaping Progress) {
            self.fd = fd
            self.resumeFrom = resumeFrom
            self.curl = curl
            self.progress = progress
        }

        /// Appends a chunk; returning less than `count` makes libcurl abort the transfer.
        func write(_ data: UnsafeMutablePointer<CChar>, _ count: Int) -> Int {
            if !checkedStatus {
                checkedStatus = true
                // 200 to a Range request: the server sends the whole file, so start over.
                if resumeFrom > 0 && strata_curl_response_code(curl) == 200 {
                    ftruncate(fd, 0)
                    replaced = true
                }
            }
            var done = 0
            while done < count {
                let n = Glibc.write(fd, data + done, count - done)
                guard n > 0 else {
                    failure = FetchError(.io, "writing the download failed: \(String(cString: strerror(errno)))")
                    return 0
                }
                done += n
            }
            written += Int64(count)
            return count
        }

        func report(total: Int64, now: Int64) {
            let base = replaced ? 0 : resumeFrom
            let done = base + now
            guard done != lastReport else { return }
            lastReport = done
            progress(done, total > 0 ? base + total : nil)
        }
    }
}
