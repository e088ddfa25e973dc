//! `taksa validator`: a validator's votes on the validator set (`docs/validator-changes.md`).
//!
//! Each command signs one transaction with the validator's key file (the keystore format of
//! `taksa node --validator-key`) and sends it to a node. A change passes when q = n - f
//! validators of the current set voted for the same change, and takes effect when the epoch in
//! which it passed ends. Proposing a change is the first vote on it; the others vote with the
//! same command or with `taksa validator vote CHANGE_ID`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use taksa_consensus::governance::{rotation_bytes, Action, Change};
use taksa_consensus::{Address, Hash, Keypair, Transaction};
use taksa_rpc::api::{ChangeJson, PendingVotesJson, TxStateJson};

use crate::wallet::client::{Followed, NodeClient};
use crate::wallet::keystore;

/// How long a command waits for its vote to be final unless told not to.
const WAIT_FINAL: Duration = Duration::from_secs(60);

/// `taksa validator`.
#[derive(Args, Debug)]
pub(crate) struct ValidatorArgs {
    /// The node to send to (JSON-RPC over HTTP; its WebSocket on the same port is used to wait).
    #[arg(long, env = "TAKSA_RPC", default_value = "http://127.0.0.1:8545", global = true)]
    rpc: String,
    #[command(subcommand)]
    command: ValidatorCommand,
}

