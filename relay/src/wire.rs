//! The Bitcoin P2P message framing: a 24-byte header (network magic,
//! a NUL-padded 12-byte command, the payload length, the first four bytes
//! of the payload's double SHA-256), then the payload.

use bitcoin::hashes::{sha256d, Hash};

/// Mainnet's magic, as it appears on the wire.
pub const MAINNET: [u8; 4] = [0xf9, 0xbe, 0xb4, 0xd9];
/// Header bytes.
pub const HEADER: usize = 24;

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// The magic is not the network's.
    #[error("bad magic {0:02x?}")]
    BadMagic([u8; 4]),
    /// The length is above the limit.
    #[error("payload length {len} above the limit of {max} bytes")]
    Oversize {
        /// The length the header gave.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The checksum does not match the payload.
    #[error("checksum mismatch")]
    BadChecksum,
    /// A command other than `tx`.
    #[error("unexpected command {0:?}")]
    Command(String),
    /// The payload is not a transaction.
    #[error("undecodable transaction: {0}")]
    Undecodable(String),
}

impl Malformed {
    /// A short name, for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Malformed::BadMagic(_) => "bad_magic",
            Malformed::Oversize { .. } => "oversize",
            Malformed::BadChecksum => "bad_checksum",
            Malformed::Command(_) => "command",
            Malformed::Undecodable(_) => "undecodable",
        }
    }
}

/// The first four bytes of the double SHA-256.
pub fn checksum(payload: &[u8]) -> [u8; 4] {
    let h = sha256d::Hash::hash(payload);
    let b = h.as_byte_array();
    [b[0], b[1], b[2], b[3]]
}

/// Appends one framed message to `out`.
pub fn encode_into(out: &mut Vec<u8>, magic: [u8; 4], command: &str, payload: &[u8]) {
    out.extend_from_slice(&magic);
    let mut cmd = [0u8; 12];
    let n = command.len().min(12);
    cmd[..n].copy_from_slice(&command.as_bytes()[..n]);
    out.extend_from_slice(&cmd);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(payload));
    out.extend_from_slice(payload);
}

/// One framed `tx` message on mainnet.
pub fn tx_frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER + payload.len());
    encode_into(&mut v, MAINNET, "tx", payload);
    v
}

/// What the start of a buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// Not a whole frame yet: at least this many bytes in all.
    Need(usize),
    /// A whole, checked `tx` frame of `len` bytes (header included).
    Tx {
        /// The payload.
        payload: &'a [u8],
        /// The frame's bytes, header included.
        len: usize,
        /// The payload's double SHA-256, whose first four bytes were the
        /// checksum: the txid of a transaction without witness data.
        hash: [u8; 32],
    },
}

/// Parses the frame at the start of `buf`: the header as soon as it is
/// there (so a bad magic or length is refused before its payload
/// arrives), the checksum once the payload is.
pub fn parse(buf: &[u8], magic: [u8; 4], max: usize) -> Result<Parsed<'_>, Malformed> {
    if buf.len() < HEADER {
        return Ok(Parsed::Need(HEADER));
    }
    let got: [u8; 4] = buf[..4].try_into().unwrap_or_default();
    if got != magic {
        return Err(Malformed::BadMagic(got));
    }
    let len = u32::from_le_bytes(buf[16..20].try_into().unwrap_or_default()) as usize;
    if len > max {
        return Err(Malformed::Oversize { len, max });
    }
    let cmd = &buf[4..16];
    let end = cmd.iter().position(|b| *b == 0).unwrap_or(12);
    if &cmd[..end] != b"tx" || cmd[end..].iter().any(|b| *b != 0) {
        return Err(Malformed::Command(
            String::from_utf8_lossy(&cmd[..end]).into_owned(),
        ));
    }
    if buf.len() < HEADER + len {
        return Ok(Parsed::Need(HEADER + len));
    }
    let payload = &buf[HEADER..HEADER + len];
    let hash = sha256d::Hash::hash(payload).to_byte_array();
    if hash[..4] != buf[20..24] {
        return Err(Malformed::BadChecksum);
    }
    Ok(Parsed::Tx {
        payload,
        len: HEADER + len,
        hash,
    })
}
