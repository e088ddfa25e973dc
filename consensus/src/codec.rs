//! The canonical encoding: bincode 2, fixed-width little-endian integers, with a size limit on
//! every decode.
//!
//! Fixed-width integers make the bytes easy to produce in any language (`struct.pack("<Q")` in
//! Python); `docs/transaction-format.md` writes the layout out. Every decode names its limit and
//! rejects trailing bytes, so one value has exactly one encoding.

use bincode::config::{Configuration, Fixint, Limit, LittleEndian, NoLimit};
use bincode::{Decode, Encode};

use crate::Error;

/// The one encoding configuration used for everything that is hashed, signed, stored or sent.
const CONFIG: Configuration<LittleEndian, Fixint, NoLimit> =
    bincode::config::standard().with_little_endian().with_fixed_int_encoding();

/// Decoding budget for small values (transactions, votes, records): bytes read plus the memory
/// bincode claims for containers before it allocates them.
const SMALL_DECODE_BUDGET_BYTES: usize = 1 << 20;
/// Decoding budget for blocks and proposals.
const LARGE_DECODE_BUDGET_BYTES: usize = 64 << 20;
const SMALL: Configuration<LittleEndian, Fixint, Limit<SMALL_DECODE_BUDGET_BYTES>> =
    CONFIG.with_limit::<SMALL_DECODE_BUDGET_BYTES>();
const LARGE: Configuration<LittleEndian, Fixint, Limit<LARGE_DECODE_BUDGET_BYTES>> =
    CONFIG.with_limit::<LARGE_DECODE_BUDGET_BYTES>();

/// The largest encoded transaction accepted, in bytes.
pub const TX_BYTES_MAX: usize = 1024;
/// The largest encoded block accepted, in bytes.
pub const BLOCK_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The largest encoded consensus message (vote or certificate) accepted, in bytes.
pub const MESSAGE_BYTES_MAX: usize = 64 * 1024;

/// Encodes a value canonically.
pub fn encode<T: Encode>(value: &T) -> Vec<u8> {
    // Encoding into a Vec cannot fail for our types: they hold no maps and no foreign encoders.
    bincode::encode_to_vec(value, CONFIG).unwrap_or_default()
}

/// The length of a value's canonical encoding, without building it.
pub fn encoded_len<T: Encode>(value: &T) -> usize {
    let mut encoder = bincode::enc::EncoderImpl::new(bincode::enc::write::SizeWriter::default(), CONFIG);
    // Counting cannot fail for our types, for the reason `encode` gives.
    if value.encode(&mut encoder).is_err() {
        return usize::MAX;
    }
    encoder.into_writer().bytes_written
}

/// Appends a value's canonical encoding to `out`.
pub fn encode_into<T: Encode>(value: &T, out: &mut Vec<u8>) {
    out.extend_from_slice(&encode(value));
}

/// Decodes a value from exactly `bytes`, refusing inputs longer than `limit_bytes`, allocations
/// beyond it, and trailing bytes.
pub fn decode<T: Decode<()>>(bytes: &[u8], limit_bytes: usize) -> Result<T, Error> {
    if bytes.len() > limit_bytes {
        return Err(Error::TooLarge { len: bytes.len(), max: limit_bytes });
    }
    // A limited configuration makes bincode charge every claimed container length against the
    // budget before it allocates, so a forged length cannot request a huge allocation.
    let decoded = if limit_bytes <= SMALL_DECODE_BUDGET_BYTES / 4 {
        bincode::decode_from_slice::<T, _>(bytes, SMALL)
    } else {
        bincode::decode_from_slice::<T, _>(bytes, LARGE)
    };
    let (value, used) = decoded.map_err(|e| Error::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(Error::TrailingBytes { extra: bytes.len() - used });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Block, SignedTransaction};

    #[test]
    fn a_forged_huge_length_is_refused_without_allocating() {
        // A block whose transaction count claims 2^40 entries, followed by nothing.
        let mut bytes = Vec::new();
        let header = crate::genesis::Genesis {
            chain_id: "x".into(),
            address_hrp: "x".into(),
            genesis_time_ms: 0,
            block_time_ms: 10,
            fee_floor: 0,
            epoch_length: 100,
            validators: vec![],
            validator_names: vec![],
            allocations: vec![],
        }
        .header();
        bytes.extend_from_slice(&encode(&header));
        bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(decode::<Block>(&bytes, BLOCK_BYTES_MAX).is_err());
        let mut tx_like = vec![0u8; 8];
        tx_like[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode::<SignedTransaction>(&tx_like, TX_BYTES_MAX).is_err());
    }

    #[test]
    fn encoded_len_is_the_length_of_the_encoding() {
        let values = (7u64, String::from("taksa"), vec![1u8, 2, 3], Some([9u8; 32]));
        assert_eq!(encoded_len(&values), encode(&values).len());
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&7u64);
        bytes.push(0);
        assert_eq!(decode::<u64>(&bytes, 16), Err(Error::TrailingBytes { extra: 1 }));
    }
}