/// The key that signs, for the commands that vote.
#[derive(Args, Debug)]
struct Signer {
    /// The validator's encrypted key file (what `taksa node --validator-key` takes).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// File whose first line is the key's password (else $TAKSA_PASSWORD, else a prompt).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Send and return without waiting for the vote to be final.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Subcommand, Debug)]
enum ValidatorCommand {
    /// Vote to add a validator (the first vote opens the change). It signs from the epoch after
    /// the one in which the change passes: start its node before, so it has synced by then.
    ProposeAdd {
        /// The new validator's address (its public key: `taksa wallet new` or `list` shows it).
        #[arg(long)]
        address: String,
        /// Its display name, 1 to 32 bytes.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        signer: Signer,
    },
    /// Vote to remove a validator (the last one cannot be removed).
    ProposeRemove {
        /// The validator's address.
        #[arg(long)]
        address: String,
        #[command(flatten)]
        signer: Signer,
    },
    /// Propose replacing this validator's key by a new one (for a key that leaked, or a new
    /// machine). The new key signs its consent; the others then vote with `vote CHANGE_ID`.
    /// Run the node with both keys (`--validator-key old.json --validator-key new.json`): it
    /// moves to the new one when the change takes effect (`votes` shows when), no restart.
    RotateKey {
        /// The new key's encrypted key file.
        #[arg(long, value_name = "FILE")]
        new_key: PathBuf,
        /// File whose first line is the new key's password (default: the old key's).
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
        #[command(flatten)]
        signer: Signer,
    },
    /// Vote for a pending change by its id (`taksa validator votes` lists them).
    Vote {
        /// The change's id (0x followed by 64 hex digits).
        change_id: String,
        #[command(flatten)]
        signer: Signer,
    },
    /// Take back this validator's vote from a pending change.
    Withdraw {
        /// The change's id.
        change_id: String,
        #[command(flatten)]
        signer: Signer,
    },
    /// Show the current epoch's set, the pending changes with their votes, and the changes that
    /// passed and when they apply.
    Votes,
}

/// Runs `taksa validator ...`.
pub(crate) async fn run(args: ValidatorArgs) -> anyhow::Result<()> {
    let client = NodeClient::new(&args.rpc)?;
    match args.command {
        ValidatorCommand::Votes => {
            print!("{}", describe(&client.pending_votes().await?));
            Ok(())
        }
        ValidatorCommand::ProposeAdd { address, name, signer } => {
            let hrp = client.chain_info().await?.address_hrp;
            let key = Address::parse(&address, &hrp).with_context(|| format!("--address {address}"))?;
            submit(&client, &signer, |_, _| Ok(Action::Vote(Change::Add { key, name: name.clone() }))).await
        }
        ValidatorCommand::ProposeRemove { address, signer } => {
            let hrp = client.chain_info().await?.address_hrp;
            let key = Address::parse(&address, &hrp).with_context(|| format!("--address {address}"))?;
            // The on-chain record every validator can check before it votes the same way.
            let named = key.to_bech32(&hrp);
            for o in client.pending_votes().await?.offences.iter().filter(|o| o.validator == named) {
                println!(
                    "on record: {named} equivocated in epoch {} view {} (evidence {} in block {})",
                    o.epoch, o.view, o.evidence, o.height
                );
            }
            submit(&client, &signer, |_, _| Ok(Action::Vote(Change::Remove { key }))).await
        }
        ValidatorCommand::RotateKey { new_key, new_password_file, signer } => {
            let file = new_password_file.as_deref().or(signer.password_file.as_deref());
            let password = keystore::read_password(file, false)?;
            let new = keystore::load_keypair(&new_key, &password)
                .with_context(|| format!("cannot open the new key {}", new_key.display()))?;
            submit(&client, &signer, |old, genesis_hash| {
                let proof = new.sign(&rotation_bytes(genesis_hash, old));
                Ok(Action::Vote(Change::Rotate { old: *old, new: Address(new.public()), proof }))
            })
            .await
        }
        ValidatorCommand::Vote { change_id, signer } => {
            let id =
                Hash::from_hex(&change_id).map_err(|e| anyhow::anyhow!("`{change_id}` is not a change id: {e}"))?;
            let hrp = client.chain_info().await?.address_hrp;
            let votes = client.pending_votes().await?;
            let Some(pending) = votes.pending.iter().find(|p| p.id == id.to_hex()) else {
                bail!("no pending change {change_id}; `taksa validator votes` lists them (a change expires after the epoch following the one it was opened in)");
            };
            let change =
                pending.change.to_change(&hrp).map_err(|e| anyhow::anyhow!("the node's change {change_id}: {e}"))?;
            if change.id() != id {
                bail!("the node described change {change_id} as another change; refusing to vote");
            }
            submit(&client, &signer, |_, _| Ok(Action::Vote(change.clone()))).await
        }
        ValidatorCommand::Withdraw { change_id, signer } => {
            let id =
                Hash::from_hex(&change_id).map_err(|e| anyhow::anyhow!("`{change_id}` is not a change id: {e}"))?;
            submit(&client, &signer, |_, _| Ok(Action::Withdraw(id))).await
        }
    }
}

/// Signs the action `make` builds (given the validator's address and the genesis hash) into a
/// transaction to itself, sends it, and waits for it to be final unless `--no-wait`.
async fn submit(
    client: &NodeClient,
    signer: &Signer,
    make: impl FnOnce(&Address, &Hash) -> anyhow::Result<Action>,
) -> anyhow::Result<()> {
    let key = load(&signer.key, signer.password_file.as_deref())?;
    let info = client.chain_info().await?;
    let genesis_hash =
        Hash::from_hex(&info.genesis_hash).map_err(|e| anyhow::anyhow!("the node's genesis hash: {e}"))?;
    let me = Address(key.public());
    let hrp = info.address_hrp.clone();
    let votes = client.pending_votes().await?;
    if !votes.set.validators.iter().any(|v| v.address == me.to_bech32(&hrp)) {
        bail!(
            "{} is not a validator of the current set (epoch {}); only its validators vote on it",
            me.to_bech32(&hrp),
            votes.set.epoch
        );
    }
    let action = make(&me, &genesis_hash)?;
    let nonce = client.next_nonce(&me.to_bech32(&hrp)).await?;
    let signed = Transaction::vote(&info.chain_id, me, nonce, action.clone()).sign(&key, &genesis_hash);
    let hash = signed.hash();
    client.submit(&signed.encode()).await?;
    match &action {
        Action::Vote(change) => {
            println!("voted for change {} ({}): transaction {hash}", change.id(), summary(change, &hrp))
        }
        Action::Withdraw(id) => println!("withdrew the vote from change {id}: transaction {hash}"),
    }
    if signer.no_wait {
        println!("not waiting; `taksa validator votes` shows the votes once it is final");
        return Ok(());
    }
    match client.follow_status(&hash, WAIT_FINAL).await {
        Followed::Final(status) if status.status == TxStateJson::Finalized => {
            let height = status.height.unwrap_or_default();
            println!("final at height {height}");
            let votes = client.pending_votes().await?;
            if let Action::Vote(change) = &action {
                let id = change.id().to_hex();
                if let Some(p) = votes.passed.iter().find(|p| p.id == id) {
                    println!(
                        "the change passed at height {}; it applies from epoch {}",
                        p.height, p.applies_from_epoch
                    );
                } else if let Some(p) = votes.pending.iter().find(|p| p.id == id) {
                    println!("the change has {} of the {} votes it needs", p.voters.len(), p.needed);
                }
            }
            Ok(())
        }
        Followed::Final(status) => {
            let why = status.message.clone().or_else(|| status.reason.clone());
            bail!("the vote was not included ({}): {}", status.status.as_str(), why.unwrap_or_default())
        }
        Followed::TimedOut(last) => bail!(
            "not final after {} s (last status: {last}); check with `taksa wallet status {hash}`",
            WAIT_FINAL.as_secs()
        ),
        Followed::Unavailable(e) => {
            Err(e.context(format!("sent, but could not follow it; check with `taksa wallet status {hash}`")))
        }
    }
}

fn load(file: &Path, password_file: Option<&Path>) -> anyhow::Result<Keypair> {
    let password = keystore::read_password(password_file, false)?;
    keystore::load_keypair(file, &password).with_context(|| format!("cannot open the validator key {}", file.display()))
}

/// One line naming a change.
fn summary(change: &Change, hrp: &str) -> String {
    match change {
        Change::Add { key, name } => format!("add {} as `{name}`", key.to_bech32(hrp)),
        Change::Remove { key } => format!("remove {}", key.to_bech32(hrp)),
        Change::Rotate { old, new, .. } => format!("rotate {} to {}", old.to_bech32(hrp), new.to_bech32(hrp)),
    }
}

fn summary_json(change: &ChangeJson) -> String {
    match change {
        ChangeJson::Add { key, name } => format!("add {key} as `{name}`"),
        ChangeJson::Remove { key } => format!("remove {key}"),
        ChangeJson::Rotate { old, new, .. } => format!("rotate {old} to {new}"),
    }
}

/// What `taksa validator votes` prints.
fn describe(v: &PendingVotesJson) -> String {
    let s = &v.set;
    let mut out = format!(
        "epoch {} (heights {}..={}; finalized head {}): {} validators, quorum {}\n",
        s.epoch,
        s.first_height,
        s.last_height,
        v.head_height,
        s.validators.len(),
        s.quorum
    );
    for val in &s.validators {
        out.push_str(&format!("  {}  {}\n", val.address, val.name));
    }
    if v.passed.is_empty() && v.pending.is_empty() {
        out.push_str("no change pending\n");
    }
    for p in &v.passed {
        out.push_str(&format!(
            "passed  {}  {} (at height {}; applies from epoch {})\n",
            p.id,
            summary_json(&p.change),
            p.height,
            p.applies_from_epoch
        ));
    }
    for p in &v.pending {
        out.push_str(&format!(
            "pending {}  {}: {} of {} votes (expires after epoch {})\n",
            p.id,
            summary_json(&p.change),
            p.voters.len(),
            p.needed,
            p.expires_after_epoch
        ));
        for voter in &p.voters {
            out.push_str(&format!("          voted: {voter}\n"));
        }
    }
    for o in &v.offences {
        out.push_str(&format!(
            "offence {}  equivocated in epoch {} view {} (evidence {} in block {}); `taksa validator \
             propose-remove --address` it to vote it out\n",
            o.validator, o.epoch, o.view, o.evidence, o.height
        ));
    }
    out
}
