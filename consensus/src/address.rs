//! Addresses: an ed25519 public key shown as bech32m (BIP-350) with the network's prefix, so a
//! typo is caught by the checksum and an address of another network is refused by its prefix.

use std::fmt;

use bech32::{Bech32m, Hrp};
use bincode::{Decode, Encode};

use crate::crypto::PublicKey;
use crate::Error;

/// An account or validator address: the owner's ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Encode, Decode)]
pub struct Address(pub PublicKey);

impl Address {
    /// The address of a public key.
    pub fn from_public_key(key: PublicKey) -> Address {
        Address(key)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0 .0
    }

    /// The bech32m form with human-readable prefix `hrp` (for example `tks1…`).
    pub fn to_bech32(&self, hrp: &str) -> String {
        match Hrp::parse(hrp) {
            Ok(hrp) => bech32::encode::<Bech32m>(hrp, self.as_bytes())
                .unwrap_or_else(|_| format!("0x{}", hex::encode(self.as_bytes()))),
            Err(_) => format!("0x{}", hex::encode(self.as_bytes())),
        }
    }

    /// Parses a bech32m address and checks that its prefix is `hrp`.
    pub fn parse(s: &str, hrp: &str) -> Result<Address, Error> {
        let bad = |why: &str| Error::BadAddress { input: truncate(s), why: why.to_owned() };
        let (got_hrp, data) = bech32::decode(s).map_err(|e| bad(&format!("not bech32m: {e}")))?;
        // All-uppercase is the same address (BIP-350; QR codes use it); mixed case does not decode.
        let got = got_hrp.as_str().to_ascii_lowercase();
        if got != hrp {
            return Err(bad(&format!("prefix is `{got}`, this network uses `{hrp}`")));
        }
        // bech32::decode accepts both checksums; only bech32m is ours.
        let canonical = bech32::encode::<Bech32m>(got_hrp, &data).map_err(|e| bad(&e.to_string()))?;
        if canonical != s.to_ascii_lowercase() {
            return Err(bad("checksum is bech32, not bech32m"));
        }
        let bytes: [u8; 32] = data.try_into().map_err(|_| bad("payload is not a 32-byte public key"))?;
        Ok(Address(PublicKey(bytes)))
    }

    /// Checks that a human-readable prefix is one bech32 accepts.
    pub fn check_hrp(hrp: &str) -> Result<(), Error> {
        Hrp::parse(hrp).map(|_| ()).map_err(|e| Error::BadGenesis(format!("address_hrp `{hrp}`: {e}")))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(100).collect()
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Addr({}…)", &hex::encode(self.as_bytes())[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_all_uppercase_address_is_the_same_address_and_mixed_case_is_refused() {
        let a = Address(PublicKey([9; 32]));
        let s = a.to_bech32("tks");
        assert_eq!(Address::parse(&s.to_ascii_uppercase(), "tks").ok(), Some(a));
        let mut mixed = s.clone();
        mixed.replace_range(0..1, "T");
        assert!(Address::parse(&mixed, "tks").is_err());
    }

    #[test]
    fn bech32m_roundtrip_and_wrong_prefix_is_refused() {
        let a = Address(PublicKey([9; 32]));
        let s = a.to_bech32("tks");
        assert!(s.starts_with("tks1"));
        assert_eq!(Address::parse(&s, "tks").ok(), Some(a));
        assert!(Address::parse(&s, "tdev").is_err());
    }

    #[test]
    fn one_changed_character_fails_the_checksum() {
        let s = Address(PublicKey([3; 32])).to_bech32("tks");
        let mut chars: Vec<char> = s.chars().collect();
        let i = chars.len() - 3;
        chars[i] = if chars[i] == 'q' { 'p' } else { 'q' };
        let typo: String = chars.into_iter().collect();
        assert!(Address::parse(&typo, "tks").is_err());
    }

    #[test]
    fn bech32_not_m_checksum_is_refused() {
        let hrp = Hrp::parse("tks").expect("valid hrp");
        let old = bech32::encode::<bech32::Bech32>(hrp, &[3; 32]).expect("encodes");
        assert!(Address::parse(&old, "tks").is_err());
    }
}
