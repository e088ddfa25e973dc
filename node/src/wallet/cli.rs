//! `taksa wallet …`: create and import keys, show balances and history, send TKS.
//!
//! Keys live in the keystore folder (`--keystore`, `$TAKSA_KEYSTORE`, default
//! `~/.taksa/keystore`). Everything but `new`, `import` and `list` talks to a node (`--rpc`,
//! `$TAKSA_RPC`, default `http://127.0.0.1:8545`). `new` and `import` store the address with
//! the network's prefix: from `--hrp` when given, else from the node's `chain_getInfo`, so
//! they work offline with `--hrp tdev` (dev chain) or `--hrp tks` (testnet). The prefix only
//! changes how the address is shown: the key is the same on every network.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use taksa_consensus::tx::MEMO_BYTES_MAX;
use taksa_consensus::{Address, SignedTransaction, Transaction};
use taksa_rpc::api::{ChainInfoJson, DirectionJson, TxStateJson, TxStatusJson};
use zeroize::Zeroizing;

use super::amount::{format_tks, parse_tks};
use super::client::{ChainInfoExt as _, Followed, NodeClient};
use super::keys::{derive_keypair, generate_mnemonic, parse_mnemonic, DerivationPath};
use super::keystore::{check_name, KdfParams, Keystore};
use super::prompt::{self, Purpose};

/// How often `send` asks whether its transaction is final.
const POLL_INTERVAL_MS: u64 = 200;
/// How long `send` waits for finality before giving up (the transaction may still land).
const FINALITY_TIMEOUT_MS: u64 = 60_000;
/// Default page size of `history`.
const HISTORY_LIMIT_DEFAULT: u32 = 20;
/// The most fee signed without a confirmation, in TKS: 10,000 times the dev chain's and the
/// testnet's floor, and far below any balance worth stealing.
const MAX_FEE_DEFAULT_TKS: &str = "0.01";

/// `taksa wallet`: keys, balances and transfers.
#[derive(Args, Debug)]
pub(crate) struct WalletArgs {
    /// The node's JSON-RPC endpoint.
    #[arg(long, env = "TAKSA_RPC", default_value = "http://127.0.0.1:8545", global = true)]
    rpc: String,
    /// The keystore folder [default: ~/.taksa/keystore].
    #[arg(long, env = "TAKSA_KEYSTORE", global = true)]
    keystore: Option<PathBuf>,
    /// Read the key's password from the first line of this file (else $TAKSA_PASSWORD, else a prompt).
    #[arg(long, global = true)]
    password_file: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    command: WalletCommand,
}

