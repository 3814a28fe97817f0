import Foundation

/// A `fedswift` child process for tests of whole commands: started with extra environment, its
/// output collected in a file, waited for with a bound.
///
/// ```swift
/// let run = try ChildProcess.fedswift(["simulate", path, "--out", dir])
/// #expect(run.status == 0, "\(run.output)")
/// ```
public final class ChildProcess: @unchecked Sendable {
    /// The `fedswift` built beside the test bundle, if there is one.
    public static let binary: String? = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path,
            Bundle.main.bundlePath,
        ].map { $0 + "/fedswift" }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    public let process = Process()
    private let logDirectory: TemporaryDirectory
    private let log: FileHandle

    /// Starts `fedswift arguments` with `environment` added.
    public init(_ arguments: [String], environment: [String: String] = [:]) throws {
        guard let binary = Self.binary else {
            throw TestSupportError("the fedswift executable is not beside the test bundle")
        }
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        logDirectory = try TemporaryDirectory(prefix: "fedswift-child")
        FileManager.default.createFile(atPath: logDirectory.file("log"), contents: nil)
        log = try FileHandle(forWritingTo: URL(fileURLWithPath: logDirectory.file("log")))
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    /// Everything the process wrote so far (standard output and error).
    public var output: String { (try? String(contentsOfFile: logDirectory.file("log"), encoding: .utf8)) ?? "" }

    /// Waits until `condition` holds (checked every 20 ms) or `timeout` seconds pass; returns whether it held.
    @discardableResult
    public func wait(for timeout: Double, until condition: (ChildProcess) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition(self) { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return condition(self)
    }

    /// Waits for the process to end, killing it after `timeout` seconds; returns its outcome.
    @discardableResult
    public func finish(timeout: Double = 300) -> (status: Int32, signalled: Bool, output: String, timedOut: Bool) {
        let ended = wait(for: timeout) { !$0.process.isRunning }
        if !ended {
            process.terminate()
            Thread.sleep(forTimeInterval: 0.5)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        try? log.close()
        return (process.terminationStatus, process.terminationReason == .uncaughtSignal, output, !ended)
    }

    /// Runs `fedswift arguments` to the end (at most `timeout` seconds).
    public static func fedswift(
        _ arguments: [String], environment: [String: String] = [:], timeout: Double = 300
    ) throws -> (status: Int32, signalled: Bool, output: String, timedOut: Bool) {
        try ChildProcess(arguments, environment: environment).finish(timeout: timeout)
    }
}

/// A test helper that cannot do its job.
public struct TestSupportError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
