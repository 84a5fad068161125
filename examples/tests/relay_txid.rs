//! The relay's duplicate key with decoding on: `relay::core::txid` takes
//! the frame checksum's hash as the txid when the payload is the
//! transaction's legacy serialisation. Kept from the fuzz suite
//! (fuzz/regressions/transaction): a transaction without inputs decodes
//! from the segwit form with no witness, and its payload hash is not its
//! txid.

use bitcoin::hashes::{sha256d, Hash};

fn check(payload: &[u8]) {
    let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(payload).unwrap();
    let hash = sha256d::Hash::hash(payload).to_byte_array();
    assert_eq!(
        relay::core::txid(&tx, hash),
        tx.compute_txid().to_byte_array()
    );
}

#[test]
fn a_transaction_without_inputs_is_keyed_by_its_txid() {
    // Version, marker 0 and flag 1, no inputs, no outputs, lock time.
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
    check(&payload);
}

#[test]
fn legacy_and_segwit_transactions_are_keyed_by_their_txid() {
    let (legacy, _) = relay::sample::transaction(7, 40);
    check(&legacy);
    // The same transaction with a witness on its input.
    let mut tx: bitcoin::Transaction = bitcoin::consensus::deserialize(&legacy).unwrap();
    tx.input[0].witness.push([1u8; 72]);
    check(&bitcoin::consensus::serialize(&tx));
}
