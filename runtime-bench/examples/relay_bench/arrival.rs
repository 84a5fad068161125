//! When what a subscriber reads arrived: the kernel's receive timestamp.
//!
//! A subscriber's latency used to end when the generator read the frame.
//! With 16 subscribers, a frame the relay writes to all of them is read
//! by 16 system calls one after the other, so the last subscriber's copy
//! could wait for the generator's 15 other reads (about 2.5 µs each in a
//! profile at 200k frames/s, most of it the kernel sending the ACK) and
//! the rest of its turn: time that was the generator's, not the relay's.
//! So each read also asks the kernel when the data
//! arrived in the socket (`SO_TIMESTAMPNS`, the software receive
//! timestamp, which for TCP is that of the last segment the read took),
//! and latency ends there. Frames that came earlier in the same read are
//! counted as arriving with the last, so latency is never under-counted;
//! a read the kernel gives no timestamp for (timestamping unavailable)
//! ends at the time of the read, as before, and is counted.
//!
//! The timestamp is on the realtime clock and the generator's clock is
//! the monotonic one, so a read's timestamp becomes an age (how long the
//! data waited, realtime now minus the stamp, both read within a
//! microsecond) taken from the monotonic time of the read: a step of the
//! realtime clock between runs changes nothing.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Asks the kernel to timestamp what arrives on `s` (on the first such
/// socket, timestamping starts a moment later: deferred kernel work).
pub fn enable(s: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid fd, and a pointer to an int of the size given.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A read: its bytes, and when they arrived (the time of the read if the
/// kernel did not say).
pub struct Read {
    pub n: usize,
    pub at: Instant,
    pub stamped: bool,
}

fn realtime() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Reads from `s` into `buf` (non-blocking: `WouldBlock` when empty).
pub fn recv(s: &impl AsRawFd, buf: &mut [u8]) -> io::Result<Read> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one SCM_TIMESTAMPNS message, aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: a zeroed msghdr is valid (no name, no iov, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` points at `iov` (over `buf`) and `control`, all live
    // and writable for the call.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let (now, now_real) = (Instant::now(), realtime());
    let mut stamp = None;
    // SAFETY: the control buffer was filled by recvmsg, which set
    // msg_controllen to what it wrote; CMSG_FIRSTHDR/NXTHDR stay within
    // it, and the timespec is read unaligned from a message of its type.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                stamp = Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(match stamp {
        Some(ts) => Read {
            n: n as usize,
            at: now - now_real.saturating_sub(ts),
            stamped: true,
        },
        None => Read {
            n: n as usize,
            at: now,
            stamped: false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_read_is_dated_when_its_bytes_arrived_not_when_it_was_made() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let r = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut w, _) = l.accept().unwrap();
        enable(&r).unwrap();
        // The kernel turns timestamping on shortly after the first socket
        // asks (deferred work): until a read comes back dated.
        let until = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 16];
        loop {
            w.write_all(b"x").unwrap();
            if recv(&r, &mut buf).unwrap().stamped {
                break;
            }
            assert!(Instant::now() < until, "no read was dated within 10 s");
        }
        w.write_all(b"hello").unwrap();
        let sent = Instant::now();
        // Let the bytes wait in the socket for a while before the read.
        std::thread::sleep(Duration::from_millis(50));
        let got = recv(&r, &mut buf).unwrap();
        assert_eq!(&buf[..got.n], b"hello");
        assert!(got.stamped, "the kernel gave no receive timestamp");
        let read_at = Instant::now();
        assert!(
            got.at <= sent + Duration::from_millis(20)
                && read_at - got.at >= Duration::from_millis(30),
            "dated {:?} after the write, read {:?} after it",
            got.at.saturating_duration_since(sent),
            read_at - sent
        );
    }
}