/// The wallet's subcommands.
#[derive(Subcommand, Debug)]
enum WalletCommand {
    /// Create a key from a new 24-word mnemonic (shown once) and store it encrypted.
    New {
        /// The key's name in the keystore.
        #[arg(long)]
        name: String,
        /// Address prefix to store the address with [default: the node's].
        #[arg(long)]
        hrp: Option<String>,
    },
    /// Import a key from a mnemonic read from stdin (when piped) or a hidden prompt.
    Import {
        /// The key's name in the keystore.
        #[arg(long)]
        name: String,
        /// The account number: the key at m/44'/7331'/INDEX'/0'.
        #[arg(long, default_value_t = 0)]
        index: u16,
        /// Import validator key INDEX (m/44'/7331'/INDEX'/1') instead, for `--validator-key`.
        #[arg(long)]
        validator: bool,
        /// Address prefix to store the address with [default: the node's].
        #[arg(long)]
        hrp: Option<String>,
    },
    /// List the keys: names and addresses (no password needed).
    List,
    /// Show the balance of a key name or an address.
    Balance {
        /// Key name or address.
        who: String,
    },
    /// Send TKS and wait until the transfer is final.
    Send {
        /// The sending key's name.
        #[arg(long)]
        from: String,
        /// The recipient's address (or a key name in the keystore).
        #[arg(long)]
        to: String,
        /// The amount in TKS, up to 9 decimals (1.5 = 1 500 000 000 base units).
        #[arg(long)]
        amount: String,
        /// The fee in TKS [default: the chain's fee floor, as the node reports it, if it is
        /// not above --max-fee].
        #[arg(long)]
        fee: Option<String>,
        /// The most fee this wallet signs without asking, in TKS. A node you do not control
        /// could report any fee floor; a fee above this cap needs --fee and a confirmation
        /// (or --yes).
        #[arg(long, env = "TAKSA_WALLET_MAX_FEE", default_value = MAX_FEE_DEFAULT_TKS)]
        max_fee: String,
        /// Sign a fee above --max-fee without asking (for scripts).
        #[arg(long)]
        yes: bool,
        /// A note of at most 256 bytes, public on chain.
        #[arg(long)]
        memo: Option<String>,
        /// The last block height that may include the transfer; after it, it expires.
        #[arg(long)]
        valid_until_height: Option<u64>,
        /// Print the hash once the node accepted it and return without waiting.
        #[arg(long)]
        no_wait: bool,
    },
    /// Show the transfers of a key name or an address, newest first.
    History {
        /// Key name or address.
        who: String,
        /// How many items.
        #[arg(long, default_value_t = HISTORY_LIMIT_DEFAULT)]
        limit: u32,
        /// Continue after this cursor (printed at the end of the previous page).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show the status of a transaction by hash.
    Status {
        /// The transaction hash, 0x + 64 hex.
        hash: String,
    },
    /// Print the receipt of a final transaction (JSON on standard output), which anyone can
    /// check with no node: `taksa verify-receipt receipt.json --genesis genesis.json`.
    Receipt {
        /// The transaction hash, 0x + 64 hex.
        hash: String,
    },
}

/// Runs one wallet command. Errors (including the node's refusals with their reason) are
/// returned, so the process exits non-zero.
pub(crate) async fn run(args: WalletArgs) -> anyhow::Result<()> {
    let ctx = Ctx::new(&args)?;
    match args.command {
        WalletCommand::New { name, hrp } => cmd_new(&ctx, &name, hrp).await,
        WalletCommand::Import { name, index, validator, hrp } => cmd_import(&ctx, &name, index, validator, hrp).await,
        WalletCommand::List => cmd_list(&ctx),
        WalletCommand::Balance { who } => cmd_balance(&ctx, &who).await,
        WalletCommand::Send { from, to, amount, fee, max_fee, yes, memo, valid_until_height, no_wait } => {
            let req = SendRequest { from, to, amount, fee, max_fee, yes, memo, valid_until_height };
            cmd_send(&ctx, req, no_wait).await
        }
        WalletCommand::History { who, limit, cursor } => cmd_history(&ctx, &who, limit, cursor).await,
        WalletCommand::Status { hash } => cmd_status(&ctx, &hash).await,
        WalletCommand::Receipt { hash } => cmd_receipt(&ctx, &hash).await,
    }
}

struct Ctx {
    rpc_url: String,
    keystore: Keystore,
    password_file: Option<PathBuf>,
}

impl Ctx {
    /// The node's endpoint, for messages.
    fn rpc_url(&self) -> &str {
        &self.rpc_url
    }

    fn new(args: &WalletArgs) -> anyhow::Result<Ctx> {
        let dir = match &args.keystore {
            Some(d) => d.clone(),
            None => default_keystore_dir()?,
        };
        Ok(Ctx { rpc_url: args.rpc.clone(), keystore: Keystore::new(dir), password_file: args.password_file.clone() })
    }

    fn client(&self) -> anyhow::Result<NodeClient> {
        NodeClient::new(&self.rpc_url)
    }

    async fn chain_info(&self) -> anyhow::Result<(NodeClient, ChainInfoJson)> {
        let client = self.client()?;
        let info = client.chain_info().await?;
        Ok((client, info))
    }

    fn password(&self, purpose: Purpose, name: &str) -> anyhow::Result<Zeroizing<String>> {
        prompt::password(self.password_file.as_deref(), purpose, &format!("key `{name}`"))
    }

