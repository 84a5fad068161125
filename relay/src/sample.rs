//! Made-up transactions for tests and the load generator: valid, distinct
//! by a sequence number the first input's outpoint carries.

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};

/// A transaction spending outpoint `seq` (its txid's first 8 bytes), with
/// one output whose script is `script` bytes: its serialisation and txid.
pub fn transaction(seq: u64, script: usize) -> (Vec<u8>, [u8; 32]) {
    let mut prev = [0u8; 32];
    prev[..8].copy_from_slice(&seq.to_le_bytes());
    let t = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: Txid::from_byte_array(prev),
                vout: 0,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(10_000 + seq),
            script_pubkey: ScriptBuf::from_bytes(vec![0x6a; script]),
        }],
    };
    (
        bitcoin::consensus::serialize(&t),
        t.compute_txid().to_byte_array(),
    )
}

/// The sequence number in a framed [`transaction`]: after the header, the
/// version (4 bytes) and the input count (1), the outpoint's first 8 bytes.
pub fn seq_of_frame(frame: &[u8]) -> Option<u64> {
    let at = crate::wire::HEADER + 5;
    Some(u64::from_le_bytes(frame.get(at..at + 8)?.try_into().ok()?))
}
