//! Hashes, keys and signatures: SHA-256 and ed25519, one of each, no generic layers.

use std::fmt;

use bincode::{Decode, Encode};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use rand_chacha::rand_core::SeedableRng as _;
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

/// Verifies one signature by the rules of [ZIP-215]: `S` canonical, `A` and `R` any encodings of
/// curve points, and the cofactored equation `[8][S]B = [8]R + [8][k]A`. Batch verification
/// ([`verify_many`]) accepts exactly the same signatures, so a block's verdict is the same on every
/// node however it checks it. Every RFC 8032 signer's signatures verify.
///
/// A key of small order could be "signed" for by anyone under these rules; no such key can hold
/// funds or vote, because recipients ([`is_account_key`]), genesis allocations and validators
/// must be keys of large order.
///
/// [ZIP-215]: https://zips.z.cash/zip-0215
pub fn verify(key: &PublicKey, msg: &[u8], sig: &Signature) -> Result<(), Error> {
    let vk = ed25519_zebra::VerificationKey::try_from(key.0).map_err(|_| Error::BadSignature)?;
    vk.verify(&ed25519_zebra::Signature::from_bytes(&sig.0), msg).map_err(|_| Error::BadSignature)
}

/// One item of [`verify_many`].
pub type VerifyItem<'a> = (&'a PublicKey, &'a [u8], &'a Signature);

/// Verifies many signatures, in ed25519 batches on every core, and returns the index of the first
/// bad one. The verdict is [`verify`]'s on each item: under ZIP-215 a batch of valid signatures
/// always verifies, and a batch that does not is searched item by item.
///
/// A batch weighs each signature with a random 128-bit coefficient; here the coefficients come
/// from a hash of every key, signature and message in the batch (Fiat–Shamir, as deterministic
/// batch verifiers do), so no one who chooses the inputs knows them in advance. The verdicts are
/// deterministic, which is what the simulation needs; the internal arithmetic is not quite
/// (`ed25519-zebra` groups the batch by key in a `HashMap` with a random hasher seed, which
/// changes which coefficient meets which signature, never whether a valid batch verifies).
pub fn verify_many(items: &[VerifyItem<'_>]) -> Result<(), usize> {
    let per_thread = per_thread(items.len());
    if items.len() <= per_thread {
        return verify_batch(items, 0);
    }
    let results: Vec<Result<(), usize>> = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(per_thread)
            .enumerate()
            .map(|(i, part)| s.spawn(move || verify_batch(part, i * per_thread)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(Err(usize::MAX))).collect()
    });
    results.into_iter().collect::<Result<Vec<()>, usize>>().map(|_| ())
}

/// How many of `n` signatures each thread takes: all cores (up to 8), but never fewer than
/// [`BATCH_PER_THREAD_MIN`] each.
fn per_thread(n: usize) -> usize {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    n.div_ceil(threads).max(BATCH_PER_THREAD_MIN)
}

/// Below this many signatures per thread, one thread verifies them all: starting a thread costs
/// more than the few verifications it would take over.
const BATCH_PER_THREAD_MIN: usize = 32;