    /// The address prefix for a new key: `--hrp`, else the node's.
    async fn hrp_for_new_key(&self, hrp: Option<String>) -> anyhow::Result<String> {
        if let Some(hrp) = hrp {
            Address::check_hrp(&hrp)?;
            return Ok(hrp);
        }
        match self.client()?.chain_info().await {
            Ok(info) => Ok(info.address_hrp),
            Err(e) => Err(e.context(format!(
                "the address prefix comes from the node at {}; when offline, pass --hrp tdev (dev chain) or --hrp tks \
                 (testnet)",
                self.rpc_url
            ))),
        }
    }

    /// Refuses a bad or taken name before any secret is generated or read.
    fn check_new_name(&self, name: &str) -> anyhow::Result<()> {
        check_name(name)?;
        if self.keystore.contains(name) {
            bail!("a key named `{name}` exists already in {}; choose another name", self.keystore.dir().display());
        }
        Ok(())
    }

    /// A key name in the keystore or an address of this network.
    fn resolve(&self, who: &str, hrp: &str) -> anyhow::Result<Address> {
        match Address::parse(who, hrp) {
            Ok(a) => Ok(a),
            Err(parse_err) => {
                if check_name(who).is_ok() && self.keystore.contains(who) {
                    return Ok(Address::from_public_key(self.keystore.info(who)?.public_key));
                }
                Err(anyhow::Error::new(parse_err).context(format!(
                    "`{who}` is neither an address of this network nor a key name in {}",
                    self.keystore.dir().display()
                )))
            }
        }
    }
}

fn default_keystore_dir() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    let home = home.context("HOME is not set: pass --keystore DIR or set TAKSA_KEYSTORE")?;
    Ok(PathBuf::from(home).join(".taksa").join("keystore"))
}

async fn cmd_new(ctx: &Ctx, name: &str, hrp: Option<String>) -> anyhow::Result<()> {
    ctx.check_new_name(name)?;
    let hrp = ctx.hrp_for_new_key(hrp).await?;
    let mnemonic = generate_mnemonic();
    let path = DerivationPath::account(0);
    let key = derive_keypair(&mnemonic, &path);
    let password = ctx.password(Purpose::Create, name)?;
    let info = ctx.keystore.create(name, &key, Some(&path.to_string()), &hrp, &password, KdfParams::RFC9106)?;
    let words = Zeroizing::new(mnemonic.to_string());
    println!("Created key `{name}`");
    println!("  address: {}", info.address);
    println!("  path:    {path}");
    println!("  file:    {}", info.file.display());
    println!();
    println!("Your recovery phrase (shown only this once):");
    println!();
    println!("  {}", words.as_str());
    println!();
    println!("Write these 24 words down and keep them offline. Anyone who has them controls the funds;");
    println!("without them (or this file and its password) the funds are lost. Restore with `taksa wallet import`.");
    Ok(())
}

async fn cmd_import(ctx: &Ctx, name: &str, index: u16, validator: bool, hrp: Option<String>) -> anyhow::Result<()> {
    ctx.check_new_name(name)?;
    let hrp = ctx.hrp_for_new_key(hrp).await?;
    let words = prompt::mnemonic_input()?;
    let mnemonic = parse_mnemonic(&words)?;
    let index = u32::from(index);
    let path = if validator { DerivationPath::validator(index) } else { DerivationPath::account(index) };
    let key = derive_keypair(&mnemonic, &path);
    let password = ctx.password(Purpose::Create, name)?;
    let info = ctx.keystore.create(name, &key, Some(&path.to_string()), &hrp, &password, KdfParams::RFC9106)?;
    println!("Imported key `{name}`");
    println!("  address: {}", info.address);
    println!("  path:    {path}");
    println!("  file:    {}", info.file.display());
    Ok(())
}

