//! The Bitcoin P2P messages the relay speaks, parsed from and written to
//! the wire without the `bitcoin` crate's message types.
//!
//! Why by hand: a message is checked and decoded in place, borrowing the
//! read buffer (an `inv` of 50,000 entries is a view over its bytes, a
//! `tx` the slice the relay forwards as it came), so the steady state
//! allocates nothing per message, as the publisher path never did; every
//! limit (32 MiB in a header, 50,000 inventory entries, a payload bound
//! per command) is checked before anything is read or allocated; and
//! every refusal is a typed [`ProtocolError`] whose kind feeds the
//! misbehaviour score. The `bitcoin` crate still decodes transactions and
//! computes txids and wtxids (`p2p/peer.rs`).
//!
//! The framing is the one `wire.rs` shares with the publisher path: a
//! 24-byte header (the network's magic, a NUL-padded ASCII command, the
//! payload's length, the first four bytes of its double SHA-256), then
//! the payload. Integers are little-endian; counts and string lengths are
//! CompactSize, refused when not in their shortest form.

use crate::wire::HEADER;
use std::fmt;

pub use super::network::{Network, ParseNetworkError};

/// The largest payload a header may announce (Bitcoin Core's `MAX_SIZE`).
pub const MAX_PAYLOAD: usize = 32 << 20;
/// Inventory entries in one `inv`, `getdata` or `notfound` (Core's
/// `MAX_INV_SZ`).
pub const MAX_INV: usize = 50_000;
/// Bytes of one inventory entry: a 4-byte type and a 32-byte hash.
pub const INV_ENTRY: usize = 36;
/// The longest user agent accepted (Core's `MAX_SUBVERSION_LENGTH`).
pub const MAX_USER_AGENT: usize = 256;
/// The protocol version the relay speaks (BIP 339's `wtxidrelay`).
pub const PROTOCOL_VERSION: i32 = 70_016;
/// The oldest protocol version accepted from a peer (Core's
/// `MIN_PEER_PROTO_VERSION`).
pub const MIN_PEER_VERSION: i32 = 31_800;
/// `NODE_WITNESS`: the relay handles segwit transactions.
pub const NODE_WITNESS: u64 = 1 << 3;

/// Inventory types.
pub mod inv {
    /// A transaction by txid.
    pub const TX: u32 = 1;
    /// A block.
    pub const BLOCK: u32 = 2;
    /// A transaction by wtxid (BIP 339).
    pub const WTX: u32 = 5;
    /// The witness flag (BIP 144).
    pub const WITNESS_FLAG: u32 = 1 << 30;
    /// A transaction by txid, with its witness.
    pub const WITNESS_TX: u32 = TX | WITNESS_FLAG;
}

/// A command as it stands in a header (NUL-padded ASCII), printable.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Command(pub [u8; 12]);

impl Command {
    /// The command's bytes without the padding.
    pub fn name(&self) -> &[u8] {
        let end = self.0.iter().position(|b| *b == 0).unwrap_or(12);
        &self.0[..end]
    }

    /// Whether it is printable ASCII followed by NULs only (Core's check).
    fn is_valid(&self) -> bool {
        let n = self.name();
        n.iter().all(|b| b.is_ascii_graphic()) && self.0[n.len()..].iter().all(|b| *b == 0)
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.name()))
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.name()))
    }
}

/// Why a peer's bytes were refused. Each kind has its own counter and
/// misbehaviour score (`p2p/peer.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The magic is not the network's: the stream cannot be followed.
    #[error("bad magic {0:02x?}")]
    BadMagic([u8; 4]),
    /// The command is not printable ASCII padded with NULs.
    #[error("bad command bytes {0:02x?}")]
    BadCommand([u8; 12]),
    /// The header's length, or a payload's, is above its limit.
    #[error("{command} payload of {len} bytes above the limit of {max}")]
    Oversize {
        /// The command.
        command: Command,
        /// The length the header gave.
        len: usize,
        /// The limit for this command.
        max: usize,
    },
    /// The checksum does not match the payload.
    #[error("{0} checksum mismatch")]
    BadChecksum(Command),
    /// The payload does not decode as its command says.
    #[error("{command} payload malformed: {what}")]
    Malformed {
        /// The command.
        command: Command,
        /// What was wrong.
        what: &'static str,
    },
    /// More inventory entries than [`MAX_INV`].
    #[error("{command} with {count} entries, above the limit of {max}")]
    TooManyInv {
        /// The command.
        command: Command,
        /// The count given.
        count: u64,
        /// The limit.
        max: usize,
    },
}

