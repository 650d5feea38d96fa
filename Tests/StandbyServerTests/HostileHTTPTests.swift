import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import NIOCore
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A raw TCP connection to the server, for what an HTTP client library will not send.
final class RawConnection: @unchecked Sendable {
    let descriptor: Int32

    init?(port: Int) {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(descriptor)
            return nil
        }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ text: String) {
        _ = text.withCString { Glibc.send(descriptor, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    }

    /// Everything until the server closes the connection (or the receive timeout).
    func readUntilClosed() -> (text: String, closed: Bool) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var received = [UInt8]()
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count == 0 { return (String(decoding: received, as: UTF8.self), true) }
            if count < 0 { return (String(decoding: received, as: UTF8.self), false) }
            received += buffer[0..<count]
        }
    }

    deinit { close(descriptor) }

    /// One request on a fresh connection; the status code of the answer.
    static func status(port: Int, _ request: String) -> Int? {
        guard let connection = RawConnection(port: port) else { return nil }
        connection.send(request)
        let (text, _) = connection.readUntilClosed()
        guard text.hasPrefix("HTTP/1.1 ") else { return nil }
        return Int(text.dropFirst(9).prefix(3))
    }

    static func get(port: Int, _ path: String) -> Int? {
        status(port: port, "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    }

    // The same, off the cooperative pool (see `blocking`).
    static func status(port: Int, _ request: String) async -> Int? { await blocking { status(port: port, request) } }
    static func get(port: Int, _ path: String) async -> Int? { await blocking { get(port: port, path) } }
    static func open(port: Int) async -> RawConnection? { await blocking { RawConnection(port: port) } }
    func readUntilClosed() async -> (text: String, closed: Bool) { await blocking { self.readUntilClosed() } }
}

@Suite("Hostile HTTP")
struct HostileHTTPTests {
    @Test("a slow client that never finishes its request is cut off after the idle timeout")
    func slowClient() async throws {
        var configured = TestStandby()
        configured.idleTimeout = "1s"
        let standby = configured
        try await standby.live { client, _ in
            let port = try #require(client.port)
            let connection = try #require(await RawConnection.open(port: port))
            connection.send(
                "POST /webhooks/azure-monitor?token=\(TestStandby.webhookToken) HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"sch"
            )
            let started = Date()
            let (_, closed) = await connection.readUntilClosed()
            #expect(closed)
            #expect(Date().timeIntervalSince(started) < 5)
            // (The test client's own idle connection is cut off too: ask on a new one.)
            #expect(await RawConnection.get(port: port, "/healthz") == 200)
        }
        let stored = try await standby.openDatabase().read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM deliveries")
        }
        #expect(stored == 0)
    }

    @Test("garbage instead of HTTP, unknown routes and methods: 4xx, never 5xx, and the server stays up")
    func garbage() async throws {
        try await TestStandby().live { client, _ in
            let port = try #require(client.port)
            for junk in [
                "GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", String(repeating: "A", count: 100_000) + "\r\n\r\n",
                "\u{0}\u{1}\u{2}\r\n\r\n",
            ] {
                let connection = try #require(await RawConnection.open(port: port))
                connection.send(junk)
                let (text, _) = await connection.readUntilClosed()
                #expect(!text.hasPrefix("HTTP/1.1 5"), "\(text.prefix(40))")
            }
            for (method, uri) in [
                ("DELETE", "/v1/alerts"), ("PUT", "/webhooks/azure-monitor"), ("GET", "/nope"), ("PATCH", "/healthz"),
            ] {
                let status = await RawConnection.status(
                    port: port,
                    "\(method) \(uri) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestStandby.readerToken)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                #expect(
                    status.map { (400..<500).contains($0) } == true, "\(method) \(uri) → \(String(describing: status))")
            }
            #expect(await RawConnection.get(port: port, "/healthz") == 200)
        }
    }

    @Test("many connections at once; the server keeps answering")
    func manyConnections() async throws {
        try await TestStandby().live { client, _ in
            let port = try #require(client.port)
            let connections = await blocking { (0..<300).compactMap { _ in RawConnection(port: port) } }
            #expect(connections.count == 300)
            for connection in connections.prefix(200) { connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") }
            #expect(try await client.execute(uri: "/readyz", method: .get).status == .ok)
            let body = try Fixtures.data("test-action-metric-static.json")
            #expect(try await client.postWebhook(body).status == .ok)
        }
    }

    @Test("mutated payloads over HTTP end in 2xx or 4xx, never 5xx")
    func mutatedPayloads() async throws {
        try await TestStandby().live { client, _ in
            for (index, name) in Fixtures.allNames.enumerated() {
                var data = try Fixtures.data(name)
                // Flip bytes at a few places.
                for offset in stride(from: index % 7, to: data.count, by: max(1, data.count / 5)) {
                    data[offset] ^= 0x5A
                }
                let response = try await client.postWebhook(data)
                #expect((200..<500).contains(response.status.code), "\(name) → \(response.status)")
                let report = try await client.send(
                    .post, "/v1/health-reports", json: String(decoding: data, as: UTF8.self),
                    token: TestStandby.reporterToken)
                #expect((200..<500).contains(report.status.code), "report \(name) → \(report.status)")
            }
        }
    }
}

/// Real disk trouble on a small tmpfs: full, and read-only. Needs root (mount), as CI has.
let canMountTmpfs: Bool = {
    guard getuid() == 0 else { return false }
    let probe = FileManager.default.temporaryDirectory.appendingPathComponent("standby-mount-probe-\(getpid())")
    try? FileManager.default.createDirectory(at: probe, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: probe) }
    guard DiskTroubleTests.run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe.path) == 0 else { return false }
    DiskTroubleTests.run("umount", probe.path)
    return true
}()