fn cmd_list(ctx: &Ctx) -> anyhow::Result<()> {
    let keys = ctx.keystore.list()?;
    if ctx.keystore.is_group_or_world_accessible() {
        eprintln!("warning: {} is readable by other users; run chmod 700 on it", ctx.keystore.dir().display());
    }
    if keys.is_empty() {
        println!("no keys in {} (create one with `taksa wallet new --name NAME`)", ctx.keystore.dir().display());
        return Ok(());
    }
    let width = keys.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, info) in keys {
        match info {
            Ok(i) => println!("{name:width$}  {}  {}", i.address, i.path.as_deref().unwrap_or("")),
            Err(e) => println!("{name:width$}  (unreadable: {e})"),
        }
    }
    Ok(())
}

async fn cmd_balance(ctx: &Ctx, who: &str) -> anyhow::Result<()> {
    let (client, info) = ctx.chain_info().await?;
    let address = ctx.resolve(who, &info.address_hrp)?.to_bech32(&info.address_hrp);
    let account = client.account(&address).await?;
    let balance = taksa_consensus::genesis::parse_amount(&account.balance)
        .with_context(|| format!("node sent balance `{}`", account.balance))?;
    println!("{address}");
    println!("  balance: {} {} ({balance} base units)", format_tks(balance), info.token_symbol);
    println!("  nonce:   {}", account.nonce);
    if account.pending > 0 {
        println!("  pending: {} (next nonce {})", account.pending, account.next_nonce);
    }
    Ok(())
}

async fn cmd_history(ctx: &Ctx, who: &str, limit: u32, cursor: Option<String>) -> anyhow::Result<()> {
    let (client, info) = ctx.chain_info().await?;
    let address = ctx.resolve(who, &info.address_hrp)?.to_bech32(&info.address_hrp);
    let page = client.history(&address, cursor, limit).await?;
    if page.items.is_empty() {
        println!("no transfers for {address}");
    }
    for item in &page.items {
        let (arrow, other) = match item.direction {
            DirectionJson::Sent => ("->", item.to.as_str()),
            DirectionJson::Received => ("<-", item.from.as_str()),
            DirectionJson::ToSelf => ("<>", item.to.as_str()),
        };
        let amount =
            taksa_consensus::genesis::parse_amount(&item.amount).map_or_else(|_| item.amount.clone(), format_tks);
        let fee = taksa_consensus::genesis::parse_amount(&item.fee).map_or_else(|_| item.fee.clone(), format_tks);
        let memo = item.memo.as_deref().map(|m| format!("  memo: {m:?}")).unwrap_or_default();
        let time = format!("  {}", utc_date(item.timestamp_ms));
        println!(
            "#{:<8} {} {arrow} {other}  {amount} {} (fee {fee}, nonce {}){time}{memo}",
            item.height, item.hash, info.token_symbol, item.nonce
        );
    }
    if let Some(next) = page.next_cursor {
        println!("more: --cursor {next}");
    }
    Ok(())
}

async fn cmd_status(ctx: &Ctx, hash: &str) -> anyhow::Result<()> {
    let hash = taksa_consensus::Hash::from_hex(hash).context("a transaction hash is 0x + 64 hex digits")?;
    let client = ctx.client()?;
    match client.tx_status(&hash).await? {
        None => bail!("the node at {} does not know transaction {hash}", client.url()),
        Some(s) => {
            println!("{hash}: {}", s.status.as_str());
            if let (Some(h), Some(i)) = (s.height, s.index) {
                println!("  height {h}, index {i}");
            }
            if let Some(m) = s.message.or(s.reason) {
                println!("  {m}");
            }
            Ok(())
        }
    }
}

async fn cmd_receipt(ctx: &Ctx, hash: &str) -> anyhow::Result<()> {
    let hash = taksa_consensus::Hash::from_hex(hash).context("a transaction hash is 0x + 64 hex digits")?;
    let receipt = ctx.client()?.tx_proof(&hash).await?;
    println!("{}", serde_json::to_string_pretty(&receipt)?);
    // The dev chain's genesis is built in: `--dev` names it.
    let genesis = if receipt.chain_id == crate::devnet::DEV_CHAIN_ID { "--dev" } else { "--genesis genesis.json" };
    eprintln!(
        "receipt of {hash} ({} descendant headers to a finalization); check it with no node: taksa verify-receipt \
         FILE {genesis}",
        receipt.headers_to_final.len()
    );
    Ok(())
}

