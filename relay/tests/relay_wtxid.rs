//! The relay's duplicate key is the payload's double SHA-256 (the frame
//! checksum's hash), which is the transaction's wtxid (BIP 141) when the
//! payload is its canonical serialisation; with decoding on, a payload
//! that is not is refused. Kept from the fuzz suite
//! (fuzz/regressions/transaction): a transaction without inputs comes in
//! the segwit form, and its payload hash is its wtxid but not its txid.

use bitcoin::hashes::{sha256d, Hash};
use sprint_relay::{wire, Relay, RelayConfig};

/// Frames `payload` and hands it to a relay that decodes: whether it was
/// relayed.
fn relayed(payload: &[u8]) -> bool {
    let mut relay = Relay::new(
        RelayConfig {
            decode: true,
            ..RelayConfig::default()
        },
        None,
    );
    let p = relay.publish().unwrap();
    let frame = wire::tx_frame(payload);
    let ok = relay.take(p, &frame, 0).is_ok();
    assert_eq!(relay.counters.frames, 1);
    assert_eq!(relay.counters.relayed + relay.counters.undecodable, 1);
    ok
}

#[test]
fn a_transaction_without_inputs_is_keyed_by_its_wtxid() {
    // Version, marker 0 and flag 1, no inputs, no outputs, lock time: the
    // form the bitcoin crate gives a transaction without inputs. Its
    // payload hash is its wtxid, not its txid (the txid shortcut the
    // relay once took went wrong here).
    let payload = [
        0x0d, 0x01, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00, 0x01, 0xc9, 0xa5, 0xe9,
    ];
    assert_eq!(
        payload.as_slice(),
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/regressions/transaction/no-inputs-segwit-form"
        ))
        .unwrap()
    );
    let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(&payload).unwrap();
    let hash = sha256d::Hash::hash(&payload).to_byte_array();
    assert_eq!(hash, tx.compute_wtxid().to_byte_array());
    assert_ne!(hash, tx.compute_txid().to_byte_array());
    assert!(relayed(&payload));
}

#[test]
fn legacy_and_segwit_transactions_are_keyed_by_their_wtxid() {
    let (legacy, _) = sprint_relay::sample::transaction(7, 40);
    let mut tx: bitcoin::Transaction = bitcoin::consensus::deserialize(&legacy).unwrap();
    let witnessed = {
        tx.input[0].witness.push([1u8; 72]);
        bitcoin::consensus::serialize(&tx)
    };
    for payload in [legacy, witnessed] {
        let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(&payload).unwrap();
        assert_eq!(
            sha256d::Hash::hash(&payload).to_byte_array(),
            tx.compute_wtxid().to_byte_array()
        );
        assert!(relayed(&payload));
    }
}
