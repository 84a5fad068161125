//! The relay's frame parser on any bytes: it never panics, and what it
//! accepts is a whole, checked `tx` frame inside the buffer. The first
//! two bytes pick the payload limit, so that the length checks are
//! reached with small inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sprint_relay::wire::{self, Malformed, Parsed, HEADER, MAINNET};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let max = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let buf = &data[2..];
    check(buf, max);

    // The same bytes as the payload of an honest frame: accepted whole,
    // and every prefix of it is a request for more, never an error.
    let frame = wire::tx_frame(buf);
    match wire::parse(&frame, MAINNET, buf.len()) {
        Ok(Parsed::Tx { payload, len, .. }) => {
            assert_eq!(payload, buf);
            assert_eq!(len, frame.len());
        }
        other => panic!("an honest frame was refused: {other:?}"),
    }
    for cut in [0, 1, HEADER - 1, HEADER, frame.len() - 1] {
        if cut < frame.len() {
            match wire::parse(&frame[..cut], MAINNET, buf.len()) {
                Ok(Parsed::Need(n)) => assert!(n > cut && n <= frame.len()),
                other => panic!("a prefix of {cut} bytes gave {other:?}"),
            }
        }
    }
});

fn check(buf: &[u8], max: usize) {
    match wire::parse(buf, MAINNET, max) {
        Ok(Parsed::Need(n)) => {
            assert!(
                n > buf.len(),
                "asked for {n} bytes with {} there",
                buf.len()
            );
            assert!(n >= HEADER && n <= HEADER + max);
        }
        Ok(Parsed::Tx { payload, len, hash }) => {
            assert!(len <= buf.len());
            assert_eq!(len, HEADER + payload.len());
            assert!(payload.len() <= max);
            assert_eq!(payload, &buf[HEADER..len]);
            assert_eq!(&buf[..4], &MAINNET);
            assert_eq!(&buf[4..16], b"tx\0\0\0\0\0\0\0\0\0\0");
            assert_eq!(wire::checksum(payload), buf[20..24]);
            assert_eq!(hash[..4], buf[20..24]);
        }
        Err(e) => {
            // Every refusal has a counter name and a message.
            assert!(!e.kind().is_empty());
            assert!(!e.to_string().is_empty());
            if let Malformed::Oversize { len, max: m } = e {
                assert!(len > m);
            }
        }
    }
}