@Suite("Disk trouble", .enabled(if: canMountTmpfs))
struct DiskTroubleTests {

    @discardableResult
    static func run(_ arguments: String...) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func withTmpfs(size: String, _ body: (String) async throws -> Void) async throws {
        let mountPoint = FileManager.default.temporaryDirectory.appendingPathComponent(
            "standby-tmpfs-\(UUID().uuidString)"
        ).path
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        #expect(await blocking { Self.run("mount", "-t", "tmpfs", "-o", "size=\(size)", "tmpfs", mountPoint) } == 0)
        defer {
            Self.run("umount", "-l", mountPoint)
            try? FileManager.default.removeItem(atPath: mountPoint)
        }
        try await body(mountPoint)
    }

    @Sendable func fill(_ folder: String) {
        // Take every free byte, so that the next commit has nowhere to go.
        let filler = folder + "/filler"
        _ = FileManager.default.createFile(atPath: filler, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: filler) else { return }
        let chunk = Data(repeating: 0x55, count: 64 * 1024)
        while (try? handle.write(contentsOf: chunk)) != nil {}
        try? handle.close()
    }

    func alert(_ index: Int) throws -> Data {
        guard case .object(var root) = try Fixtures.json("test-action-metric-static.json"),
            case .object(var data)? = root["data"],
            case .object(var essentials)? = data["essentials"]
        else { throw CancellationError() }
        essentials["alertId"] = .string("/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/disk-\(index)")
        essentials["description"] = .string(String(repeating: "d", count: 4000))
        data["essentials"] = .object(essentials)
        root["data"] = .object(data)
        return JSONValue.object(root).canonicalData()
    }

    @Test("disk full: 503 with Retry-After, /readyz unready, recovery without restart, nothing acknowledged lost")
    func diskFull() async throws {
        try await withTmpfs(size: "4m") { folder in
            var configured = TestStandby()
            configured.databaseFolder = folder
            let standby = configured
            try await standby.run { client, _ in
                var acknowledged: [String] = []
                for index in 0..<5 {
                    let response = try await client.postWebhook(try alert(index))
                    #expect(response.status == .ok)
                    acknowledged.append(response.json["deliveryId"]?.stringValue ?? "")
                }
                await blocking { fill(folder) }
                var refused = 0
                for index in 5..<40 {
                    let response = try await client.postWebhook(try alert(index))
                    #expect(response.status.code < 500 || response.status == .serviceUnavailable, "\(response.status)")
                    if response.status == .serviceUnavailable {
                        refused += 1
                        #expect(response.headers[.retryAfter] != nil)
                    } else if response.status == .ok {
                        acknowledged.append(response.json["deliveryId"]?.stringValue ?? "")
                    }
                }
                #expect(refused > 0)
                #expect(try await client.execute(uri: "/readyz", method: .get).status == .serviceUnavailable)
                try FileManager.default.removeItem(atPath: folder + "/filler")
                let recovered = try await client.postWebhook(try alert(1000))
                #expect(recovered.status == .ok)
                acknowledged.append(recovered.json["deliveryId"]?.stringValue ?? "")
                #expect(try await client.execute(uri: "/readyz", method: .get).status == .ok)
                let stored = try await standby.openDatabase().read { db in
                    Set(try String.fetchAll(db, sql: "SELECT id FROM deliveries"))
                }
                #expect(acknowledged.allSatisfy(stored.contains))
                let integrity = try await standby.openDatabase().read { db in
                    try String.fetchOne(db, sql: "PRAGMA integrity_check")
                }
                #expect(integrity == "ok")
            }
        }
    }
}
