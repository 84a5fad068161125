//! Transaction decoding as the relay does it (`decode` on): the payload
//! is decoded with the `bitcoin` crate, and the duplicate key is the
//! payload's double SHA-256 (the frame checksum's hash), which is the
//! transaction's wtxid when the payload is its canonical serialisation;
//! the relay refuses a payload that is not. Checked here on any bytes,
//! and through `Relay::take` on the framed bytes.
#![no_main]

use bitcoin::hashes::{sha256d, Hash};
use libfuzzer_sys::fuzz_target;
use sprint_relay::{wire, Relay, RelayConfig};

fuzz_target!(|payload: &[u8]| {
    let decoded: Result<bitcoin::Transaction, _> = bitcoin::consensus::deserialize(payload);
    let hash = sha256d::Hash::hash(payload).to_byte_array();
    let canonical = match &decoded {
        Ok(tx) => tx.total_size() == payload.len(),
        Err(_) => false,
    };
    if let (Ok(tx), true) = (&decoded, canonical) {
        assert_eq!(
            hash,
            tx.compute_wtxid().to_byte_array(),
            "the relay's key (the payload hash) is not the transaction's wtxid"
        );
        assert_eq!(
            bitcoin::consensus::serialize(tx),
            payload,
            "decoding is not exact"
        );
    }

    // The same payload framed and taken by a relay that decodes: relayed
    // if and only if it decodes canonically, and counted either way.
    let cfg = RelayConfig {
        decode: true,
        max_payload: payload.len(),
        seen: 4,
        queue_bytes: 1 << 12,
        ..RelayConfig::default()
    };
    let mut relay = Relay::new(cfg, None);
    let p = relay.publish().expect("a first publisher is under any cap");
    let frame = wire::tx_frame(payload);
    let taken = relay.take(p, &frame, 0);
    assert_eq!(relay.counters.frames, 1);
    match (taken, canonical) {
        (Ok(t), true) => {
            assert_eq!((t.used, t.frames), (frame.len(), 1));
            assert_eq!(relay.counters.relayed, 1);
        }
        (Err(wire::Malformed::Undecodable(_)), false) => {
            assert_eq!(relay.counters.undecodable, 1);
        }
        (taken, _) => panic!("take gave {taken:?}, decoding {decoded:?}"),
    }
});
