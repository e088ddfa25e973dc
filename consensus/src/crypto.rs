//! Hashes, keys and signatures: SHA-256 and ed25519, one of each, no generic layers.

use std::fmt;

use bincode::{Decode, Encode};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::Error;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Encode, Decode)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero hash, used as the parent of the genesis header.
    pub const ZERO: Hash = Hash([0; 32]);

    /// SHA-256 of the concatenation of `parts`.
    pub fn of(parts: &[&[u8]]) -> Hash {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Hash(h.finalize().into())
    }

    /// Lower-case hex with a `0x` prefix.
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }

    /// Parses 64 hex digits, with or without `0x`.
    pub fn from_hex(s: &str) -> Result<Hash, Error> {
        let s = s.strip_prefix("0x").unwrap_or(s);
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| Error::BadHex { what: "hash", expected_bytes: 32 })?;
        Ok(Hash(out))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", &self.to_hex()[..10])
    }
}

/// An ed25519 signature (R || S).
#[derive(Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// Lower-case hex with a `0x` prefix.
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sig({}…)", &self.to_hex()[..10])
    }
}

/// An ed25519 public key; also what an [`crate::Address`] wraps.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Encode, Decode)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pk({}…)", &hex::encode(self.0)[..8])
    }
}

/// An ed25519 signing key. Signing is deterministic (RFC 8032), so the sans-IO engine may sign.
#[derive(Clone)]
pub struct Keypair {
    secret: SigningKey,
}

impl Keypair {
    /// The key pair whose 32-byte secret seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Keypair {
        Keypair { secret: SigningKey::from_bytes(seed) }
    }

    /// The 32-byte secret seed. Handle with care.
    pub fn seed(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.secret.verifying_key().to_bytes())
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.secret.sign(msg).to_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?})", self.public())
    }
}

/// Verifies one signature with the strict rules (canonical S, no small-order key or R), which
/// give every node the same answer for the same bytes.
pub fn verify(key: &PublicKey, msg: &[u8], sig: &Signature) -> Result<(), Error> {
    let vk = VerifyingKey::from_bytes(&key.0).map_err(|_| Error::BadSignature)?;
    let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
    vk.verify_strict(msg, &sig).map_err(|_| Error::BadSignature)
}

/// One item of [`verify_many`].
pub type VerifyItem<'a> = (&'a PublicKey, &'a [u8], &'a Signature);

/// Verifies many signatures on every core, returning the index of the first bad one.
///
/// Why not ed25519 batch verification (one random linear combination): it accepts some
/// signatures with small-order components that single verification rejects, and it draws random
/// coefficients, so a Byzantine proposer could craft a block that some honest nodes accept and
/// others reject. Strict checks in parallel cost about twice the CPU per signature and give every
/// node the same verdict.
pub fn verify_many(items: &[VerifyItem<'_>]) -> Result<(), usize> {
    check_many(items, |(key, msg, sig)| verify(key, msg, sig).is_ok())
}

/// Runs `ok` on every item, on every core for many items, and returns the index of the first
/// item it refuses.
pub fn check_many<T: Sync>(items: &[T], ok: impl Fn(&T) -> bool + Sync) -> Result<(), usize> {
    const SERIAL_BELOW: usize = 16;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let serial = |part: &[T], offset: usize| part.iter().position(|item| !ok(item)).map_or(Ok(()), |i| Err(offset + i));
    if items.len() < SERIAL_BELOW || threads == 1 {
        return serial(items, 0);
    }
    let chunk = items.len().div_ceil(threads);
    let serial = &serial;
    let results: Vec<Result<(), usize>> = std::thread::scope(|s| {
        let handles: Vec<_> =
            items.chunks(chunk).enumerate().map(|(i, part)| s.spawn(move || serial(part, i * chunk))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or(Err(usize::MAX))).collect()
    });
    results.into_iter().collect::<Result<Vec<()>, usize>>().map(|_| ())
}

/// Whether `key` can own an account: a valid ed25519 public key that is not of small order.
/// Funds sent to any other 32 bytes could never be spent, since no one can sign for them.
pub fn is_account_key(key: &PublicKey) -> bool {
    VerifyingKey::from_bytes(&key.0).is_ok_and(|vk| !vk.is_weak())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_many_finds_the_bad_signature_in_a_large_set() {
        let keys: Vec<Keypair> = (0..40u8).map(|i| Keypair::from_seed(&[i; 32])).collect();
        let msgs: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 10]).collect();
        let pks: Vec<PublicKey> = keys.iter().map(Keypair::public).collect();
        let mut sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        let items = |sigs: &[Signature]| -> Result<(), usize> {
            let v: Vec<VerifyItem<'_>> =
                pks.iter().zip(&msgs).zip(sigs).map(|((k, m), s)| (k, m.as_slice(), s)).collect();
            verify_many(&v)
        };
        assert_eq!(items(&sigs), Ok(()));
        sigs[33].0[5] ^= 1;
        assert_eq!(items(&sigs), Err(33));
    }

    #[test]
    fn account_keys_are_valid_points_of_large_order() {
        assert!(is_account_key(&Keypair::from_seed(&[3; 32]).public()));
        // The identity (small order) and a y coordinate with no point on the curve.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(!is_account_key(&PublicKey(identity)));
        let off_curve = (2u8..=255).map(|b| PublicKey([b; 32])).find(|k| VerifyingKey::from_bytes(&k.0).is_err());
        assert!(!is_account_key(&off_curve.expect("some 32-byte string is not a point")));
    }

    #[test]
    fn signature_does_not_verify_under_another_message() {
        let k = Keypair::from_seed(&[7; 32]);
        let sig = k.sign(b"one");
        assert!(verify(&k.public(), b"one", &sig).is_ok());
        assert!(verify(&k.public(), b"two", &sig).is_err());
    }
}