/// What `send` was asked to do, before it is checked.
struct SendRequest {
    from: String,
    to: String,
    amount: String,
    fee: Option<String>,
    max_fee: String,
    yes: bool,
    memo: Option<String>,
    valid_until_height: Option<u64>,
}

async fn cmd_send(ctx: &Ctx, req: SendRequest, no_wait: bool) -> anyhow::Result<()> {
    let (client, info) = ctx.chain_info().await?;
    let genesis_hash = info.genesis()?;
    let fee_floor = info.fee_floor_units()?;
    let to = ctx.resolve(&req.to, &info.address_hrp)?;
    if !taksa_consensus::crypto::is_account_key(&to.0) {
        bail!(
            "--to {} is not a valid ed25519 public key: no one could ever spend funds sent there; check the address",
            req.to
        );
    }
    let amount = parse_tks(&req.amount).context("--amount")?;
    let max_fee = parse_tks(&req.max_fee).context("--max-fee")?;
    // A transfer that creates the recipient's account pays the account-creation fee.
    let creates = amount > 0 && {
        let account = client.account(&to.to_bech32(&info.address_hrp)).await?;
        account.balance == "0" && account.nonce == 0
    };
    let default_fee = if creates { info.account_creation_fee_units()?.max(fee_floor) } else { fee_floor };
    let fee = match &req.fee {
        Some(f) => parse_tks(f).context("--fee")?,
        None if default_fee > max_fee => bail!(
            "the node at {} reports a fee (floor or account-creation fee) of {} TKS, above this wallet's fee cap of {} TKS. A node you do not \
             control can report any floor to take your balance in fees: check the network's real floor, then pass \
             --fee with it (or raise --max-fee)",
            ctx.rpc_url(),
            format_tks(default_fee),
            format_tks(max_fee)
        ),
        None => default_fee,
    };
    if fee < fee_floor {
        bail!("--fee {} TKS is below the chain's fee floor {} TKS", format_tks(fee), format_tks(fee_floor));
    }
    if fee > max_fee && !req.yes {
        confirm_fee(fee, max_fee)?;
    }
    if let Some(m) = &req.memo {
        if m.len() > MEMO_BYTES_MAX {
            bail!("--memo is {} bytes; the limit is {MEMO_BYTES_MAX}", m.len());
        }
    }
    check_name(&req.from).context("--from takes a key name")?;
    let sender = ctx.keystore.info(&req.from)?;
    let from = Address::from_public_key(sender.public_key);
    let nonce = client.next_nonce(&from.to_bech32(&info.address_hrp)).await?;
    // Shown before the key is unlocked: nothing is signed that was not shown.
    let why = if creates { ", which creates the recipient's account" } else { "" };
    eprintln!(
        "sending {} {} from {} to {}, fee {} {}{why} (nonce {nonce})",
        format_tks(amount),
        info.token_symbol,
        from.to_bech32(&info.address_hrp),
        to.to_bech32(&info.address_hrp),
        format_tks(fee),
        info.token_symbol
    );
    let password = ctx.password(Purpose::Unlock, &req.from)?;
    let key = ctx.keystore.load(&req.from, &password)?;
    let tx = Transaction {
        chain_id: info.chain_id.clone(),
        from,
        to,
        amount,
        fee,
        nonce,
        valid_until_height: req.valid_until_height,
        memo: req.memo,
        action: None,
    };
    let signed = tx.sign(&key, &genesis_hash);
    signed
        .check_stateless(&info.chain_id, &genesis_hash, fee_floor)
        .map_err(|e| anyhow::anyhow!("refusing to send: {e} (reason: {})", e.reason()))?;
    let hash = signed.hash();
    let node_hash = client.submit(&signed.encode()).await?;
    if !node_hash.eq_ignore_ascii_case(&hash.to_hex()) {
        eprintln!("warning: the node reports hash {node_hash}, this wallet computed {hash}");
    }
    println!("submitted {hash}");
    println!(
        "  {} {} from {} to {} (fee {}, nonce {nonce})",
        format_tks(amount),
        info.token_symbol,
        from.to_bech32(&info.address_hrp),
        to.to_bech32(&info.address_hrp),
        format_tks(fee)
    );
    if no_wait {
        return Ok(());
    }
    wait_for_finality(&client, &signed).await
}

