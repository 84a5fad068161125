//! The P2P message parser: every message the relay writes reads back as
//! itself, and every way a header or payload can be wrong (bad magic,
//! bad command bytes, oversize, truncated, trailing bytes, a CompactSize
//! not in its shortest form, too many inventory entries) is refused with
//! its kind, never a panic.

use sprint_relay::p2p::msg::{
    self, decode, encode, header, Command, Inv, Message, NetAddr, Network, ProtocolError, Version,
};
use sprint_relay::wire::HEADER;

const MAGIC: [u8; 4] = [0xfa, 0xbf, 0xb5, 0xda];

/// A framed message with any command and payload (checksum right).
fn frame(command: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    sprint_relay::wire::encode_into(&mut v, MAGIC, command, payload);
    v
}

fn cmd(name: &str) -> Command {
    let mut c = [0u8; 12];
    c[..name.len()].copy_from_slice(name.as_bytes());
    Command(c)
}

/// Writes `m`, reads it back.
fn round_trip(m: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode(&mut out, MAGIC, m);
    let h = header(&out, MAGIC, 400_000).unwrap().unwrap();
    assert!(h.decoded);
    assert_eq!(h.len, out.len() - HEADER);
    assert_eq!(h.checksum, sprint_relay::wire::checksum(&out[HEADER..]));
    assert_eq!(&decode(h.command, &out[HEADER..]).unwrap(), m);
    out
}

fn version() -> Version {
    Version {
        version: 70_016,
        services: 9,
        timestamp: 1_700_000_000,
        receiver: NetAddr::of("127.0.0.1:8333".parse().unwrap(), 0),
        sender: NetAddr::of("[::1]:18444".parse().unwrap(), 9),
        nonce: 0x0123_4567_89ab_cdef,
        user_agent: "/sprint-relay:0.1.0/".into(),
        start_height: 0,
        relay: false,
    }
}

#[test]
fn every_message_reads_back_as_itself() {
    let entries: Vec<u8> = (0..3u8)
        .flat_map(|i| {
            let mut e = vec![0u8; 36];
            e[0] = 5;
            e[4..].fill(i);
            e
        })
        .collect();
    let mut inv = Vec::new();
    msg::encode_inv(
        &mut inv,
        MAGIC,
        "inv",
        (0..3u8).map(|i| Inv {
            kind: msg::inv::WTX,
            hash: [i; 32],
        }),
    );
    assert_eq!(&inv[HEADER + 1..], &entries[..]);
    let h = header(&inv, MAGIC, 0).unwrap().unwrap();
    let Message::Inv(list) = decode(h.command, &inv[HEADER..]).unwrap() else {
        panic!("not an inv");
    };
    assert_eq!(list.len(), 3);
    assert_eq!(list.iter().nth(2).unwrap().hash, [2; 32]);
    for m in [
        Message::Version(version()),
        Message::Verack,
        Message::WtxidRelay,
        Message::SendAddrV2,
        Message::SendHeaders,
        Message::SendCmpct {
            announce: true,
            version: 2,
        },
        Message::FeeFilter(1_000),
        Message::Ping(7),
        Message::Pong(u64::MAX),
        Message::Tx(&[1, 2, 3]),
    ] {
        round_trip(&m);
    }
}

#[test]
fn the_version_layout_is_the_protocols() {
    let out = round_trip(&Message::Version(version()));
    let p = &out[HEADER..];
    assert_eq!(&out[4..16], b"version\0\0\0\0\0");
    assert_eq!(&p[..4], &70_016i32.to_le_bytes());
    // The receiver's IPv4-mapped address and big-endian port.
    assert_eq!(&p[20 + 8..20 + 8 + 16], &{
        let mut ip = [0u8; 16];
        ip[10] = 0xff;
        ip[11] = 0xff;
        ip[12..].copy_from_slice(&[127, 0, 0, 1]);
        ip
    });
    assert_eq!(&p[20 + 24..20 + 26], &8333u16.to_be_bytes());
    assert_eq!(&p[72..80], &0x0123_4567_89ab_cdefu64.to_le_bytes());
    assert_eq!(p[80] as usize, "/sprint-relay:0.1.0/".len());
    assert_eq!(*p.last().unwrap(), 0, "the relay flag");
    // Without the relay flag (before BIP 37) it means relay; fields
    // after it are ignored.
    let h = header(&out, MAGIC, 0).unwrap().unwrap();
    let Message::Version(v) = decode(h.command, &p[..p.len() - 1]).unwrap() else {
        panic!()
    };
    assert!(v.relay);
    let mut longer = p.to_vec();
    longer.extend_from_slice(&[1, 2, 3]);
    assert!(matches!(
        decode(h.command, &longer),
        Ok(Message::Version(_))
    ));
}

