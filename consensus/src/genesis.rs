//! Genesis: the parameters a network starts from, read from `genesis.json`.
//!
//! The genesis block (height 0) is derived from the file: its `tx_root` is the hash of the
//! canonical genesis parameters and its `state_root` the digest of the allocations, so the
//! genesis hash, which every transaction and vote signs over, commits to all of it.

use std::collections::BTreeMap;

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

use crate::block::Header;
use crate::codec;
use crate::crypto::{self, Hash};
use crate::state::Account;
use crate::tree;
use crate::tx::CHAIN_ID_BYTES_MAX;
use crate::{Address, Error, ValidatorSet};

/// The largest genesis file accepted, in bytes.
pub const GENESIS_BYTES_MAX: usize = 16 * 1024 * 1024;
/// The shortest block time a genesis may ask for, in milliseconds.
pub const BLOCK_TIME_MS_MIN: u64 = 10;
/// The epoch length of a genesis that names none, in blocks.
pub const EPOCH_LENGTH_DEFAULT: u64 = 100;
/// The shortest epoch a genesis may ask for, in blocks.
pub const EPOCH_LENGTH_MIN: u64 = 2;

/// `genesis.json` as written on disk. Amounts are decimal strings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    /// Free text for humans (for example, that the keys are public test keys); not hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The network's chain id, at most 64 bytes.
    pub chain_id: String,
    /// The bech32m prefix of addresses on this network.
    pub address_hrp: String,
    /// The genesis block's timestamp, Unix milliseconds.
    pub genesis_time_ms: u64,
    /// The target time between blocks, milliseconds.
    pub block_time_ms: u64,
    /// The smallest fee a transaction may pay, base units.
    pub fee_floor: String,
    /// Heights per epoch: the validator set can change only between epochs (see
    /// `docs/validator-changes.md`). Absent means [`EPOCH_LENGTH_DEFAULT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_length_blocks: Option<u64>,
    /// The validators, in leader order.
    pub validators: Vec<GenesisValidator>,
    /// The starting balances.
    pub allocations: Vec<GenesisAllocation>,
}

/// A validator entry of `genesis.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// A display name.
    pub name: String,
    /// The validator's address (its public key).
    pub address: String,
}

/// An allocation entry of `genesis.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAllocation {
    /// The funded address.
    pub address: String,
    /// Its balance, base units, as a decimal string.
    pub balance: String,
}

/// The checked genesis parameters; their encoding is what the genesis hash commits to.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Genesis {
    /// The chain id.
    pub chain_id: String,
    /// The bech32m prefix of addresses.
    pub address_hrp: String,
    /// Genesis timestamp, Unix milliseconds.
    pub genesis_time_ms: u64,
    /// Target block time, milliseconds.
    pub block_time_ms: u64,
    /// Fee floor, base units.
    pub fee_floor: u128,
    /// Heights per epoch.
    pub epoch_length: u64,
    /// Validators in leader order.
    pub validators: Vec<Address>,
    /// Validator display names, parallel to `validators`.
    pub validator_names: Vec<String>,
    /// Starting balances, sorted by address.
    pub allocations: Vec<(Address, u128)>,
}

impl Genesis {
    /// Parses and checks a `genesis.json` text.
    pub fn from_json(text: &str) -> Result<Genesis, Error> {
        if text.len() > GENESIS_BYTES_MAX {
            return Err(Error::BadGenesis(format!("file is {} bytes, limit is {GENESIS_BYTES_MAX}", text.len())));
        }
        let file: GenesisFile = serde_json::from_str(text).map_err(|e| Error::BadGenesis(e.to_string()))?;
        Genesis::from_file(&file)
    }

