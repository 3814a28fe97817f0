import Crypto
import Foundation

/// A SuperNode's identity: a P-384 key pair. Every Fleet API call carries the public key, the
/// time and an ECDSA signature of the time made with the private key (SHA-256, DER), which is how
/// the SuperLink knows which node calls.
///
/// The public key travels as Python's `cryptography` serializes it (PEM SubjectPublicKeyInfo with
/// a final newline): the SuperLink compares these bytes with the ones it registered.
public struct NodeIdentity: Sendable {
    public let privateKey: P384.Signing.PrivateKey

    /// A new random identity (what a self-registering node uses).
    public init() { privateKey = P384.Signing.PrivateKey() }

    public init(privateKey: P384.Signing.PrivateKey) { self.privateKey = privateKey }

    /// The identity in a key file: PEM (`PRIVATE KEY` or `EC PRIVATE KEY`, as openssl writes) or an
    /// unencrypted OpenSSH key (`ssh-keygen -t ecdsa -b 384 -N ""`, as Flower's guide makes).
    /// - Throws: ``FlowerError`` `.badKey`.
    public init(contentsOf path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw FlowerError(.badKey, "cannot read the key file '\(path)'")
        }
        do {
            if text.contains("BEGIN OPENSSH PRIVATE KEY") {
                privateKey = try Self.openSSHPrivateKey(text)
            } else {
                privateKey = try P384.Signing.PrivateKey(pemRepresentation: text)
            }
        } catch let error as FlowerError {
            throw FlowerError(.badKey, "\(path): \(error.message)")
        } catch {
            throw FlowerError(.badKey, "\(path) is not a P-384 private key", cause: error)
        }
    }

    /// The public key as the SuperLink registers it: PEM with a final newline.
    public var publicKeyBytes: [UInt8] { Array((privateKey.publicKey.pemRepresentation + "\n").utf8) }

    /// The public key in OpenSSH's format (`ecdsa-sha2-nistp384 AAAA… comment`), what
    /// `flwr supernode register` reads.
    public func openSSHPublicKey(comment: String = "fedswift") -> String {
        var blob: [UInt8] = []
        Self.appendString(Array("ecdsa-sha2-nistp384".utf8), to: &blob)
        Self.appendString(Array("nistp384".utf8), to: &blob)
        Self.appendString(Array(privateKey.publicKey.x963Representation), to: &blob)
        return "ecdsa-sha2-nistp384 \(Data(blob).base64EncodedString()) \(comment)"
    }

    /// The key in PEM (PKCS #8), to save.
    public var privateKeyPEM: String { privateKey.pemRepresentation + "\n" }

    /// The three headers of a call made at `date`: `flwr-public-key`, `flwr-timestamp` and
    /// `flwr-signature`.
    public func headers(at date: Date = Date()) throws -> [(name: String, value: String)] {
        let timestamp = Self.timestamp(date)
        let signature = try privateKey.signature(for: SHA256.hash(data: Array(timestamp.utf8)))
        return [
            ("flwr-public-key", Data(publicKeyBytes).base64EncodedString()),
            ("flwr-timestamp", timestamp),
            ("flwr-signature", signature.derRepresentation.base64EncodedString()),
        ]
    }

    /// `date` as Python's `datetime.now(tz=UTC).isoformat()` writes it:
    /// `2026-12-04T04:30:00.123456+00:00` (`2026-12-04T04:30:00+00:00` on a whole second).
    public static func timestamp(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        var whole = seconds.rounded(.down)
        var micros = Int(((seconds - whole) * 1_000_000).rounded())
        if micros == 1_000_000 {
            whole += 1
            micros = 0
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents(
            [.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: whole))
        func pad(_ n: Int, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        // Python leaves the fraction out when it is zero.
        return "\(pad(c.year!, 4))-\(pad(c.month!, 2))-\(pad(c.day!, 2))T\(pad(c.hour!, 2)):\(pad(c.minute!, 2)):"
            + "\(pad(c.second!, 2))\(micros == 0 ? "" : "." + pad(micros, 6))+00:00"
    }

    static func appendString(_ bytes: [UInt8], to out: inout [UInt8]) {
        let n = UInt32(bytes.count)
        out += [UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)]
        out += bytes
    }

    /// The P-384 key of an unencrypted `openssh-key-v1` file.
    static func openSSHPrivateKey(_ text: String) throws -> P384.Signing.PrivateKey {
        let base64 = text.split(whereSeparator: \.isNewline).filter { !$0.hasPrefix("-----") }.joined()
        guard let data = Data(base64Encoded: base64) else {
            throw FlowerError(.badKey, "the OpenSSH key is not base64")
        }
        var reader = SSHReader(bytes: Array(data))
        guard reader.take(15) == Array("openssh-key-v1\0".utf8) else {
            throw FlowerError(.badKey, "not an openssh-key-v1 key")
        }
        let cipher = try reader.string()
        let kdf = try reader.string()
        _ = try reader.string()  // kdf options
        guard cipher == Array("none".utf8), kdf == Array("none".utf8) else {
            throw FlowerError(.badKey, "the OpenSSH key is encrypted; give an unencrypted key (ssh-keygen -N \"\")")
        }
        guard try reader.uint32() == 1 else { throw FlowerError(.badKey, "the OpenSSH file holds more than one key") }
        _ = try reader.string()  // public key blob
        var secret = SSHReader(bytes: try reader.string())
        guard try secret.uint32() == secret.uint32() else {
            throw FlowerError(.badKey, "the OpenSSH key's check numbers differ (corrupt)")
        }
        let type = try secret.string()
        guard type == Array("ecdsa-sha2-nistp384".utf8) else {
            throw FlowerError(
                .badKey, "the OpenSSH key is '\(String(decoding: type, as: UTF8.self))', not ecdsa-sha2-nistp384")
        }
        _ = try secret.string()  // curve name
        let point = try secret.string()
        var scalar = try secret.string()
        while scalar.count > 48, scalar.first == 0 { scalar.removeFirst() }
        guard scalar.count <= 48 else { throw FlowerError(.badKey, "the OpenSSH key's scalar is too long") }
        scalar = [UInt8](repeating: 0, count: 48 - scalar.count) + scalar
        let key = try P384.Signing.PrivateKey(rawRepresentation: scalar)
        guard Array(key.publicKey.x963Representation) == point else {
            throw FlowerError(.badKey, "the OpenSSH key's public point does not match its private scalar")
        }
        return key
    }

    struct SSHReader {
        let bytes: [UInt8]
        var position = 0

        mutating func take(_ n: Int) -> [UInt8]? {
            guard n >= 0, n <= bytes.count - position else { return nil }
            defer { position += n }
            return Array(bytes[position..<(position + n)])
        }

        mutating func uint32() throws -> UInt32 {
            guard let b = take(4) else { throw FlowerError(.badKey, "the OpenSSH key is truncated") }
            return b.reduce(0) { $0 << 8 | UInt32($1) }
        }

        mutating func string() throws -> [UInt8] {
            let n = try uint32()
            guard let b = take(Int(n)) else { throw FlowerError(.badKey, "the OpenSSH key is truncated") }
            return b
        }
    }
}
