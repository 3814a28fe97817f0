import Crypto
import Foundation
import Testing

@testable import FedFlower

/// The node's key files and signed headers, against what Flower's Python side makes of the same
/// key (`Fixtures/node-key` from `ssh-keygen -t ecdsa -b 384`, its `.pub`; `node-key.public.pem`
/// and `node-key.pkcs8.pem` written by flwr's `public_key_to_bytes` / `private_key_to_bytes`,
/// `node-key.sec1.pem` by `openssl ec`). A test key, used nowhere else.
@Suite struct NodeIdentityTests {
    static func fixture(_ name: String) -> String {
        let file = #filePath
        return String(file[..<file.lastIndex(of: "/")!]) + "/Fixtures/" + name
    }

    @Test func everyKeyFormatGivesThePublicKeyFlowerRegisters() throws {
        let python = try String(contentsOfFile: Self.fixture("node-key.public.pem"), encoding: .utf8)
        for file in ["node-key", "node-key.pkcs8.pem", "node-key.sec1.pem"] {
            let identity = try NodeIdentity(contentsOf: Self.fixture(file))
            #expect(identity.publicKeyBytes == Array(python.utf8), "\(file)")
        }
    }

    @Test func openSSHPublicKeyIsWhatSSHKeygenWrote() throws {
        let pub = try String(contentsOfFile: Self.fixture("node-key.pub"), encoding: .utf8)
        let identity = try NodeIdentity(contentsOf: Self.fixture("node-key"))
        let fields = pub.split(separator: " ")
        #expect(identity.openSSHPublicKey(comment: "fedswift-test") == "\(fields[0]) \(fields[1]) fedswift-test")
    }

    @Test func headersAreSignedTimestampsTheSuperLinkVerifies() throws {
        let identity = NodeIdentity()
        let date = Date(timeIntervalSince1970: 1_764_820_000.125)
        let headers = Dictionary(uniqueKeysWithValues: try identity.headers(at: date).map { ($0.name, $0.value) })
        #expect(headers["flwr-timestamp"] == "2025-12-04T03:46:40.125000+00:00")
        #expect(Data(base64Encoded: headers["flwr-public-key"]!) == Data(identity.publicKeyBytes))
        // ECDSA over SHA-256 of the timestamp's ASCII bytes, DER: what the SuperLink's
        // `public_key.verify(signature, timestamp, ECDSA(SHA256()))` accepts.
        let signature = try P384.Signing.ECDSASignature(
            derRepresentation: Data(base64Encoded: headers["flwr-signature"]!)!)
        let digest = SHA256.hash(data: Array(headers["flwr-timestamp"]!.utf8))
        #expect(identity.privateKey.publicKey.isValidSignature(signature, for: digest))
        // Not over SHA-384 (swift-crypto's default for P-384), not over another time.
        #expect(!identity.privateKey.publicKey.isValidSignature(signature, for: Array(headers["flwr-timestamp"]!.utf8)))
        #expect(!identity.privateKey.publicKey.isValidSignature(signature, for: SHA256.hash(data: Array("2025".utf8))))
    }

    @Test func timestampsAsPythonWritesThem() {
        #expect(
            NodeIdentity.timestamp(Date(timeIntervalSince1970: 1_764_820_000.9999996)) == "2025-12-04T03:46:41+00:00")
        #expect(NodeIdentity.timestamp(Date(timeIntervalSince1970: 0.000001)) == "1970-01-01T00:00:00.000001+00:00")
    }

    @Test func badKeyFilesAreRefusedClearly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedswift-key-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func refusal(_ text: String?) -> FlowerError? {
            let path = dir.appendingPathComponent("k").path
            try? FileManager.default.removeItem(atPath: path)
            if let text { FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) }
            do {
                _ = try NodeIdentity(contentsOf: path)
                return nil
            } catch let e as FlowerError {
                return e
            } catch {
                return nil
            }
        }
        #expect(refusal(nil)?.code == .badKey)  // missing
        #expect(refusal("hello")?.code == .badKey)
        // A P-256 key is not the P-384 key Flower expects.
        #expect(refusal(P256.Signing.PrivateKey().pemRepresentation)?.code == .badKey)
        // A truncated OpenSSH key.
        let openssh = try String(contentsOfFile: Self.fixture("node-key"), encoding: .utf8)
        var lines = openssh.split(separator: "\n")
        lines.remove(at: 3)
        #expect(refusal(lines.joined(separator: "\n"))?.code == .badKey)
    }
}
