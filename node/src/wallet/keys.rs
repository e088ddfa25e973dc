//! Keys from a BIP39 mnemonic: the BIP39 seed (empty passphrase), then SLIP-0010 ed25519
//! derivation along hardened steps only, then the ed25519 key whose 32-byte seed is the
//! derived private key.
//!
//! Paths: wallet account `i` is `m/44'/7331'/i'/0'`, validator key `i` is `m/44'/7331'/i'/1'`
//! (7331 is Taksa's coin type). Any SLIP-0010 library (for example Python's `bip-utils`)
//! derives the same keys from the same words, as Solana wallets do at `m/44'/501'/…`.

use std::fmt;
use std::str::FromStr;

use bip39::{Language, Mnemonic};
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha512;
use taksa_consensus::Keypair;
use zeroize::Zeroizing;

/// Taksa's BIP44 coin type.
pub(crate) const COIN_TYPE: u32 = 7331;
/// Words in a newly generated mnemonic.
pub(crate) const NEW_MNEMONIC_WORDS: usize = 24;
/// Entropy of a newly generated mnemonic: 32 bits per 3 words.
const NEW_MNEMONIC_ENTROPY_BYTES: usize = NEW_MNEMONIC_WORDS / 3 * 4;
/// The bit that marks a hardened step.
const HARDENED: u32 = 1 << 31;
/// The SLIP-0010 HMAC key of the ed25519 curve.
const SLIP10_ED25519_KEY: &[u8] = b"ed25519 seed";
/// PBKDF2 rounds of a BIP39 seed.
const BIP39_PBKDF2_ROUNDS: u32 = 2048;
/// The longest mnemonic text accepted, in bytes (24 words of at most 8 letters, with slack).
const MNEMONIC_TEXT_BYTES_MAX: usize = 1024;
/// The most steps a derivation path may have.
const PATH_STEPS_MAX: usize = 16;

/// Why a mnemonic or a derivation path is refused. Never carries the words themselves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyError {
    /// The mnemonic does not have 12, 15, 18, 21 or 24 words.
    #[error("a mnemonic has 12, 15, 18, 21 or 24 words; this one has {0}")]
    WordCount(usize),
    /// The words are not a valid English BIP39 mnemonic.
    #[error("not a valid English BIP39 mnemonic: {0}")]
    BadMnemonic(String),
    /// The derivation path cannot be used.
    #[error("derivation path `{path}`: {why}")]
    BadPath {
        /// The path as given (truncated).
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// A SLIP-0010 ed25519 path: every step hardened. Shown as `m/44'/7331'/0'/0'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DerivationPath {
    /// The steps without the hardened bit; each is below 2^31.
    steps: Vec<u32>,
}

impl DerivationPath {
    /// The path of wallet account `index`: `m/44'/7331'/index'/0'`. Hardened steps are only
    /// defined below 2^31, so `index` is taken modulo 2^31 (the CLI accepts at most 65535).
    pub(crate) fn account(index: u32) -> DerivationPath {
        DerivationPath { steps: vec![44, COIN_TYPE, index & !HARDENED, 0] }
    }

    /// The path of validator key `index`: `m/44'/7331'/index'/1'` (`index` modulo 2^31).
    pub(crate) fn validator(index: u32) -> DerivationPath {
        DerivationPath { steps: vec![44, COIN_TYPE, index & !HARDENED, 1] }
    }

    /// The steps, without the hardened bit.
    pub(crate) fn steps(&self) -> &[u32] {
        &self.steps
    }
}

impl FromStr for DerivationPath {
    type Err = KeyError;

    /// Parses `m/44'/7331'/0'/0'`; `H` or `h` may stand for `'`. Every step must be hardened,
    /// because SLIP-0010 defines no other step for ed25519.
    fn from_str(s: &str) -> Result<DerivationPath, KeyError> {
        let bad = |why| KeyError::BadPath { path: s.chars().take(100).collect(), why };
        let mut parts = s.split('/');
        if parts.next() != Some("m") {
            return Err(bad("must start with `m`"));
        }
        let mut steps = Vec::new();
        for part in parts {
            let digits = part
                .strip_suffix('\'')
                .or_else(|| part.strip_suffix('H'))
                .or_else(|| part.strip_suffix('h'))
                .ok_or_else(|| bad("every step must be hardened (end with ')"))?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("a step is not a number"));
            }
            let index: u32 = digits.parse().map_err(|_| bad("a step is 2^31 or more"))?;
            if index >= HARDENED {
                return Err(bad("a step is 2^31 or more"));
            }
            steps.push(index);
            if steps.len() > PATH_STEPS_MAX {
                return Err(bad("too many steps"));
            }
        }
        Ok(DerivationPath { steps })
    }
}

