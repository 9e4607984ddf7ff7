//! `IP_LOCAL_PORT_RANGE` and its neighbours, at the raw `setsockopt` level.
//!
//! Written over `libc` by hand because the cases must control `optlen`
//! exactly (lengths other than 4 are part of what is checked), which the
//! typed socket-option wrappers of nix and socket2 do not allow.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// `IP_LOCAL_PORT_RANGE` (include/uapi/linux/in.h).
pub const IP_LOCAL_PORT_RANGE: libc::c_int = 51;
/// `IP_BIND_ADDRESS_NO_PORT` (include/uapi/linux/in.h).
pub const IP_BIND_ADDRESS_NO_PORT: libc::c_int = 24;

/// Packs a range the way the kernel reads it: `hi << 16 | lo`, host order.
pub fn pack(lo: u16, hi: u16) -> u32 {
    (u32::from(hi) << 16) | u32::from(lo)
}

/// Splits a packed value into `(lo, hi)`.
pub fn unpack(value: u32) -> (u16, u16) {
    (value as u16, (value >> 16) as u16)
}

/// `setsockopt(SOL_IP, name)` with exactly the given bytes as the value.
pub fn set_raw(fd: impl AsFd, name: libc::c_int, value: &[u8]) -> io::Result<()> {
    let len = libc::socklen_t::try_from(value.len()).map_err(io::Error::other)?;
    // SAFETY: the pointer and length describe `value`, which outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_IP,
            name,
            value.as_ptr().cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `getsockopt(SOL_IP, name)` into a buffer of `len` bytes; returns the
/// bytes the kernel reported as written.
pub fn get_raw(fd: impl AsFd, name: libc::c_int, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let optlen = libc::socklen_t::try_from(len).map_err(io::Error::other)?;
    let reported = get_into(fd, libc::SOL_IP, name, &mut buf, optlen)?;
    buf.truncate(reported as usize);
    Ok(buf)
}

/// `getsockopt(level, name)` into `buf` with `optlen` passed as the
/// length, which may be shorter than `buf` (the bytes after it show what
/// the kernel wrote past the length it was given) or not a length at all
/// (`socklen_t::MAX` is -1 to the kernel); returns the length the kernel
/// wrote back. An `optlen` longer than `buf` is refused without a call.
/// A positive return value is not an error (SCTP's peel-off returns the
/// new descriptor).
pub fn get_into(
    fd: impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
    buf: &mut [u8],
    optlen: libc::socklen_t,
) -> io::Result<libc::socklen_t> {
    let negative = optlen > libc::socklen_t::MAX >> 1;
    if !negative && optlen as usize > buf.len() {
        return Err(io::Error::other(format!(
            "getsockopt: optlen {optlen} is longer than the {}-byte buffer",
            buf.len()
        )));
    }
    let mut optlen = optlen;
    // SAFETY: the pointer describes `buf`, which outlives the call, and
    // the kernel writes at most `optlen` bytes, which is within it (or
    // refuses a negative length without writing).
    let rc = unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            level,
            name,
            buf.as_mut_ptr().cast(),
            &mut optlen,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(optlen)
}

/// Sets the socket's port range from a packed value.
pub fn set_port_range_raw(fd: impl AsFd, value: u32) -> io::Result<()> {
    set_raw(fd, IP_LOCAL_PORT_RANGE, &value.to_ne_bytes())
}

/// Sets the socket's port range to `lo..=hi` (0 leaves a bound unset).
pub fn set_port_range(fd: impl AsFd, lo: u16, hi: u16) -> io::Result<()> {
    set_port_range_raw(fd, pack(lo, hi))
}

/// Reads the socket's stored port range as the packed value.
pub fn get_port_range_raw(fd: impl AsFd) -> io::Result<u32> {
    let bytes = get_raw(fd, IP_LOCAL_PORT_RANGE, 4)?;
    let array: [u8; 4] = bytes.as_slice().try_into().map_err(|_| {
        io::Error::other(format!(
            "getsockopt(IP_LOCAL_PORT_RANGE) returned {} bytes, not 4",
            bytes.len()
        ))
    })?;
    Ok(u32::from_ne_bytes(array))
}

/// Sets `IP_BIND_ADDRESS_NO_PORT`.
pub fn set_bind_address_no_port(fd: impl AsFd, on: bool) -> io::Result<()> {
    set_raw(fd, IP_BIND_ADDRESS_NO_PORT, &i32::from(on).to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_puts_hi_in_the_upper_half() {
        assert_eq!(pack(40000, 40010), 0x9C4A_9C40);
        assert_eq!(unpack(0x9C4A_9C40), (40000, 40010));
        assert_eq!(pack(0, 0), 0);
        assert_eq!(unpack(pack(1, u16::MAX)), (1, u16::MAX));
    }
}