/// Asks on the terminal before a fee above the cap is signed; refuses when no one can answer.
fn confirm_fee(fee: u128, max_fee: u128) -> anyhow::Result<()> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "the fee {} TKS is above this wallet's fee cap of {} TKS; pass --yes to sign it anyway, or raise --max-fee",
            format_tks(fee),
            format_tks(max_fee)
        );
    }
    eprint!(
        "The fee {} TKS is above this wallet's fee cap of {} TKS. Type yes to sign it: ",
        format_tks(fee),
        format_tks(max_fee)
    );
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer).context("reading the answer")?;
    if answer.trim() != "yes" {
        bail!("not sent: the fee was not confirmed");
    }
    Ok(())
}

/// A time in Unix milliseconds as a UTC date, `2026-11-28 17:36:36 UTC`.
pub(crate) fn utc_date(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = i64::try_from(days).unwrap_or(i64::MAX / 2) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Waits for the transaction's final status: told by the node over a WebSocket subscription
/// (`tx_subscribeStatus`), or, if the node cannot be reached that way, by asking every 200 ms.
async fn wait_for_finality(client: &NodeClient, signed: &SignedTransaction) -> anyhow::Result<()> {
    let start = Instant::now();
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!("waiting for finality…");
    }
    match client.follow_status(&signed.hash(), Duration::from_millis(FINALITY_TIMEOUT_MS)).await {
        Followed::Final(status) => report_final(signed, &status, Some(start)),
        Followed::TimedOut(state) => bail!(
            "transaction {} is not final after {} s (status {state}); it may still be included: check with \
             `taksa wallet status {}`",
            signed.hash(),
            FINALITY_TIMEOUT_MS / 1000,
            signed.hash()
        ),
        Followed::Unavailable(e) => {
            eprintln!("(cannot follow the status over a WebSocket: {e:#}; asking every {POLL_INTERVAL_MS} ms)");
            poll_for_finality(client, signed).await
        }
    }
}

/// Prints a final status, or turns a rejection into the error it is.
fn report_final(signed: &SignedTransaction, s: &TxStatusJson, since: Option<Instant>) -> anyhow::Result<()> {
    let hash = signed.hash();
    match s.status {
        TxStateJson::Finalized => {
            let after = since.map(|t| format!(" after {:.1} s", t.elapsed().as_secs_f64())).unwrap_or_default();
            println!(
                "finalized at height {} (index {}){after}; fee paid {} base units",
                s.height.map_or("?".into(), |h| h.to_string()),
                s.index.map_or("?".into(), |i| i.to_string()),
                signed.tx.fee
            );
            Ok(())
        }
        state => {
            let state = state.as_str();
            let why = s.message.clone().unwrap_or_default();
            let replaced = s.replaced_by.as_deref().map(|h| format!("; replaced by {h}")).unwrap_or_default();
            bail!("transaction {hash} {state}: {why} (reason: {}){replaced}", s.reason.as_deref().unwrap_or("unknown"))
        }
    }
}

