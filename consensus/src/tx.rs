//! Transactions: a transfer signed by the sender's key, bound to one network.
//!
//! What is signed: `b"taksa/tx/v1" || genesis_hash (32 bytes) || encode(Transaction)`. The
//! transaction itself carries the chain id, so a signature is worthless on any other network or
//! on a chain restarted from another genesis. The hash of a transaction is the SHA-256 of its
//! signed encoding: the same bytes always give the same hash.

use bincode::{Decode, Encode};

use crate::codec;
use crate::crypto::{self, Hash, Keypair, Signature};
use crate::governance::Action;
use crate::{Address, Error};

/// The domain tag that starts every transaction's signed bytes.
pub const TX_DOMAIN: &[u8] = b"taksa/tx/v1";
/// The longest memo, in bytes of UTF-8.
pub const MEMO_BYTES_MAX: usize = 256;
/// The longest chain id, in bytes.
pub const CHAIN_ID_BYTES_MAX: usize = 64;
/// The most transactions one gossip message carries.
pub const GOSSIP_BATCH_TXS_MAX: usize = 128;
/// The longest gossip message of transactions: the list's length, then a full batch of the
/// longest transactions.
pub const GOSSIP_BATCH_BYTES_MAX: usize = 8 + GOSSIP_BATCH_TXS_MAX * codec::TX_BYTES_MAX;

/// Transactions as one gossip message: the canonical encoding of the list. The caller keeps
/// it to at most [`GOSSIP_BATCH_TXS_MAX`] transactions.
pub fn encode_gossip_batch(txs: &[SignedTransaction]) -> Vec<u8> {
    codec::encode(&txs)
}

/// Decodes a gossip message of transactions: from 1 to [`GOSSIP_BATCH_TXS_MAX`] of them, each
/// at most [`codec::TX_BYTES_MAX`] long encoded, with nothing after them. Honest nodes send
/// nothing else, so any error is the sender's fault.
pub fn decode_gossip_batch(bytes: &[u8]) -> Result<Vec<SignedTransaction>, Error> {
    // The count first, so a forged count costs nothing to refuse.
    let count = bytes.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_le_bytes);
    let Some(count) = count.and_then(|c| usize::try_from(c).ok()) else {
        return Err(Error::Decode("no transaction count".into()));
    };
    if count == 0 || count > GOSSIP_BATCH_TXS_MAX {
        return Err(Error::TooLarge { len: count, max: GOSSIP_BATCH_TXS_MAX });
    }
    let txs: Vec<SignedTransaction> = codec::decode(bytes, GOSSIP_BATCH_BYTES_MAX)?;
    if let Some(len) = txs.iter().map(codec::encoded_len).find(|len| *len > codec::TX_BYTES_MAX) {
        return Err(Error::TooLarge { len, max: codec::TX_BYTES_MAX });
    }
    Ok(txs)
}

/// A transfer of `amount` from `from` to `to`, paying `fee` to the block's proposer.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Transaction {
    /// The network this transaction is for; must equal the genesis chain id.
    pub chain_id: String,
    /// The sender, whose key signs.
    pub from: Address,
    /// The recipient.
    pub to: Address,
    /// The amount moved, in base units.
    pub amount: u128,
    /// The fee paid to the proposer, in base units; at least the genesis fee floor.
    pub fee: u128,
    /// The sender's account nonce: its first transaction uses 0, each next one counts up by 1.
    pub nonce: u64,
    /// The last height at which this transaction may be included; after it, it is expired.
    pub valid_until_height: Option<u64>,
    /// A free-form note of at most [`MEMO_BYTES_MAX`] bytes.
    pub memo: Option<String>,
    /// A vote on the validator set ([`crate::governance`]): then `to == from`, `amount == 0`
    /// and the fee floor does not apply.
    pub action: Option<Action>,
}

impl Transaction {
    /// A validator's vote on the validator set ([`crate::governance`]): to itself, moving
    /// nothing, with no fee (the fee floor does not apply to votes).
    pub fn vote(chain_id: &str, validator: Address, nonce: u64, action: Action) -> Transaction {
        Transaction {
            chain_id: chain_id.to_owned(),
            from: validator,
            to: validator,
            amount: 0,
            fee: 0,
            nonce,
            valid_until_height: None,
            memo: None,
            action: Some(action),
        }
    }

    /// The bytes the sender signs.
    pub fn signing_bytes(&self, genesis_hash: &Hash) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(TX_DOMAIN);
        out.extend_from_slice(&genesis_hash.0);
        codec::encode_into(self, &mut out);
        out
    }

    /// Signs with `key`, which must be the key of `from`.
    pub fn sign(self, key: &Keypair, genesis_hash: &Hash) -> SignedTransaction {
        let signature = key.sign(&self.signing_bytes(genesis_hash));
        SignedTransaction { tx: self, signature }
    }
}

/// A transaction with its sender's signature: what wallets submit and blocks carry.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// The sender's ed25519 signature over [`Transaction::signing_bytes`].
    pub signature: Signature,
}

