/// Builds IDX byte streams by hand, so tests control every header field.
enum IDXTestEncoder {
    static func encode(type: UInt8 = 0x08, dims: [UInt32], payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, type, UInt8(dims.count)]
        for dim in dims {
            bytes += [UInt8(dim >> 24), UInt8(dim >> 16 & 0xFF), UInt8(dim >> 8 & 0xFF), UInt8(dim & 0xFF)]
        }
        return bytes + payload
    }
}