    /// Checks a parsed `genesis.json`.
    pub fn from_file(f: &GenesisFile) -> Result<Genesis, Error> {
        let bad = |m: String| Error::BadGenesis(m);
        if f.chain_id.is_empty() || f.chain_id.len() > CHAIN_ID_BYTES_MAX {
            return Err(bad(format!("chain_id must be 1 to {CHAIN_ID_BYTES_MAX} bytes")));
        }
        Address::check_hrp(&f.address_hrp)?;
        if f.block_time_ms < BLOCK_TIME_MS_MIN {
            return Err(bad(format!("block_time_ms must be at least {BLOCK_TIME_MS_MIN}")));
        }
        let fee_floor = parse_amount(&f.fee_floor).map_err(|e| bad(format!("fee_floor: {e}")))?;
        if f.validators.is_empty() {
            return Err(bad("at least one validator is needed".into()));
        }
        if f.validators.len() > crate::governance::VALIDATORS_MAX {
            return Err(bad(format!("at most {} validators", crate::governance::VALIDATORS_MAX)));
        }
        let epoch_length = f.epoch_length_blocks.unwrap_or(EPOCH_LENGTH_DEFAULT);
        if epoch_length < EPOCH_LENGTH_MIN {
            return Err(bad(format!("epoch_length_blocks must be at least {EPOCH_LENGTH_MIN}")));
        }
        for v in &f.validators {
            if v.name.is_empty() || v.name.len() > crate::governance::NAME_BYTES_MAX {
                return Err(bad(format!(
                    "validator name `{}` is not 1 to {} bytes",
                    v.name,
                    crate::governance::NAME_BYTES_MAX
                )));
            }
        }
        let mut validators = Vec::new();
        for v in &f.validators {
            let a = Address::parse(&v.address, &f.address_hrp)?;
            if validators.contains(&a) {
                return Err(bad(format!("validator {} is listed twice", v.address)));
            }
            if !crypto::is_account_key(&a.0) {
                return Err(bad(format!("validator {} is not an ed25519 key of large order", v.address)));
            }
            validators.push(a);
        }
        let mut allocs = BTreeMap::new();
        let mut supply: u128 = 0;
        for a in &f.allocations {
            let addr = Address::parse(&a.address, &f.address_hrp)?;
            let bal = parse_amount(&a.balance).map_err(|e| bad(format!("balance of {}: {e}", a.address)))?;
            supply = supply.checked_add(bal).ok_or_else(|| bad("total supply overflows u128".into()))?;
            if !crypto::is_account_key(&addr.0) {
                return Err(bad(format!(
                    "address {} is not an ed25519 key of large order: no one could spend it",
                    a.address
                )));
            }
            if allocs.insert(addr, bal).is_some() {
                return Err(bad(format!("address {} is allocated twice", a.address)));
            }
        }
        Ok(Genesis {
            chain_id: f.chain_id.clone(),
            address_hrp: f.address_hrp.clone(),
            genesis_time_ms: f.genesis_time_ms,
            block_time_ms: f.block_time_ms,
            fee_floor,
            epoch_length,
            validators,
            validator_names: f.validators.iter().map(|v| v.name.clone()).collect(),
            allocations: allocs.into_iter().collect(),
        })
    }

    /// Back to the file form.
    pub fn to_file(&self, comment: Option<String>) -> GenesisFile {
        GenesisFile {
            comment,
            chain_id: self.chain_id.clone(),
            address_hrp: self.address_hrp.clone(),
            genesis_time_ms: self.genesis_time_ms,
            block_time_ms: self.block_time_ms,
            fee_floor: self.fee_floor.to_string(),
            epoch_length_blocks: Some(self.epoch_length),
            validators: self
                .validators
                .iter()
                .zip(&self.validator_names)
                .map(|(a, n)| GenesisValidator { name: n.clone(), address: a.to_bech32(&self.address_hrp) })
                .collect(),
            allocations: self
                .allocations
                .iter()
                .map(|(a, b)| GenesisAllocation { address: a.to_bech32(&self.address_hrp), balance: b.to_string() })
                .collect(),
        }
    }

    /// The validator set.
    pub fn validator_set(&self) -> ValidatorSet {
        ValidatorSet::new(self.validators.clone())
    }

    /// The epochs.
    pub fn epochs(&self) -> crate::Epochs {
        crate::Epochs::new(self.epoch_length)
    }

    /// The governance entry a chain starts with: the genesis validators, nothing pending.
    pub fn governance(&self) -> crate::governance::Governance {
        crate::governance::Governance::genesis(
            self.validators
                .iter()
                .zip(&self.validator_names)
                .map(|(a, n)| crate::governance::Validator { address: *a, name: n.clone() })
                .collect(),
        )
    }

    /// The starting accounts.
    pub fn accounts(&self) -> impl Iterator<Item = (Address, Account)> + '_ {
        self.allocations.iter().map(|(a, b)| (*a, Account { balance: *b, nonce: 0 }))
    }

    /// The sum of all allocations.
    pub fn total_supply(&self) -> u128 {
        self.allocations.iter().map(|(_, b)| *b).fold(0u128, u128::saturating_add)
    }

    /// The genesis block's header (height 0). Its hash is the genesis hash.
    pub fn header(&self) -> Header {
        let mut entries: Vec<(Hash, Hash)> = self
            .accounts()
            .filter(|(_, acct)| *acct != Account::default())
            .map(|(a, acct)| (tree::account_key(&a), tree::account_value_hash(&acct)))
            .collect();
        entries.push((crate::governance::governance_key(), self.governance().value_hash()));
        Header {
            chain_id: self.chain_id.clone(),
            height: 0,
            view: 0,
            parent_hash: Hash::ZERO,
            proposer: Address::default(),
            timestamp_ms: self.genesis_time_ms,
            tx_root: Hash::of(&[b"taksa/genesis/v2", &codec::encode(self)]),
            evidence_root: crate::block::evidence_root(&[]),
            state_root: tree::root_of(&entries),
            validator_set_hash: self.validator_set().hash(),
            parent_cert: None,
        }
    }

    /// The genesis hash.
    pub fn hash(&self) -> Hash {
        self.header().hash()
    }
}

/// Parses a base-unit amount written as a decimal string of digits.
pub fn parse_amount(s: &str) -> Result<u128, Error> {
    if s.is_empty() || s.len() > 39 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::BadAmount(format!(
            "`{}` is not a whole number of base units",
            s.chars().take(50).collect::<String>()
        )));
    }
    s.parse::<u128>().map_err(|_| Error::BadAmount(format!("`{s}` does not fit in 128 bits")))
}
