//! Removing a network's bridge device when the network is removed: one RTM_DELLINK request over a
//! netlink socket (what `ip link del` sends). The CNI plugins create the bridge on first ADD but never
//! remove it, and this layer runs no `ip` command.

use std::ffi::CString;

use crate::error::{Error, ErrorKind, Result};

const RTM_DELLINK: u16 = 17;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;

/// Delete link `name`; a link that does not exist is no error.
pub(crate) fn delete(name: &str) -> Result<()> {
    let cname =
        CString::new(name).map_err(|_| Error::invalid(format!("bad link name {name:?}")))?;
    // SAFETY: `cname` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Ok(());
    }
    let fail = |what: &str, e: std::io::Error| {
        Error::new(ErrorKind::Io, format!("remove bridge {name}: {what}: {e}"))
    };
    // SAFETY: plain socket(2) call; the descriptor is closed below on every path.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(fail("netlink socket", std::io::Error::last_os_error()));
    }
    let result = request(fd, index).map_err(|e| fail("RTM_DELLINK", e));
    // SAFETY: `fd` is the socket opened above, closed exactly once.
    unsafe { libc::close(fd) };
    match result {
        Err(e) if e.to_string().contains("No such device") => Ok(()),
        other => other,
    }
}

/// Send RTM_DELLINK for interface `index` on netlink socket `fd` and read the kernel's ack.
fn request(fd: libc::c_int, index: u32) -> std::io::Result<()> {
    // nlmsghdr (len, type, flags, seq, pid) then ifinfomsg (family, pad, type, index, flags, change).
    let mut msg = Vec::with_capacity(32);
    msg.extend_from_slice(&32u32.to_ne_bytes());
    msg.extend_from_slice(&RTM_DELLINK.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
    msg.extend_from_slice(&0u16.to_ne_bytes());
    msg.extend_from_slice(&(index as i32).to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    // SAFETY: an all-zero sockaddr_nl is valid (pid 0 and groups 0: the kernel).
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `msg` and `kernel` are valid for the lengths given.
    let sent = unsafe {
        libc::sendto(
            fd,
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut reply = [0u8; 1024];
    // SAFETY: `reply` is writable for its whole length.
    let n = unsafe { libc::recv(fd, reply.as_mut_ptr().cast(), reply.len(), 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let n = n as usize;
    if n >= 20 && u16::from_ne_bytes([reply[4], reply[5]]) == NLMSG_ERROR {
        let code = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
        if code != 0 {
            return Err(std::io::Error::from_raw_os_error(-code));
        }
    }
    Ok(())
}