impl fmt::Display for DerivationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("m")?;
        for step in &self.steps {
            write!(f, "/{step}'")?;
        }
        Ok(())
    }
}

/// A new random 24-word English mnemonic from the operating system's RNG.
pub(crate) fn generate_mnemonic() -> Mnemonic {
    let mut entropy = Zeroizing::new([0u8; NEW_MNEMONIC_ENTROPY_BYTES]);
    OsRng.fill_bytes(entropy.as_mut());
    match Mnemonic::from_entropy_in(Language::English, entropy.as_ref()) {
        Ok(m) => m,
        // 32 bytes is one of the five entropy sizes BIP39 defines.
        Err(_) => unreachable!("32 bytes of entropy always make a mnemonic"),
    }
}

/// Parses a mnemonic typed or pasted by a person: any whitespace between words, any letter
/// case; the words and checksum must be valid English BIP39.
pub(crate) fn parse_mnemonic(text: &str) -> Result<Mnemonic, KeyError> {
    if text.len() > MNEMONIC_TEXT_BYTES_MAX {
        return Err(KeyError::BadMnemonic(format!("longer than {MNEMONIC_TEXT_BYTES_MAX} bytes")));
    }
    let normalized = Zeroizing::new(text.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" "));
    let words = normalized.split(' ').filter(|w| !w.is_empty()).count();
    if ![12, 15, 18, 21, 24].contains(&words) {
        return Err(KeyError::WordCount(words));
    }
    // bip39's error messages name word positions, never the words.
    Mnemonic::parse_in_normalized(Language::English, &normalized).map_err(|e| KeyError::BadMnemonic(e.to_string()))
}

/// The key at `path` under a mnemonic (BIP39 seed with the empty passphrase).
pub(crate) fn derive_keypair(mnemonic: &Mnemonic, path: &DerivationPath) -> Keypair {
    let seed = Zeroizing::new(mnemonic.to_seed_normalized(""));
    keypair_from_bip39_seed(seed.as_ref(), path)
}

/// The key at `path` under a BIP39 seed.
pub(crate) fn keypair_from_bip39_seed(seed: &[u8], path: &DerivationPath) -> Keypair {
    let node = slip10_derive(seed, path);
    Keypair::from_seed(&node.private_key)
}

/// The BIP39 seed of a phrase without checking its words or checksum:
/// PBKDF2-HMAC-SHA512(phrase, "mnemonic" || passphrase, 2048 rounds, 64 bytes).
///
/// For the published test phrases that are constants in the code (whose validity a test
/// asserts), so that deriving their keys cannot fail. The phrase must already be normalized
/// (lower case, single spaces, ASCII).
pub(crate) fn bip39_seed_unchecked(phrase: &str, passphrase: &str) -> Zeroizing<[u8; 64]> {
    let salt = Zeroizing::new(format!("mnemonic{passphrase}"));
    // PBKDF2 with a 64-byte output is one block: T1 = U1 ^ U2 ^ … ^ U2048.
    let mut u = hmac_sha512(phrase.as_bytes(), &[salt.as_bytes(), &1u32.to_be_bytes()]);
    let mut out = Zeroizing::new(*u);
    for _ in 1..BIP39_PBKDF2_ROUNDS {
        u = hmac_sha512(phrase.as_bytes(), &[u.as_ref()]);
        for (o, b) in out.iter_mut().zip(u.iter()) {
            *o ^= b;
        }
    }
    out
}

/// A SLIP-0010 node: a private key and its chain code.
pub(crate) struct Slip10Node {
    /// The ed25519 private key (the 32-byte seed of the key pair).
    pub(crate) private_key: Zeroizing<[u8; 32]>,
    /// The chain code.
    pub(crate) chain_code: Zeroizing<[u8; 32]>,
}

/// SLIP-0010 ed25519 derivation of `path` from a seed: the master node is
/// HMAC-SHA512("ed25519 seed", seed); each hardened child is
/// HMAC-SHA512(chain code, 0x00 || key || ser32(index + 2^31)); left half key, right half chain code.
pub(crate) fn slip10_derive(seed: &[u8], path: &DerivationPath) -> Slip10Node {
    let mut node = split(&hmac_sha512(SLIP10_ED25519_KEY, &[seed]));
    for step in path.steps() {
        let child = (step | HARDENED).to_be_bytes();
        let i = hmac_sha512(node.chain_code.as_ref(), &[&[0u8], node.private_key.as_ref(), &child]);
        node = split(&i);
    }
    node
}