/// One batch on this thread; `offset` is the index of `part[0]` in the caller's list.
fn verify_batch(part: &[VerifyItem<'_>], offset: usize) -> Result<(), usize> {
    if part.len() < 2 || !batch_ok(part) {
        return part.iter().position(|(k, m, s)| verify(k, m, s).is_err()).map_or(Ok(()), |i| Err(offset + i));
    }
    Ok(())
}

/// Whether every signature of `part` verifies, as one batch.
fn batch_ok(part: &[VerifyItem<'_>]) -> bool {
    let mut batch = ed25519_zebra::batch::Verifier::new();
    let mut transcript = Sha256::new();
    transcript.update(b"taksa/ed25519-batch/v1");
    for (key, msg, sig) in part {
        let sig_z = ed25519_zebra::Signature::from_bytes(&sig.0);
        batch.queue((ed25519_zebra::VerificationKeyBytes::from(key.0), sig_z, msg));
        transcript.update(key.0);
        transcript.update(sig.0);
        transcript.update(Sha256::digest(msg));
    }
    let rng = rand_chacha::ChaCha20Rng::from_seed(transcript.finalize().into());
    batch.verify(rng).is_ok()
}

/// [`verify`] on every item, in batches on every core: a batch that fails is split in halves
/// until the bad signatures are found, so a few bad ones among many cost a few more batches, not
/// one verification each. For callers that need each item's verdict (admitting a batch of
/// transactions from many senders).
pub fn verify_each(items: &[VerifyItem<'_>]) -> Vec<bool> {
    let mut out = vec![true; items.len()];
    let per_thread = per_thread(items.len());
    if items.len() <= per_thread {
        bisect(items, &mut out);
        return out;
    }
    std::thread::scope(|s| {
        for (part, verdicts) in items.chunks(per_thread).zip(out.chunks_mut(per_thread)) {
            s.spawn(move || bisect(part, verdicts));
        }
    });
    out
}

/// How many failed batches one thread's part may cost before the rest of it is verified one by
/// one: a few bad signatures are found in a few batches, while a part made of bad signatures (an
/// attacker's batch) costs at most this many batches more than verifying it singly.
const FAILED_BATCHES_MAX: usize = 4;

/// Marks in `out` the items of `part` that do not verify (`out` starts all true).
fn bisect(part: &[VerifyItem<'_>], out: &mut [bool]) {
    let mut budget = FAILED_BATCHES_MAX;
    bisect_within(part, out, &mut budget);
}

fn bisect_within(part: &[VerifyItem<'_>], out: &mut [bool], budget: &mut usize) {
    const SINGLE_BELOW: usize = 4;
    if part.len() < SINGLE_BELOW || *budget == 0 {
        for ((k, m, s), ok) in part.iter().zip(out.iter_mut()) {
            *ok = verify(k, m, s).is_ok();
        }
        return;
    }
    if batch_ok(part) {
        return;
    }
    *budget -= 1;
    let half = part.len() / 2;
    let (left, right) = part.split_at(half);
    let (out_left, out_right) = out.split_at_mut(half);
    bisect_within(left, out_left, budget);
    bisect_within(right, out_right, budget);
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

/// Whether `key` can own an account: the canonical encoding of an ed25519 point in the
/// prime-order subgroup (no small-order or mixed-order component). Funds sent to any other 32
/// bytes could never be spent, or (under ZIP-215's cofactored check) could be spent by the holder
/// of another key: A and A + T, for T of small order, accept the same signatures.
pub fn is_account_key(key: &PublicKey) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(&key.0) else { return false };
    let point = vk.to_edwards();
    !vk.is_weak() && point.is_torsion_free() && point.compress().to_bytes() == key.0
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

    /// The identity point's encoding: a key (and an `R`) of small order.
    fn identity() -> [u8; 32] {
        let mut p = [0u8; 32];
        p[0] = 1;
        p
    }

    #[test]
    fn zip215_accepts_a_small_order_signature_the_strict_rules_refused() {
        // Key = identity, R = identity, S = 0: [8][0]B = [8]R + [8][k]A holds for every message.
        let key = PublicKey(identity());
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&identity());
        let sig = Signature(sig);
        assert!(verify(&key, b"any message", &sig).is_ok(), "ZIP-215 accepts it");
        let strict = VerifyingKey::from_bytes(&key.0).expect("the identity decodes");
        assert!(strict.verify_strict(b"any message", &ed25519_dalek::Signature::from_bytes(&sig.0)).is_err());
        // Batches agree with single verification, and no such key can own an account.
        let good = Keypair::from_seed(&[1; 32]);
        let good_sig = good.sign(b"m");
        let good_key = good.public();
        let items = vec![(&key, b"x".as_slice(), &sig); 40]
            .into_iter()
            .chain(std::iter::once((&good_key, b"m".as_slice(), &good_sig)))
            .collect::<Vec<_>>();
        assert_eq!(verify_many(&items), Ok(()));
        assert!(!is_account_key(&key));
    }

    #[test]
    fn zip215_refuses_a_non_canonical_s() {
        let k = Keypair::from_seed(&[5; 32]);
        let mut sig = k.sign(b"m");
        assert!(verify(&k.public(), b"m", &sig).is_ok());
        // S + l encodes the same scalar non-canonically: refused by both rules.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (i, l) in L.iter().enumerate() {
            let sum = u16::from(sig.0[32 + i]) + u16::from(*l) + carry;
            sig.0[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert!(verify(&k.public(), b"m", &sig).is_err());
        assert_eq!(verify_many(&[(&k.public(), b"m".as_slice(), &sig), (&k.public(), b"m".as_slice(), &sig)]), Err(0));
    }

    #[test]
    fn batches_report_the_first_bad_signature_on_every_thread() {
        let keys: Vec<Keypair> = (0..300u32).map(|i| Keypair::from_seed(&Hash::of(&[&i.to_le_bytes()]).0)).collect();
        let msgs: Vec<Vec<u8>> = (0..300u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let pks: Vec<PublicKey> = keys.iter().map(Keypair::public).collect();
        let good: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        let check = |sigs: &[Signature]| {
            let v: Vec<VerifyItem<'_>> =
                pks.iter().zip(&msgs).zip(sigs).map(|((k, m), s)| (k, m.as_slice(), s)).collect();
            verify_many(&v)
        };
        assert_eq!(check(&good), Ok(()));
        for bad in [[0usize].as_slice(), &[7], &[150, 299], &[299], &[31, 32, 33]] {
            let mut sigs = good.clone();
            for &i in bad {
                sigs[i].0[40] ^= 1;
            }
            assert_eq!(check(&sigs), Err(bad[0]), "{bad:?}");
        }
    }

    #[test]
    fn verify_each_finds_every_bad_signature_and_agrees_with_single_verification() {
        let keys: Vec<Keypair> = (0..200u32).map(|i| Keypair::from_seed(&Hash::of(&[&i.to_le_bytes()]).0)).collect();
        let msgs: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let pks: Vec<PublicKey> = keys.iter().map(Keypair::public).collect();
        let mut sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        for i in [0usize, 3, 99, 100, 101, 199] {
            sigs[i].0[50] ^= 1;
        }
        let v: Vec<VerifyItem<'_>> = pks.iter().zip(&msgs).zip(&sigs).map(|((k, m), s)| (k, m.as_slice(), s)).collect();
        let single: Vec<bool> = v.iter().map(|(k, m, s)| verify(k, m, s).is_ok()).collect();
        assert_eq!(verify_each(&v), single);
        assert_eq!(single.iter().filter(|ok| !**ok).count(), 6);
        assert_eq!(verify_each(&v[..2]), single[..2]);
        assert!(verify_each(&[]).is_empty());
        // Every signature bad: the failed-batch budget runs out and the rest go one by one.
        for sig in &mut sigs {
            sig.0[51] ^= 1;
        }
        let all_bad: Vec<VerifyItem<'_>> =
            pks.iter().zip(&msgs).zip(&sigs).map(|((k, m), s)| (k, m.as_slice(), s)).collect();
        let single: Vec<bool> = all_bad.iter().map(|(k, m, s)| verify(k, m, s).is_ok()).collect();
        assert_eq!(verify_each(&all_bad), single);
    }

    #[test]
    fn a_key_with_a_small_order_component_owns_no_account() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        let honest = Keypair::from_seed(&[9; 32]);
        let a = VerifyingKey::from_bytes(&honest.public().0).expect("a key").to_edwards();
        assert!(is_account_key(&honest.public()));
        for t in EIGHT_TORSION.iter().skip(1) {
            let mixed = PublicKey((a + t).compress().to_bytes());
            // Under the cofactored rule, whoever holds A's secret can sign for A + T as well.
            assert!(!is_account_key(&mixed), "A + T is refused");
        }
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
