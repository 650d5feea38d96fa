/// Lower-case hexadecimal of bytes (digests, MACs): written by hand, it is on the write path.
/// Inlinable, so that it is specialised for the caller's bytes: unspecialised, iterating a digest
/// through witness tables took most of an event's hashing time.
@inlinable
public func hexString(_ bytes: some Sequence<UInt8>) -> String {
    var out = [UInt8]()
    out.reserveCapacity(64)
    for byte in bytes {
        out.append(hexDigit(byte >> 4))
        out.append(hexDigit(byte & 0x0f))
    }
    return String(decoding: out, as: UTF8.self)
}

/// The lower-case ASCII digit of a value from 0 to 15.
@inlinable @inline(__always)
public func hexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
}
