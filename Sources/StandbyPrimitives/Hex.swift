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

/// Whether two byte strings are equal, in time that depends only on their lengths: for secrets,
/// hashes and MACs, where an early exit would tell an attacker how much of a guess was right.
public func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}

/// `constantTimeEqual` on the UTF-8 of two strings (hex digests, signatures).
public func constantTimeEqual(_ lhs: String, _ rhs: String) -> Bool {
    constantTimeEqual(Array(lhs.utf8), Array(rhs.utf8))
}
