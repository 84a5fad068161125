//! `sprint_io::fs` on every driver the machine offers: on io_uring the
//! calls are ring operations, on epoll they run on the blocking pool.

mod common;

use common::{drivers, rt};

use sprint_core::config::IoDriver;
use sprint_core::time;
use sprint_io::buf::{IoBuf, IoBufMut};
use sprint_io::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn files_round_trip() {
    for d in drivers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        let rt = rt(d);
        if d == IoDriver::Uring {
            // The driver needs SHUTDOWN (5.11), so any kernel it runs on
            // has the file opcodes (5.6): the calls below are ring
            // operations.
            let line = &rt.start_report().drivers()[0];
            assert!(line.contains("files on the ring"), "{line}");
        }
        rt.block_on(async {
            fs::write(&path, b"hello, files").await.unwrap();
            assert_eq!(fs::read(&path).await.unwrap(), b"hello, files", "{d}");
            assert_eq!(fs::read_to_string(&path).await.unwrap(), "hello, files");
            // A file larger than one read chunk.
            let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
            fs::write(&path, &big).await.unwrap();
            assert_eq!(fs::read(&path).await.unwrap(), big, "{d}");

            let mut f = File::create(&path).await.unwrap();
            f.write_all(b"first ").await.unwrap();
            f.write_all(b"second").await.unwrap();
            f.sync_all().await.unwrap();
            f.sync_data().await.unwrap();
            let m = f.metadata().await.unwrap();
            assert_eq!(m.len(), 12, "{d}");
            assert!(m.is_file() && !m.is_dir(), "{d}");
            let age = std::time::SystemTime::now()
                .duration_since(m.modified().unwrap())
                .unwrap_or_default();
            assert!(age < Duration::from_secs(3600), "{d}: modified {age:?} ago");
            f.set_len(5).await.unwrap();
            assert_eq!(f.metadata().await.unwrap().len(), 5);
            drop(f);

            // Reads move the file position.
            let mut f = File::open(&path).await.unwrap();
            let mut buf = [0u8; 3];
            assert_eq!(f.read(&mut buf).await.unwrap(), 3);
            assert_eq!(&buf, b"fir", "{d}");
            assert_eq!(f.read(&mut buf).await.unwrap(), 2);
            assert_eq!(&buf[..2], b"st", "{d}");
            assert_eq!(f.read(&mut buf).await.unwrap(), 0, "{d}: the end");
            let std = f.into_std().unwrap();
            assert_eq!(std.metadata().unwrap().len(), 5);
            let f = File::from_std(std).unwrap();
            assert_eq!(f.read_at(&mut buf, 0).await.unwrap(), 3);
        });
    }
}

#[test]
fn offsets_leave_the_position_alone() {
    for d in drivers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.bin");
        // On a worker (the ring's owner; the other tests submit from the
        // `block_on` thread), which also shows the futures are `Send`.
        rt(d).block_on(async move {
            sprint_core::spawn(async move {
                let mut f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)
                    .await
                    .unwrap();
                assert_eq!(f.write_at(b"world", 6).await.unwrap(), 5);
                assert_eq!(f.write_at(b"hello", 0).await.unwrap(), 5);
                let mut buf = [0xffu8; 11];
                assert_eq!(f.read_at(&mut buf, 0).await.unwrap(), 11);
                assert_eq!(&buf, b"hello\0world", "{d}: the hole reads as zero");
                assert_eq!(f.read_at(&mut buf, 8).await.unwrap(), 3);
                assert_eq!(&buf[..3], b"rld");
                assert_eq!(
                    f.read_at(&mut buf, 100).await.unwrap(),
                    0,
                    "{d}: past the end"
                );
                // The position is still 0: a read starts at the beginning.
                let mut head = [0u8; 4];
                assert_eq!(f.read(&mut head).await.unwrap(), 4);
                assert_eq!(&head, b"hell", "{d}");

                // Owned buffers: the kernel reads from and writes into them.
                let (n, back) = f.write_at_owned(b"WORLD".to_vec(), 6).await;
                assert_eq!(n.unwrap(), 5);
                assert_eq!(back, b"WORLD", "{d}: the buffer comes back");
                let (n, got) = f.read_at_owned(Vec::with_capacity(5), 6).await;
                assert_eq!(n.unwrap(), 5);
                assert_eq!(got, b"WORLD", "{d}: its length is the count");
                let (n, got) = f.read_owned(Vec::with_capacity(64)).await;
                assert_eq!(n.unwrap(), 7, "{d}: from position 4 to the end");
                assert_eq!(got, b"o\0WORLD");
                let (n, _) = f.write_owned(b"!".to_vec()).await;
                assert_eq!(n.unwrap(), 1);
                assert_eq!(fs::read(&path).await.unwrap(), b"hello\0WORLD!", "{d}");

                // Append: every write goes to the end.
                let mut a = OpenOptions::new().append(true).open(&path).await.unwrap();
                a.write_all(b"+").await.unwrap();
                assert_eq!(fs::read(&path).await.unwrap(), b"hello\0WORLD!+", "{d}");
            })
            .await
            .unwrap()
        });
    }
}