async fn poll_for_finality(client: &NodeClient, signed: &SignedTransaction) -> anyhow::Result<()> {
    let hash = signed.hash();
    let start = Instant::now();
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_error: Option<anyhow::Error> = None;
    loop {
        let status = match client.tx_status(&hash).await {
            Ok(s) => s,
            Err(e) => {
                last_error = Some(e);
                None
            }
        };
        let state = status.as_ref().map_or("unknown", |s| s.status.as_str());
        if let Some(s) = status.as_ref().filter(|s| s.status.is_final()) {
            if progress {
                eprintln!();
            }
            return report_final(signed, s, Some(start));
        }
        let waited_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        if waited_ms >= FINALITY_TIMEOUT_MS {
            let cause = last_error.map(|e| format!("; last error: {e:#}")).unwrap_or_default();
            bail!(
                "transaction {hash} is not final after {} s (status {state}){cause}; it may still be included: check \
                 with `taksa wallet status {hash}`",
                FINALITY_TIMEOUT_MS / 1000
            );
        }
        if progress {
            eprint!("\rwaiting for finality: {:>5.1} s, status {state:<9}", start.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct TestCli {
        #[command(flatten)]
        wallet: WalletArgs,
    }

    #[test]
    fn history_times_are_utc_dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_date(1_767_225_600_000), "2026-01-01 00:00:00 UTC");
        assert_eq!(utc_date(951_782_400_000 + 3_723_000), "2000-02-29 01:02:03 UTC", "a leap day");
        assert_eq!(utc_date(1_798_761_599_999), "2026-12-31 23:59:59 UTC");
    }

    #[test]
    fn send_flags_parse_with_global_options_anywhere() {
        let cli = TestCli::try_parse_from([
            "taksa",
            "--rpc",
            "http://node:1",
            "send",
            "--from",
            "alice",
            "--to",
            "tdev1xyz",
            "--amount",
            "1.5",
            "--memo",
            "hi",
            "--no-wait",
            "--password-file",
            "/pw",
        ])
        .expect("parses");
        assert_eq!(cli.wallet.rpc, "http://node:1");
        assert_eq!(cli.wallet.password_file.as_deref(), Some(std::path::Path::new("/pw")));
        match cli.wallet.command {
            WalletCommand::Send { from, amount, fee, memo, no_wait, .. } => {
                assert_eq!(
                    (from.as_str(), amount.as_str(), fee, memo.as_deref(), no_wait),
                    ("alice", "1.5", None, Some("hi"), true)
                );
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn import_takes_an_account_index_and_a_validator_flag() {
        let cli = TestCli::try_parse_from(["taksa", "import", "--name", "v0", "--index", "3", "--validator"])
            .expect("parses");
        assert!(matches!(cli.wallet.command, WalletCommand::Import { index: 3, validator: true, .. }));
        assert!(TestCli::try_parse_from(["taksa", "import", "--name", "v0", "--index", "70000"]).is_err());
    }

    #[tokio::test]
    async fn new_key_needs_a_prefix_when_the_node_is_unreachable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = Ctx {
            rpc_url: "http://127.0.0.1:1".into(),
            keystore: Keystore::new(dir.path().to_owned()),
            password_file: None,
        };
        let err = ctx.hrp_for_new_key(None).await.expect_err("no node");
        assert!(format!("{err:#}").contains("--hrp"), "{err:#}");
        assert_eq!(ctx.hrp_for_new_key(Some("tks".into())).await.expect("explicit"), "tks");
        assert!(ctx.hrp_for_new_key(Some("Not Valid".into())).await.is_err());
    }

    #[test]
    fn names_and_addresses_both_resolve() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ks = Keystore::new(dir.path().to_owned());
        let key = taksa_consensus::Keypair::from_seed(&[5; 32]);
        ks.create("alice", &key, None, "tdev", "pw", KdfParams { m_kib: 64, t: 1, p: 1 }).expect("save");
        let ctx = Ctx { rpc_url: String::new(), keystore: ks, password_file: None };
        let addr = Address::from_public_key(key.public());
        assert_eq!(ctx.resolve("alice", "tks").expect("name"), addr, "a name resolves under any prefix");
        assert_eq!(ctx.resolve(&addr.to_bech32("tks"), "tks").expect("address"), addr);
        assert!(ctx.resolve(&addr.to_bech32("tdev"), "tks").is_err(), "another network's address is refused");
        assert!(ctx.resolve("bob", "tks").is_err());
    }
}
