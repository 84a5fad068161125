//! The Bitcoin networks by name, and the magic that starts every message
//! on each: the relay's `--network` (publishers' frames and peers'
//! messages alike carry it).

/// The networks by name and their magics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Bitcoin's main network.
    Mainnet,
    /// testnet3.
    Testnet,
    /// testnet4 (BIP 94).
    Testnet4,
    /// The default signet.
    Signet,
    /// Regression test.
    Regtest,
}

impl Network {
    /// Every network, for listing.
    pub const ALL: [Network; 5] = [
        Network::Mainnet,
        Network::Testnet,
        Network::Testnet4,
        Network::Signet,
        Network::Regtest,
    ];

    /// The magic its messages start with.
    pub fn magic(self) -> [u8; 4] {
        match self {
            Network::Mainnet => [0xf9, 0xbe, 0xb4, 0xd9],
            Network::Testnet => [0x0b, 0x11, 0x09, 0x07],
            Network::Testnet4 => [0x1c, 0x16, 0x3f, 0x28],
            Network::Signet => [0x0a, 0x03, 0xcf, 0x40],
            Network::Regtest => [0xfa, 0xbf, 0xb5, 0xda],
        }
    }

    /// Its name, as [`std::str::FromStr`] takes it.
    pub fn name(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
            Network::Testnet4 => "testnet4",
            Network::Signet => "signet",
            Network::Regtest => "regtest",
        }
    }
}

/// A network name that is none of [`Network::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("network must be mainnet, testnet, testnet4, signet or regtest, not {0:?}")]
pub struct ParseNetworkError(pub String);

impl std::str::FromStr for Network {
    type Err = ParseNetworkError;
    fn from_str(s: &str) -> Result<Network, ParseNetworkError> {
        Network::ALL
            .into_iter()
            .find(|n| n.name() == s || (s == "main" && *n == Network::Mainnet))
            .ok_or_else(|| ParseNetworkError(s.to_string()))
    }
}
