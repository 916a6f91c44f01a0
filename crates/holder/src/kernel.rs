//! What the kernel still holds of a connection's output.

use tokio::net::TcpStream;

/// Bytes written to `stream` that the peer has not acknowledged yet (`SIOCOUTQ`): sent and
/// unacknowledged, or not sent at all. Zero when the kernel does not say, which makes everything
/// written count as acknowledged.
#[cfg(target_os = "linux")]
pub(crate) fn unacknowledged_bytes(stream: &TcpStream) -> u64 {
    use std::os::fd::AsRawFd;

    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one `int` through the pointer, which points to a live
    // `c_int`; the descriptor stays open while `stream` is borrowed.
    #[allow(unsafe_code)]
    let result = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    if result == 0 {
        u64::try_from(queued).unwrap_or(0)
    } else {
        0
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn unacknowledged_bytes(_stream: &TcpStream) -> u64 {
    0
}
