//! Transaction decoding as the relay does it (`decode` on): the payload
//! is decoded with the `bitcoin` crate, and the duplicate key is
//! `relay::core::txid`, which takes the payload's double SHA-256 (the
//! frame checksum's hash) as the txid when no input carries a witness.
//! That shortcut is sound only if such a payload is exactly the
//! transaction's serialisation: checked here on any bytes, and through
//! `Relay::take` on the framed bytes.
#![no_main]

use bitcoin::hashes::{sha256d, Hash};
use libfuzzer_sys::fuzz_target;
use relay::{wire, Relay, RelayConfig};

fuzz_target!(|payload: &[u8]| {
    let decoded: Result<bitcoin::Transaction, _> = bitcoin::consensus::deserialize(payload);
    let hash = sha256d::Hash::hash(payload).to_byte_array();
    if let Ok(tx) = &decoded {
        assert_eq!(
            relay::core::txid(tx, hash),
            tx.compute_txid().to_byte_array(),
            "the relay's txid shortcut disagrees with the transaction's txid"
        );
        assert_eq!(
            bitcoin::consensus::serialize(tx),
            payload,
            "decoding is not exact"
        );
    }

    // The same payload framed and taken by a relay that decodes: relayed
    // if and only if it decodes, and counted either way.
    let cfg = RelayConfig {
        decode: true,
        max_payload: payload.len(),
        seen: 4,
        queue_bytes: 1 << 12,
        ..RelayConfig::default()
    };
    let mut relay = Relay::new(cfg, None);
    let frame = wire::tx_frame(payload);
    let taken = relay.take(&frame, 0);
    assert_eq!(relay.counters.frames, 1);
    match (taken, &decoded) {
        (Ok(n), Ok(_)) => {
            assert_eq!(n, frame.len());
            assert_eq!(relay.counters.relayed, 1);
        }
        (Err(wire::Malformed::Undecodable(_)), Err(_)) => {
            assert_eq!(relay.counters.undecodable, 1);
        }
        (taken, decoded) => panic!("take gave {taken:?}, decoding {decoded:?}"),
    }
});