#[test]
fn errors_keep_their_kind_and_name_the_path() {
    for d in drivers() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-file");
        let latin1 = dir.path().join("latin1.txt");
        std::fs::write(&latin1, [0x63, 0x61, 0x66, 0xe9]).unwrap();
        rt(d).block_on(async {
            let e = File::open(&missing).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound, "{d}");
            let msg = e.to_string();
            assert!(
                msg.contains("open") && msg.contains(&*missing.to_string_lossy()),
                "{d}: {msg}"
            );
            let e = fs::read(&missing).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound, "{d}");
            let e = fs::read_to_string(&latin1).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidData, "{d}");
            assert!(e.to_string().contains("latin1.txt"), "{e}");
            let e = OpenOptions::new().open(&latin1).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{d}: {e}");
            let e = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&latin1)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{d}: {e}");
            let mut ro = File::open(&latin1).await.unwrap();
            let e = ro.write(b"x").await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{d}: {e}");
        });
    }
}

/// A buffer that says when it is dropped.
struct Tracked {
    bytes: Vec<u8>,
    dropped: Arc<AtomicBool>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

// SAFETY: the Vec's heap memory does not move when `Tracked` does, and
// `bytes_init` is the Vec's initialised length.
unsafe impl IoBuf for Tracked {
    fn stable_ptr(&self) -> *const u8 {
        self.bytes.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.bytes.len()
    }
}

// SAFETY: as above; the capacity is writable and `set_init` is only called
// for bytes the kernel wrote.
unsafe impl IoBufMut for Tracked {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.bytes.as_mut_ptr()
    }
    fn bytes_total(&mut self) -> usize {
        self.bytes.capacity()
    }
    unsafe fn set_init(&mut self, n: usize) {
        // SAFETY: the caller says the first `n` bytes were written.
        unsafe { self.bytes.set_len(n) }
    }
}

/// A read on a FIFO waits for a writer, so it is in flight when its
/// future is dropped. The buffer must live until the kernel (io_uring) or
/// the pool's job (epoll) is done with it; buffers allocated after the
/// drop, where a freed one would be reused, must never be written.
#[test]
fn a_dropped_read_in_flight_never_writes_freed_memory() {
    for d in drivers() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        rt(d).block_on(async {
            // Read and write: opening the FIFO waits for no peer.
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&fifo)
                .await
                .unwrap();
            let dropped = Arc::new(AtomicBool::new(false));
            let buf = Tracked {
                bytes: Vec::with_capacity(4096),
                dropped: dropped.clone(),
            };
            let r = time::timeout(Duration::from_millis(20), f.read_owned(buf)).await;
            assert!(r.is_err(), "{d}: nothing was written, the read must wait");
            if d == IoDriver::Epoll {
                // The pool's job is blocked in read(2) with the buffer.
                assert!(!dropped.load(Ordering::SeqCst), "{d}: freed under the read");
            }
            let canaries: Vec<Vec<u8>> = (0..16).map(|_| vec![0xA5u8; 4096]).collect();
            let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            std::io::Write::write_all(&mut w, &[7u8; 100]).unwrap();
            common::wait_until_async(Duration::from_secs(10), "the buffer to be let go", || {
                dropped.load(Ordering::SeqCst)
            })
            .await;
            for c in &canaries {
                assert!(c.iter().all(|b| *b == 0xA5), "{d}: a canary was written");
            }
            drop(f);
        });
    }
}