/// Whether a header announces a command the relay decodes, and its
/// payload bound, or one it skips (checked, not decoded).
fn payload_limit(cmd: &[u8], max_tx: usize) -> Option<usize> {
    let inv = 9 + MAX_INV * INV_ENTRY;
    Some(match cmd {
        b"version" => 4 + 8 + 8 + 26 + 26 + 8 + 9 + MAX_USER_AGENT + 4 + 1 + 64,
        b"verack" | b"wtxidrelay" | b"sendaddrv2" | b"sendheaders" => 0,
        b"sendcmpct" => 9,
        b"feefilter" | b"ping" | b"pong" => 8,
        b"inv" | b"getdata" | b"notfound" => inv,
        b"tx" => max_tx,
        _ => return None,
    })
}

/// A checked header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The command.
    pub command: Command,
    /// The payload's length.
    pub len: usize,
    /// The payload's checksum.
    pub checksum: [u8; 4],
    /// Whether the relay decodes this command (else it skips the payload,
    /// checking its checksum as it streams by).
    pub decoded: bool,
}

/// Reads the header at the start of `buf` (`None` until 24 bytes are
/// there): the magic, the command's form, the 32 MiB bound and, for a
/// command the relay decodes, that command's bound (`max_tx` for `tx`).
pub fn header(buf: &[u8], magic: [u8; 4], max_tx: usize) -> Result<Option<Header>, ProtocolError> {
    let Some(h) = buf.get(..HEADER) else {
        return Ok(None);
    };
    let mut m = [0u8; 4];
    m.copy_from_slice(&h[..4]);
    if m != magic {
        return Err(ProtocolError::BadMagic(m));
    }
    let mut c = [0u8; 12];
    c.copy_from_slice(&h[4..16]);
    let command = Command(c);
    if !command.is_valid() {
        return Err(ProtocolError::BadCommand(c));
    }
    let len = u32::from_le_bytes([h[16], h[17], h[18], h[19]]) as usize;
    let limit = payload_limit(command.name(), max_tx);
    let max = limit.map_or(MAX_PAYLOAD, |l| l.min(MAX_PAYLOAD));
    if len > max {
        return Err(ProtocolError::Oversize { command, len, max });
    }
    Ok(Some(Header {
        command,
        len,
        checksum: [h[20], h[21], h[22], h[23]],
        decoded: limit.is_some(),
    }))
}

/// A network address as `version` carries it (no timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetAddr {
    /// Its services.
    pub services: u64,
    /// IPv6, or IPv4 mapped into IPv6.
    pub ip: [u8; 16],
    /// The port.
    pub port: u16,
}

impl NetAddr {
    /// The address of a socket.
    pub fn of(a: std::net::SocketAddr, services: u64) -> NetAddr {
        let ip = match a.ip() {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(v6) => v6.octets(),
        };
        NetAddr {
            services,
            ip,
            port: a.port(),
        }
    }
}

/// A `version` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The protocol version.
    pub version: i32,
    /// The sender's services.
    pub services: u64,
    /// Seconds since the epoch at the sender.
    pub timestamp: i64,
    /// The receiver's address as the sender sees it.
    pub receiver: NetAddr,
    /// The sender's address.
    pub sender: NetAddr,
    /// A random number, to detect connections to oneself.
    pub nonce: u64,
    /// The sender's software (`/name:version/`).
    pub user_agent: String,
    /// The sender's best block height.
    pub start_height: i32,
    /// Whether the sender wants transactions announced (BIP 37; true when
    /// absent).
    pub relay: bool,
}

/// One inventory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inv {
    /// Its type ([`inv`]).
    pub kind: u32,
    /// The hash, in wire (internal) byte order.
    pub hash: [u8; 32],
}

/// The entries of an `inv`, `getdata` or `notfound`, read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvList<'a>(&'a [u8]);

impl<'a> InvList<'a> {
    /// How many entries.
    pub fn len(&self) -> usize {
        self.0.len() / INV_ENTRY
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = Inv> + 'a {
        self.0.chunks_exact(INV_ENTRY).map(|e| {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&e[4..]);
            Inv {
                kind: u32::from_le_bytes([e[0], e[1], e[2], e[3]]),
                hash,
            }
        })
    }
}