impl SignedTransaction {
    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes from exactly `bytes`, at most [`codec::TX_BYTES_MAX`] long.
    pub fn decode(bytes: &[u8]) -> Result<SignedTransaction, Error> {
        codec::decode(bytes, codec::TX_BYTES_MAX)
    }

    /// SHA-256 of the canonical bytes.
    pub fn hash(&self) -> Hash {
        Hash::of(&[&self.encode()])
    }

    /// The checks that need no state: sizes, chain id, fee floor, self-consistency and the
    /// signature. Run once on admission; a block re-runs them for transactions it has not seen.
    pub fn check_stateless(&self, chain_id: &str, genesis_hash: &Hash, fee_floor: u128) -> Result<(), TxError> {
        self.check_fields_and_recipient(chain_id, fee_floor)?;
        crypto::verify(&self.tx.from.0, &self.tx.signing_bytes(genesis_hash), &self.signature)
            .map_err(|_| TxError::BadSignature)
    }

    /// [`SignedTransaction::check_stateless`] on many transactions, each with its own verdict;
    /// the signatures are verified in batches on every core ([`crypto::verify_each`]), which
    /// agrees with single verification. Recipients for which `recipient_known_valid` holds
    /// ([`crate::state::recipient_known_valid`] on any state of this chain) skip the key check,
    /// which costs about one signature verification and gives them the same verdict.
    pub fn check_stateless_many(
        txs: &[SignedTransaction],
        chain_id: &str,
        genesis_hash: &Hash,
        fee_floor: u128,
        recipient_known_valid: &dyn Fn(&crate::Address) -> bool,
    ) -> Vec<Result<(), TxError>> {
        let mut out: Vec<Result<(), TxError>> = txs
            .iter()
            .map(|stx| {
                if recipient_known_valid(&stx.tx.to) {
                    stx.check_fields(chain_id, fee_floor)
                } else {
                    stx.check_fields_and_recipient(chain_id, fee_floor)
                }
            })
            .collect();
        let todo: Vec<(&SignedTransaction, Vec<u8>, usize)> = txs
            .iter()
            .zip(&out)
            .enumerate()
            .filter(|(_, (_, verdict))| verdict.is_ok())
            .map(|(i, (stx, _))| (stx, stx.tx.signing_bytes(genesis_hash), i))
            .collect();
        let items: Vec<crypto::VerifyItem<'_>> =
            todo.iter().map(|(stx, msg, _)| (&stx.tx.from.0, msg.as_slice(), &stx.signature)).collect();
        for ((_, _, i), ok) in todo.iter().zip(crypto::verify_each(&items)) {
            if let (false, Some(verdict)) = (ok, out.get_mut(*i)) {
                *verdict = Err(TxError::BadSignature);
            }
        }
        out
    }

    /// [`SignedTransaction::check_fields`], then the recipient must be an account key.
    fn check_fields_and_recipient(&self, chain_id: &str, fee_floor: u128) -> Result<(), TxError> {
        self.check_fields(chain_id, fee_floor)?;
        if !crypto::is_account_key(&self.tx.to.0) {
            return Err(TxError::BadRecipient);
        }
        Ok(())
    }