fn split(i: &[u8; 64]) -> Slip10Node {
    let mut private_key = Zeroizing::new([0u8; 32]);
    let mut chain_code = Zeroizing::new([0u8; 32]);
    let (left, right) = i.split_at(32);
    private_key.copy_from_slice(left);
    chain_code.copy_from_slice(right);
    Slip10Node { private_key, chain_code }
}

fn hmac_sha512(key: &[u8], parts: &[&[u8]]) -> Zeroizing<[u8; 64]> {
    // HMAC takes keys of every length (longer ones are hashed first, RFC 2104 section 2), so
    // `new_from_slice` has no error to return for HMAC-SHA512.
    let Ok(mut mac) = Hmac::<Sha512>::new_from_slice(key) else {
        unreachable!("HMAC-SHA512 accepts keys of any length")
    };
    for p in parts {
        mac.update(p);
    }
    Zeroizing::new(mac.finalize().into_bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> DerivationPath {
        s.parse().expect("valid path")
    }

    /// SLIP-0010 "Test vector 1 for ed25519", seed 000102030405060708090a0b0c0d0e0f:
    /// (path, chain code, private key, public key without the spec's 00 prefix).
    const SLIP10_VECTOR_1: &[(&str, &str, &str, &str)] = &[
        (
            "m",
            "90046a93de5380a72b5e45010748567d5ea02bbf6522f979e05c0d8d8ca9fffb",
            "2b4be7f19ee27bbf30c667b642d5f4aa69fd169872f8fc3059c08ebae2eb19e7",
            "a4b2856bfec510abab89753fac1ac0e1112364e7d250545963f135f2a33188ed",
        ),
        (
            "m/0H",
            "8b59aa11380b624e81507a27fedda59fea6d0b779a778918a2fd3590e16e9c69",
            "68e0fe46dfb67e368c75379acec591dad19df3cde26e63b93a8e704f1dade7a3",
            "8c8a13df77a28f3445213a0f432fde644acaa215fc72dcdf300d5efaa85d350c",
        ),
        (
            "m/0H/1H",
            "a320425f77d1b5c2505a6b1b27382b37368ee640e3557c315416801243552f14",
            "b1d0bad404bf35da785a64ca1ac54b2617211d2777696fbffaf208f746ae84f2",
            "1932a5270f335bed617d5b935c80aedb1a35bd9fc1e31acafd5372c30f5c1187",
        ),
        (
            "m/0H/1H/2H",
            "2e69929e00b5ab250f49c3fb1c12f252de4fed2c1db88387094a0f8c4c9ccd6c",
            "92a5b23c0b8a99e37d07df3fb9966917f5d06e02ddbd909c7e184371463e9fc9",
            "ae98736566d30ed0e9d2f4486a64bc95740d89c7db33f52121f8ea8f76ff0fc1",
        ),
        (
            "m/0H/1H/2H/2H",
            "8f6d87f93d750e0efccda017d662a1b31a266e4a6f5993b15f5c1f07f74dd5cc",
            "30d1dc7e5fc04c31219ab25a27ae00b50f6fd66622f6e9c913253d6511d1e662",
            "8abae2d66361c879b900d204ad2cc4984fa2aa344dd7ddc46007329ac76c429c",
        ),
        (
            "m/0H/1H/2H/2H/1000000000H",
            "68789923a0cac2cd5a29172a475fe9e0fb14cd6adb5ad98a3fa70333e7afa230",
            "8f94d394a8e8fd6b1bc2f3f49f5c47e385281d5c17e65324b0f62483e37e8793",
            "3c24da049451555d51a7014a37337aa4e12d41e485abccfa46b47dfb2af54b7a",
        ),
    ];

    #[test]
    fn slip10_ed25519_test_vector_1_is_reproduced() {
        let seed = hex::decode("000102030405060708090a0b0c0d0e0f").expect("hex");
        for (p, chain_code, private_key, public_key) in SLIP10_VECTOR_1 {
            let node = slip10_derive(&seed, &path(p));
            assert_eq!(hex::encode(node.chain_code.as_ref()), *chain_code, "chain code at {p}");
            assert_eq!(hex::encode(node.private_key.as_ref()), *private_key, "private key at {p}");
            let kp = keypair_from_bip39_seed(&seed, &path(p));
            assert_eq!(hex::encode(kp.public().0), *public_key, "public key at {p}");
        }
    }

    #[test]
    fn bip39_seed_matches_the_trezor_reference_vector() {
        // BIP39 reference vector (trezor/python-mnemonic vectors.json), passphrase "TREZOR".
        let phrase = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
        let expected = "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04";
        let m = parse_mnemonic(phrase).expect("valid");
        assert_eq!(hex::encode(m.to_seed_normalized("TREZOR")), expected);
        assert_eq!(hex::encode(bip39_seed_unchecked(phrase, "TREZOR").as_ref()), expected);
    }

    #[test]
    fn unchecked_seed_equals_the_checked_seed_for_a_fresh_mnemonic() {
        let m = generate_mnemonic();
        let phrase = m.to_string();
        assert_eq!(bip39_seed_unchecked(&phrase, "").as_ref(), &m.to_seed_normalized(""));
    }

    #[test]
    fn generated_mnemonics_have_24_words_and_differ() {
        let a = generate_mnemonic();
        let b = generate_mnemonic();
        assert_eq!(a.word_count(), NEW_MNEMONIC_WORDS);
        assert_ne!(a.to_string(), b.to_string());
        assert!(parse_mnemonic(&a.to_string()).is_ok());
    }

    #[test]
    fn mnemonic_input_tolerates_case_and_spacing_but_not_bad_words() {
        let ok = "  Abandon abandon\tabandon abandon abandon abandon\nabandon abandon abandon abandon abandon ABOUT ";
        assert!(parse_mnemonic(ok).is_ok());
        let bad_checksum =
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon";
        assert!(matches!(parse_mnemonic(bad_checksum), Err(KeyError::BadMnemonic(_))));
        let unknown = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon taksa";
        assert!(matches!(parse_mnemonic(unknown), Err(KeyError::BadMnemonic(_))));
        assert_eq!(parse_mnemonic("abandon about").err(), Some(KeyError::WordCount(2)));
    }

    #[test]
    fn paths_print_and_parse_back() {
        assert_eq!(DerivationPath::account(3).to_string(), "m/44'/7331'/3'/0'");
        assert_eq!(DerivationPath::validator(0).to_string(), "m/44'/7331'/0'/1'");
        assert_eq!(path("m/44H/7331h/3'/0'"), DerivationPath::account(3));
        for bad in ["", "44'/0'", "m/44", "m/44'/x'", "m/2147483648'", "m/'", "m//0'"] {
            assert!(bad.parse::<DerivationPath>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn accounts_and_validator_keys_of_one_mnemonic_are_distinct() {
        let m = parse_mnemonic("test test test test test test test test test test test junk").expect("valid");
        let a0 = derive_keypair(&m, &DerivationPath::account(0)).public();
        let a1 = derive_keypair(&m, &DerivationPath::account(1)).public();
        let v0 = derive_keypair(&m, &DerivationPath::validator(0)).public();
        assert_ne!(a0, a1);
        assert_ne!(a0, v0);
        assert_eq!(derive_keypair(&m, &DerivationPath::account(0)).public(), a0);
    }

    fn base58(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        let mut digits: Vec<u8> = Vec::new();
        for &byte in bytes {
            let mut carry = u32::from(byte);
            for d in digits.iter_mut() {
                carry += u32::from(*d) << 8;
                *d = (carry % 58) as u8;
                carry /= 58;
            }
            while carry > 0 {
                digits.push((carry % 58) as u8);
                carry /= 58;
            }
        }
        let zeros = bytes.iter().take_while(|b| **b == 0).count();
        let mut out: String = std::iter::repeat_n('1', zeros).collect();
        out.extend(digits.iter().rev().map(|d| char::from(ALPHABET[usize::from(*d)])));
        out
    }

    #[test]
    fn derivation_matches_solana_wallets_for_the_published_test_mnemonic() {
        // Solana wallets (Phantom, solana-keygen with its BIP44 path) derive the same SLIP-0010
        // chain at m/44'/501'/0'/0'; "abandon … about" gives this widely published address.
        let m = parse_mnemonic(
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
        )
        .expect("valid");
        let key = derive_keypair(&m, &path("m/44'/501'/0'/0'"));
        assert_eq!(base58(&key.public().0), "HAgk14JpMQLgt6rVgv7cBQFJWFto5Dqxi472uT3DKpqk");
    }
}