/// A decoded message, borrowing its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// `version`.
    Version(Version),
    /// `verack`.
    Verack,
    /// `wtxidrelay` (BIP 339).
    WtxidRelay,
    /// `sendaddrv2` (BIP 155).
    SendAddrV2,
    /// `sendheaders` (BIP 130).
    SendHeaders,
    /// `sendcmpct` (BIP 152).
    SendCmpct {
        /// High-bandwidth mode.
        announce: bool,
        /// The compact block version.
        version: u64,
    },
    /// `feefilter` (BIP 133): satoshis per 1,000 virtual bytes.
    FeeFilter(i64),
    /// `ping` with its nonce.
    Ping(u64),
    /// `pong` with the ping's nonce.
    Pong(u64),
    /// `inv`.
    Inv(InvList<'a>),
    /// `getdata`.
    GetData(InvList<'a>),
    /// `notfound`.
    NotFound(InvList<'a>),
    /// `tx`: the serialised transaction.
    Tx(&'a [u8]),
}

/// Reads a payload front to back.
struct Reader<'a> {
    buf: &'a [u8],
    command: Command,
}

impl<'a> Reader<'a> {
    fn bad(&self, what: &'static str) -> ProtocolError {
        ProtocolError::Malformed {
            command: self.command,
            what,
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        if self.buf.len() < n {
            return Err(self.bad(what));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ProtocolError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A CompactSize, in its shortest form only.
    fn compact(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        let first = self.array::<1>(what)?[0];
        let (v, min) = match first {
            0xfd => (u64::from(u16::from_le_bytes(self.array(what)?)), 0xfd),
            0xfe => (u64::from(u32::from_le_bytes(self.array(what)?)), 0x1_0000),
            0xff => (self.u64(what)?, 0x1_0000_0000),
            n => (u64::from(n), 0),
        };
        if v < min {
            return Err(self.bad("CompactSize not in its shortest form"));
        }
        Ok(v)
    }

    fn addr(&mut self) -> Result<NetAddr, ProtocolError> {
        let services = self.u64("address truncated")?;
        let ip = self.array("address truncated")?;
        let port = u16::from_be_bytes(self.array("address truncated")?);
        Ok(NetAddr { services, ip, port })
    }

    fn end(&self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.bad("bytes after the payload"))
        }
    }

    fn inventory(&mut self) -> Result<InvList<'a>, ProtocolError> {
        let count = self.compact("inventory count truncated")?;
        if count > MAX_INV as u64 {
            return Err(ProtocolError::TooManyInv {
                command: self.command,
                count,
                max: MAX_INV,
            });
        }
        let list = InvList(self.take(count as usize * INV_ENTRY, "inventory truncated")?);
        self.end()?;
        Ok(list)
    }

    fn version(&mut self) -> Result<Version, ProtocolError> {
        let t = "version truncated";
        let version = i32::from_le_bytes(self.array(t)?);
        let services = self.u64(t)?;
        let timestamp = i64::from_le_bytes(self.array(t)?);
        let receiver = self.addr()?;
        let sender = self.addr()?;
        let nonce = self.u64(t)?;
        let ua_len = self.compact(t)?;
        if ua_len > MAX_USER_AGENT as u64 {
            return Err(self.bad("user agent longer than 256 bytes"));
        }
        let user_agent = String::from_utf8_lossy(self.take(ua_len as usize, t)?).into_owned();
        let start_height = i32::from_le_bytes(self.array(t)?);
        // Absent before BIP 37; later fields (none defined) are ignored,
        // as Bitcoin Core does.
        let relay = match self.buf.first() {
            None => true,
            Some(b) => *b != 0,
        };
        Ok(Version {
            version,
            services,
            timestamp,
            receiver,
            sender,
            nonce,
            user_agent,
            start_height,
            relay,
        })
    }
}

/// Decodes the payload of a command the relay decodes (see
/// [`Header::decoded`]); the checksum was checked by the caller.
pub fn decode(command: Command, payload: &[u8]) -> Result<Message<'_>, ProtocolError> {
    let mut r = Reader {
        buf: payload,
        command,
    };
    let empty = |r: &Reader<'_>, m| r.end().map(|()| m);
    let m = match command.name() {
        b"version" => Message::Version(r.version()?),
        b"verack" => return empty(&r, Message::Verack),
        b"wtxidrelay" => return empty(&r, Message::WtxidRelay),
        b"sendaddrv2" => return empty(&r, Message::SendAddrV2),
        b"sendheaders" => return empty(&r, Message::SendHeaders),
        b"sendcmpct" => {
            let announce = match r.array::<1>("sendcmpct truncated")?[0] {
                0 => false,
                1 => true,
                _ => return Err(r.bad("sendcmpct announce flag not 0 or 1")),
            };
            let version = r.u64("sendcmpct truncated")?;
            Message::SendCmpct { announce, version }
        }
        b"feefilter" => Message::FeeFilter(i64::from_le_bytes(r.array("feefilter truncated")?)),
        b"ping" => Message::Ping(r.u64("ping without its nonce")?),
        b"pong" => Message::Pong(r.u64("pong without its nonce")?),
        b"inv" => return r.inventory().map(Message::Inv),
        b"getdata" => return r.inventory().map(Message::GetData),
        b"notfound" => return r.inventory().map(Message::NotFound),
        b"tx" => return Ok(Message::Tx(payload)),
        _ => return Err(r.bad("not a command the relay decodes")),
    };
    // `version` may carry fields defined after it.
    match (r.end(), &m) {
        (Err(e), m) if !matches!(m, Message::Version(_)) => Err(e),
        _ => Ok(m),
    }
}

/// Appends a CompactSize.
pub fn put_compact(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

fn put_addr(out: &mut Vec<u8>, a: &NetAddr) {
    out.extend_from_slice(&a.services.to_le_bytes());
    out.extend_from_slice(&a.ip);
    out.extend_from_slice(&a.port.to_be_bytes());
}

/// Appends one message, framed for `magic`, to `out`: the header is
/// reserved, the payload written after it, then the header filled in
/// (nothing is allocated beyond `out`'s growth).
pub fn encode(out: &mut Vec<u8>, magic: [u8; 4], m: &Message<'_>) {
    let (command, at): (&str, usize) = (name(m), out.len());
    out.resize(at + HEADER, 0);
    match m {
        Message::Version(v) => {
            out.extend_from_slice(&v.version.to_le_bytes());
            out.extend_from_slice(&v.services.to_le_bytes());
            out.extend_from_slice(&v.timestamp.to_le_bytes());
            put_addr(out, &v.receiver);
            put_addr(out, &v.sender);
            out.extend_from_slice(&v.nonce.to_le_bytes());
            let ua = &v.user_agent.as_bytes()[..v.user_agent.len().min(MAX_USER_AGENT)];
            put_compact(out, ua.len() as u64);
            out.extend_from_slice(ua);
            out.extend_from_slice(&v.start_height.to_le_bytes());
            out.push(u8::from(v.relay));
        }
        Message::Verack | Message::WtxidRelay | Message::SendAddrV2 | Message::SendHeaders => {}
        Message::SendCmpct { announce, version } => {
            out.push(u8::from(*announce));
            out.extend_from_slice(&version.to_le_bytes());
        }
        Message::FeeFilter(rate) => out.extend_from_slice(&rate.to_le_bytes()),
        Message::Ping(n) | Message::Pong(n) => out.extend_from_slice(&n.to_le_bytes()),
        Message::Inv(l) | Message::GetData(l) | Message::NotFound(l) => {
            put_compact(out, l.len() as u64);
            out.extend_from_slice(l.0);
        }
        Message::Tx(payload) => out.extend_from_slice(payload),
    }
    seal(out, at, magic, command);
}

/// Fills in the header reserved at `out[at..at + 24]` for the payload
/// after it.
pub fn seal(out: &mut [u8], at: usize, magic: [u8; 4], command: &str) {
    let len = out.len() - at - HEADER;
    let sum = crate::wire::checksum(&out[at + HEADER..]);
    let h = &mut out[at..at + HEADER];
    h[..4].copy_from_slice(&magic);
    let mut c = [0u8; 12];
    let n = command.len().min(12);
    c[..n].copy_from_slice(&command.as_bytes()[..n]);
    h[4..16].copy_from_slice(&c);
    h[16..20].copy_from_slice(&(len as u32).to_le_bytes());
    h[20..24].copy_from_slice(&sum);
}

/// Appends an inventory message (`inv`, `getdata` or `notfound`) of
/// `entries` (at most [`MAX_INV`]; the caller splits longer lists).
pub fn encode_inv(
    out: &mut Vec<u8>,
    magic: [u8; 4],
    command: &str,
    entries: impl ExactSizeIterator<Item = Inv>,
) {
    let at = out.len();
    out.resize(at + HEADER, 0);
    put_compact(out, entries.len() as u64);
    for e in entries {
        out.extend_from_slice(&e.kind.to_le_bytes());
        out.extend_from_slice(&e.hash);
    }
    seal(out, at, magic, command);
}

/// The command of a message.
pub fn name(m: &Message<'_>) -> &'static str {
    match m {
        Message::Version(_) => "version",
        Message::Verack => "verack",
        Message::WtxidRelay => "wtxidrelay",
        Message::SendAddrV2 => "sendaddrv2",
        Message::SendHeaders => "sendheaders",
        Message::SendCmpct { .. } => "sendcmpct",
        Message::FeeFilter(_) => "feefilter",
        Message::Ping(_) => "ping",
        Message::Pong(_) => "pong",
        Message::Inv(_) => "inv",
        Message::GetData(_) => "getdata",
        Message::NotFound(_) => "notfound",
        Message::Tx(_) => "tx",
    }
}