    /// The stateless checks except the key checks (the recipient is a valid key, the signature
    /// verifies), so that callers can run those in bulk on every core.
    pub fn check_fields(&self, chain_id: &str, fee_floor: u128) -> Result<(), TxError> {
        let tx = &self.tx;
        if tx.chain_id != chain_id {
            return Err(TxError::WrongChain { expected: chain_id.to_owned(), got: truncate(&tx.chain_id) });
        }
        if tx.memo.as_ref().is_some_and(|m| m.len() > MEMO_BYTES_MAX) {
            return Err(TxError::MemoTooLong { max_bytes: MEMO_BYTES_MAX });
        }
        if let Some(action) = &tx.action {
            if tx.to != tx.from || tx.amount != 0 {
                return Err(TxError::Governance(
                    "a vote on the validator set moves no funds: to = from, amount = 0".into(),
                ));
            }
            if codec::encoded_len(action) > crate::governance::ACTION_BYTES_MAX {
                return Err(TxError::Governance("the action is too long".into()));
            }
        } else if tx.fee < fee_floor {
            return Err(TxError::FeeBelowFloor { fee: tx.fee, floor: fee_floor });
        }
        if tx.amount.checked_add(tx.fee).is_none() {
            return Err(TxError::Overflow);
        }
        Ok(())
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(CHAIN_ID_BYTES_MAX).collect()
}

/// Why a transaction is refused. [`TxError::reason`] is the stable machine-readable name that
/// RPC clients see in `error.data.reason`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The signature does not verify under the sender's key.
    #[error("signature does not verify for the sender's key and this network")]
    BadSignature,
    /// The recipient is not a key anyone can sign for, so the funds would be burnt.
    #[error("the recipient is not a valid ed25519 public key: no one could ever spend funds sent there")]
    BadRecipient,
    /// The chain id is not this network's.
    #[error("transaction is for chain `{got}`, this node is on `{expected}`")]
    WrongChain {
        /// This network's chain id.
        expected: String,
        /// The transaction's chain id.
        got: String,
    },
    /// The memo is too long.
    #[error("memo is longer than {max_bytes} bytes")]
    MemoTooLong {
        /// The limit.
        max_bytes: usize,
    },
    /// The fee is below the genesis fee floor.
    #[error("fee {fee} is below the fee floor {floor}")]
    FeeBelowFloor {
        /// The offered fee.
        fee: u128,
        /// The floor.
        floor: u128,
    },
    /// An amount computation overflows.
    #[error("amount plus fee, or the recipient's new balance, overflows")]
    Overflow,
    /// The nonce was already used.
    #[error("nonce {got} was already used; the account's next nonce is {expected}")]
    NonceTooLow {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The nonce leaves a gap.
    #[error("nonce {got} leaves a gap: the account's next nonce is {expected}")]
    NonceGap {
        /// The next nonce the account (with its pending transactions) can use.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The sender cannot pay amount plus fee.
    #[error("balance {available} is less than amount plus fee {needed}")]
    InsufficientBalance {
        /// amount + fee (plus the sender's pending spends, on admission).
        needed: u128,
        /// The balance.
        available: u128,
    },
    /// The transfer creates its recipient's account and pays less than the creation fee.
    #[error("the recipient's account does not exist yet: a transfer that creates it pays a fee of at least {needed}, not {fee}")]
    AccountCreationFee {
        /// The offered fee.
        fee: u128,
        /// The account-creation fee.
        needed: u128,
    },
    /// A vote on the validator set that the set's rules refuse ([`crate::governance`]).
    #[error("validator-set vote refused: {0}")]
    Governance(String),
    /// The transaction's `valid_until_height` has passed.
    #[error("expired: valid until height {valid_until}, chain is at height {height}")]
    Expired {
        /// The transaction's last valid height.
        valid_until: u64,
        /// The height it was checked against.
        height: u64,
    },
}

impl TxError {
    /// The stable machine-readable name of this error.
    pub fn reason(&self) -> &'static str {
        match self {
            TxError::BadSignature => "bad_signature",
            TxError::BadRecipient => "bad_recipient",
            TxError::WrongChain { .. } => "wrong_chain",
            TxError::MemoTooLong { .. } => "memo_too_long",
            TxError::FeeBelowFloor { .. } => "fee_below_floor",
            TxError::Overflow => "overflow",
            TxError::NonceTooLow { .. } => "nonce_too_low",
            TxError::NonceGap { .. } => "nonce_gap",
            TxError::InsufficientBalance { .. } => "insufficient_balance",
            TxError::Expired { .. } => "expired",
            TxError::AccountCreationFee { .. } => "account_creation_fee",
            TxError::Governance(_) => "governance",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(nonce: u64, memo: Option<String>) -> SignedTransaction {
        let key = Keypair::from_seed(&[4; 32]);
        Transaction {
            chain_id: "taksa-test".into(),
            from: Address(key.public()),
            to: Address(Keypair::from_seed(&[5; 32]).public()),
            amount: 1,
            fee: 1,
            nonce,
            valid_until_height: None,
            memo,
            action: None,
        }
        .sign(&key, &Hash([1; 32]))
    }

    #[test]
    fn a_gossip_batch_decodes_to_what_was_encoded() {
        let txs: Vec<SignedTransaction> = (0..GOSSIP_BATCH_TXS_MAX as u64).map(|n| transfer(n, None)).collect();
        let bytes = encode_gossip_batch(&txs);
        assert!(bytes.len() <= GOSSIP_BATCH_BYTES_MAX);
        assert_eq!(decode_gossip_batch(&bytes), Ok(txs));
    }

    #[test]
    fn a_gossip_batch_that_no_honest_node_sends_is_refused() {
        assert!(decode_gossip_batch(&encode_gossip_batch(&[])).is_err(), "empty");
        assert!(decode_gossip_batch(&[1, 0, 0]).is_err(), "no whole count");
        let over: Vec<SignedTransaction> = (0..=GOSSIP_BATCH_TXS_MAX as u64).map(|n| transfer(n, None)).collect();
        assert!(decode_gossip_batch(&encode_gossip_batch(&over)).is_err(), "one too many");
        // A count far beyond what follows is refused before anything is allocated for it.
        let mut forged = encode_gossip_batch(&[transfer(0, None)]);
        forged[..8].copy_from_slice(&(u64::MAX).to_le_bytes());
        assert!(decode_gossip_batch(&forged).is_err(), "forged count");
        let mut trailing = encode_gossip_batch(&[transfer(0, None)]);
        trailing.push(0);
        assert!(decode_gossip_batch(&trailing).is_err(), "trailing bytes");
        // A transaction longer than a single one may be is refused inside a batch too.
        let long = transfer(0, Some("x".repeat(codec::TX_BYTES_MAX)));
        assert!(codec::encoded_len(&long) > codec::TX_BYTES_MAX);
        assert!(decode_gossip_batch(&encode_gossip_batch(&[long])).is_err(), "an over-long transaction");
    }
}