#[test]
fn a_bad_magic_or_command_is_refused_from_the_header_alone() {
    let mut f = frame("ping", &7u64.to_le_bytes());
    assert_eq!(header(&f[..23], MAGIC, 0), Ok(None), "not a header yet");
    let main = Network::Mainnet.magic();
    assert_eq!(header(&f, main, 0), Err(ProtocolError::BadMagic(MAGIC)));
    f[8] = b'\n';
    assert!(matches!(
        header(&f, MAGIC, 0),
        Err(ProtocolError::BadCommand(_))
    ));
    let mut g = frame("ping", &[]);
    g[12] = b'x'; // a byte after the NUL padding began
    assert!(matches!(
        header(&g, MAGIC, 0),
        Err(ProtocolError::BadCommand(_))
    ));
}

#[test]
fn oversize_payloads_are_refused_before_they_arrive() {
    let mut f = frame("addr", &[]);
    f[16..20].copy_from_slice(&((32u32 << 20) + 1).to_le_bytes());
    assert_eq!(
        header(&f, MAGIC, 400_000),
        Err(ProtocolError::Oversize {
            command: cmd("addr"),
            len: (32 << 20) + 1,
            max: 32 << 20
        })
    );
    // 32 MiB exactly is a skipped message's limit.
    f[16..20].copy_from_slice(&(32u32 << 20).to_le_bytes());
    assert!(!header(&f, MAGIC, 400_000).unwrap().unwrap().decoded);
    // Each decoded command has its own bound: a tx above the relay's, a
    // ping above 8 bytes, an inv above 50,000 entries' worth.
    let mut t = frame("tx", &[]);
    t[16..20].copy_from_slice(&400_001u32.to_le_bytes());
    assert!(matches!(
        header(&t, MAGIC, 400_000),
        Err(ProtocolError::Oversize { max: 400_000, .. })
    ));
    assert!(matches!(
        header(&frame("ping", &[0; 9]), MAGIC, 0),
        Err(ProtocolError::Oversize { max: 8, .. })
    ));
    let mut i = frame("inv", &[]);
    i[16..20].copy_from_slice(&((9 + 50_000 * 36 + 1) as u32).to_le_bytes());
    assert!(matches!(
        header(&i, MAGIC, 0),
        Err(ProtocolError::Oversize { .. })
    ));
}

#[test]
fn truncated_or_padded_payloads_are_malformed() {
    let malformed = |c: &str, p: &[u8]| match decode(cmd(c), p) {
        Err(ProtocolError::Malformed { command, what }) => {
            assert_eq!(command, cmd(c));
            assert!(!what.is_empty());
        }
        other => panic!("{c} {p:?}: {other:?}"),
    };
    malformed("ping", &[1, 2, 3]);
    malformed("pong", &[]);
    malformed("verack", &[0]);
    malformed("feefilter", &[0; 4]);
    malformed("sendcmpct", &[2, 0, 0, 0, 0, 0, 0, 0, 0]);
    // Two entries announced, one there; or one and a byte more.
    let mut inv = vec![2u8];
    inv.extend_from_slice(&[0; 36]);
    malformed("inv", &inv);
    inv[0] = 1;
    inv.push(0);
    malformed("getdata", &inv);
    // A count of 1 written in three bytes is not its shortest form.
    let mut long = vec![0xfd, 1, 0];
    long.extend_from_slice(&[0; 36]);
    malformed("notfound", &long);
    // Every prefix of a version short of its start height.
    let mut out = Vec::new();
    encode(&mut out, MAGIC, &Message::Version(version()));
    let p = &out[HEADER..];
    for cut in 0..p.len() - 1 {
        malformed("version", &p[..cut]);
    }
    // A user agent longer than 256 bytes.
    let mut v = version();
    v.user_agent = "x".repeat(300);
    let mut out = Vec::new();
    encode(&mut out, MAGIC, &Message::Version(v));
    let mut p = out[HEADER..].to_vec();
    // The writer cut it at 256 (0xfd 0x00 0x01); claim 257.
    assert_eq!(&p[80..83], &[0xfd, 0, 1]);
    p[81] = 1;
    p.push(b'x');
    malformed("version", &p);
}

#[test]
fn more_than_50000_inventory_entries_are_refused() {
    let mut p = vec![0xfd];
    p.extend_from_slice(&50_001u16.to_le_bytes());
    assert_eq!(
        decode(cmd("inv"), &p),
        Err(ProtocolError::TooManyInv {
            command: cmd("inv"),
            count: 50_001,
            max: 50_000
        })
    );
    // A count near u64::MAX does not overflow on its way to the check.
    let mut huge = vec![0xff];
    huge.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        decode(cmd("getdata"), &huge),
        Err(ProtocolError::TooManyInv { .. })
    ));
}

#[test]
fn networks_go_by_name() {
    for (name, magic) in [
        ("mainnet", [0xf9, 0xbe, 0xb4, 0xd9]),
        ("testnet", [0x0b, 0x11, 0x09, 0x07]),
        ("testnet4", [0x1c, 0x16, 0x3f, 0x28]),
        ("signet", [0x0a, 0x03, 0xcf, 0x40]),
        ("regtest", [0xfa, 0xbf, 0xb5, 0xda]),
    ] {
        let n: Network = name.parse().unwrap();
        assert_eq!((n.magic(), n.name()), (magic, name));
    }
    let e = "testnet5".parse::<Network>().unwrap_err();
    assert!(e.to_string().contains("testnet5"));
}
