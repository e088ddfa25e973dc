//! What `taksa testnet` asks the running nodes over JSON-RPC: their status, when they have all
//! finalized a height, and the demo (transfers through different nodes, then every node agrees).

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use taksa_consensus::{Address, Hash, Transaction};
use taksa_rpc::api::{BlockRef, Param, TaksaApiClient as _};
use taksa_rpc::json::TxStateJson;

use super::Testnet;
use crate::devnet;

/// What `taksa testnet status` shows of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// Its index.
    pub index: usize,
    /// "validator" or "full".
    pub role: &'static str,
    /// Its pid while it runs.
    pub pid: Option<u32>,
    /// Its RPC URL.
    pub rpc_url: String,
    /// `(head height, finalized height, head hash, peers, view)` when it answers.
    pub chain: Option<(u64, u64, String, usize, u64)>,
}

/// What the demo did and saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoReport {
    /// The nodes each transfer went through, with its hash and final height.
    pub transfers: Vec<(usize, String, u64)>,
    /// The height every running node was checked at.
    pub height: u64,
    /// The block hash there, the same on every node.
    pub hash: String,
    /// The recipient's balance there, the same on every node.
    pub balance: u128,
    /// The nodes checked.
    pub nodes: Vec<usize>,
}

/// A client of the node at `url`.
pub(super) fn client(url: &str) -> anyhow::Result<HttpClient> {
    HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(5))
        .build(url)
        .with_context(|| format!("bad RPC URL {url}"))
}

impl Testnet {
    /// Every node's status; a node that does not answer has `chain: None`.
    pub async fn status(&self) -> Vec<NodeStatus> {
        let mut out = Vec::new();
        for i in 0..self.nodes().len() {
            let pid = self.pid(i);
            let rpc_url = self.rpc_url(i);
            let chain = match (pid, client(&rpc_url)) {
                (Some(_), Ok(c)) => node_chain(&c).await,
                _ => None,
            };
            out.push(NodeStatus { index: i, role: self.nodes()[i].role(), pid, rpc_url, chain });
        }
        out
    }

    /// Waits until every node in `nodes` has finalized `height`.
    pub async fn wait_finalized(&self, nodes: &[usize], height: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut lowest = u64::MAX;
            for &i in nodes {
                let h = match client(&self.rpc_url(i)) {
                    Ok(c) => c.chain_get_info().await.map_or(0, |info| info.finalized_height),
                    Err(_) => 0,
                };
                lowest = lowest.min(h);
            }
            if lowest >= height {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("nodes {nodes:?} did not all finalize height {height} within {timeout:?} (lowest: {lowest})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends `amount` from testnet account 0 to account 1 through each running node (at most
    /// five, at least two transfers), waits until each is final, then checks that every running
    /// node holds the same block and the same balance at the last one's height.
    pub async fn demo(&self, amount: u128) -> anyhow::Result<DemoReport> {
        let running: Vec<usize> = (0..self.nodes().len()).filter(|&i| self.pid(i).is_some()).collect();
        let Some(&first) = running.first() else {
            bail!("no node of {} is running: start the testnet first (taksa testnet up)", self.dir().display())
        };
        let mut via: Vec<usize> = running.iter().copied().take(5).collect();
        if via.len() < 2 {
            via.push(first);
        }
        let genesis = self.genesis().clone();
        let genesis_hash = genesis.hash();
        let (sender, recipient) = (devnet::testnet_account(0), devnet::testnet_account(1));
        let from = Address(sender.public());
        let to = Address(recipient.public());
        let c0 = client(&self.rpc_url(first))?;
        let before = balance(&c0, &to, &genesis.address_hrp).await?;
        let mut nonce =
            c0.account_get_nonce(Param::new(from.to_bech32(&genesis.address_hrp))).await.context("account_getNonce")?;
        let mut transfers = Vec::new();
        for &i in &via {
            let c = client(&self.rpc_url(i))?;
            let tx = Transaction {
                chain_id: genesis.chain_id.clone(),
                from,
                to,
                amount,
                fee: genesis.fee_floor,
                nonce,
                valid_until_height: None,
                memo: Some(format!("taksa testnet demo via node {i}")),
                action: None,
            };
            let raw = format!("0x{}", hex::encode(tx.sign(&sender, &genesis_hash).encode()));
            let hash = c.tx_submit(Param::new(raw)).await.with_context(|| format!("tx_submit to node {i}"))?;
            let height = wait_final(&c, &hash).await.with_context(|| format!("the transfer sent through node {i}"))?;
            transfers.push((i, hash, height));
            nonce += 1;
        }
        let height = transfers.iter().map(|t| t.2).max().unwrap_or(0);
        self.wait_finalized(&running, height, Duration::from_secs(60)).await?;
        let mut seen: Option<(String, u128)> = None;
        for &i in &running {
            let c = client(&self.rpc_url(i))?;
            let block =
                c.chain_get_block(Param::new(BlockRef::Height(height))).await.with_context(|| format!("node {i}"))?;
            let bal = balance(&c, &to, &genesis.address_hrp).await?;
            match &seen {
                None => seen = Some((block.hash, bal)),
                Some((h, b)) if *h != block.hash || *b != bal => {
                    bail!("node {i} disagrees at height {height}: block {} balance {bal}, not {h} and {b}", block.hash)
                }
                Some(_) => {}
            }
        }
        let (hash, balance) = seen.context("no node checked")?;
        let want = before + amount * via.len() as u128;
        if balance != want {
            bail!("the recipient holds {balance} base units, not {want}: a transfer was lost or doubled");
        }
        Ok(DemoReport { transfers, height, hash, balance, nodes: running })
    }
}

async fn node_chain(c: &HttpClient) -> Option<(u64, u64, String, usize, u64)> {
    let info = c.chain_get_info().await.ok()?;
    let peers = c.node_peers().await.map_or(0, |p| p.len());
    let view = c.consensus_get_status().await.map_or(0, |s| s.view);
    Some((info.head_height, info.finalized_height, info.head_hash, peers, view))
}

async fn balance(c: &HttpClient, who: &Address, hrp: &str) -> anyhow::Result<u128> {
    let text = c.account_get_balance(Param::new(who.to_bech32(hrp))).await.context("account_getBalance")?;
    text.parse().with_context(|| format!("the node sent balance {text:?}"))
}

/// Waits until the transaction is final; its height.
async fn wait_final(c: &HttpClient, hash: &str) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let _: Hash = Hash::from_hex(hash).with_context(|| format!("the node sent hash {hash:?}"))?;
    loop {
        let st = c.tx_get(Param::new(hash.to_owned())).await.context("tx_get")?;
        match st.status {
            TxStateJson::Finalized => return st.height.context("a final transaction without a height"),
            TxStateJson::Pending => {}
            other => bail!("{hash} is {} ({})", other.as_str(), st.message.unwrap_or_default()),
        }
        if Instant::now() >= deadline {
            bail!("{hash} not final after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
