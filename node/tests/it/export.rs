//! `taksa export postgres` against a real PostgreSQL (Debian's `postgresql` package, started here
//! on a free loopback port in a temporary folder) and real nodes: the exporter killed with -9
//! again and again under load, the database stopped for 10 s under load, a node killed under the
//! exporter (it fails over to the next), and a node of another chain refused. After each, the
//! tables must equal the chain: every block once, every transfer once, and for every address the
//! same rows as `account_getHistory`.

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsonrpsee::http_client::HttpClient;
use serde_json::json;
use taksa_consensus::{Address, Hash, Keypair};
use taksa_node::devnet;
use tokio_postgres::NoTls;

use crate::support::{bin, call, finalized_height, params, signed_transfer, DevNode};
use crate::testnet::{exclusive, Testnet};

/// A PostgreSQL server of its own: initdb in a temporary folder, listening on a free loopback
/// port, run as the `postgres` user when the tests run as root (PostgreSQL refuses root).
struct Postgres {
    child: Option<Child>,
    bin_dir: PathBuf,
    data: PathBuf,
    port: u16,
    owner: Option<(u32, u32)>,
    dir: tempfile::TempDir,
}

impl Postgres {
    fn start() -> Postgres {
        let bin_dir = postgres_bin_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        let owner = if effective_uid() == 0 { Some(postgres_user()) } else { None };
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown the database folder");
        }
        let data = dir.path().join("data");
        let mut initdb = Command::new(bin_dir.join("initdb"));
        initdb
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C", "-D"])
            .arg(&data)
            .current_dir(dir.path());
        let out = as_owner(&mut initdb, owner).output().expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port();
        let mut pg = Postgres { child: None, bin_dir, data, port, owner, dir };
        pg.spawn();
        pg
    }

    fn spawn(&mut self) {
        let log = File::options().create(true).append(true).open(self.dir.path().join("postgres.log")).expect("log");
        let mut cmd = Command::new(self.bin_dir.join("postgres"));
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c"])
            .arg(format!("unix_socket_directories={}", self.dir.path().display()))
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(as_owner(&mut cmd, self.owner).spawn().expect("start postgres"));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    async fn client(&self) -> tokio_postgres::Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match tokio_postgres::connect(&self.url(), NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(connection);
                    return client;
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "postgres not up after 30 s: {e}\n{}", self.log());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// A fast shutdown (SIGINT): open connections are cut, as in a database restart.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "INT");
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().expect("wait postgres").is_none() {
                assert!(Instant::now() < deadline, "postgres did not stop in 30 s");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Immediate shutdown: the server ends its backends and exits.
            signal(child.id(), "QUIT");
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn as_owner(cmd: &mut Command, owner: Option<(u32, u32)>) -> &mut Command {
    use std::os::unix::process::CommandExt as _;
    if let Some((uid, gid)) = owner {
        cmd.gid(gid).uid(uid);
    }
    cmd
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill").args([format!("-{name}"), pid.to_string()]).status();
}

/// Debian's server binaries (`/usr/lib/postgresql/N/bin`, newest N), or `initdb` on the PATH.
fn postgres_bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return dir;
    }
    let which = Command::new("sh").args(["-c", "command -v initdb"]).output().expect("sh");
    let path = String::from_utf8_lossy(&which.stdout).trim().to_owned();
    assert!(
        !path.is_empty(),
        "PostgreSQL's server is not installed: scripts/test.sh installs it (apt-get install postgresql)"
    );
    Path::new(&path).parent().expect("bin dir").to_owned()
}

fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("Uid:")).expect("Uid line");
    line.split_whitespace().nth(2).expect("effective uid").parse().expect("uid")
}

/// The `postgres` user's uid and gid (Debian's package creates it).
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("no `postgres` user to run PostgreSQL as (tests run as root): apt-get install postgresql");
    let fields: Vec<&str> = line.split(':').collect();
    (fields[2].parse().expect("uid"), fields[3].parse().expect("gid"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A `taksa export postgres` process, its output appended to `log`, killed by pid when dropped.
struct Exporter(Child);

impl Exporter {
    fn start(rpc: &[&str], database: &str, log: &Path, extra: &[&str]) -> Exporter {
        let out = File::options().create(true).append(true).open(log).expect("exporter log");
        let mut cmd = Command::new(bin());
        cmd.args(["export", "postgres", "--database", database]);
        for url in rpc {
            cmd.args(["--rpc", url]);
        }
        let child = cmd
            .args(extra)
            .env("TAKSA_LOG", "info")
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("spawn taksa export");
        Exporter(child)
    }

    fn kill_9(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    fn wait(mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().expect("wait exporter") {
                return status;
            }
            assert!(Instant::now() < deadline, "the exporter did not finish within {within:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Transfers from `senders` to `recipients` in rounds, one per sender a round, `pace` apart;
/// returns every hash submitted.
async fn load(
    client: HttpClient,
    chain_id: &'static str,
    senders: Vec<Keypair>,
    recipients: Vec<Address>,
    rounds: u64,
    pace: Duration,
) -> Vec<String> {
    let info = call(&client, "chain_getInfo", params(&[])).await.expect("info");
    let genesis = Hash::from_hex(info["genesisHash"].as_str().expect("genesis")).expect("hash");
    let mut hashes = Vec::new();
    for nonce in 0..rounds {
        for (s, key) in senders.iter().enumerate() {
            let to = recipients[(nonce as usize + s) % recipients.len()];
            // Some memos hold U+0000, which the chain allows and PostgreSQL's text does not.
            let memo = match nonce % 3 {
                0 => Some(format!("round {nonce}")),
                1 => Some(format!("nul \u{0} in round {nonce}")),
                _ => None,
            };
            let raw = signed_transfer(chain_id, key, to, 1 + u128::from(nonce), nonce, memo, &genesis);
            let h = call(&client, "tx_submit", params(&[json!(raw)])).await.expect("tx_submit");
            hashes.push(h.as_str().expect("hash").to_owned());
        }
        tokio::time::sleep(pace).await;
    }
    hashes
}

fn recipients(seed: u8, n: u8) -> Vec<Address> {
    (0..n).map(|i| Address(Keypair::from_seed(&[seed.wrapping_add(i); 32]).public())).collect()
}

/// Waits until every hash is final on the node; returns the finalized height then.
async fn all_final(client: &HttpClient, hashes: &[String]) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    for h in hashes {
        loop {
            let r = call(client, "tx_get", params(&[json!(h)])).await.expect("tx_get");
            if r["status"] == "finalized" {
                break;
            }
            assert_eq!(r["status"], "pending", "{h}: {r}");
            assert!(Instant::now() < deadline, "{h} not final after 60 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    finalized_height(client).await
}

/// The exported height now (0 before the first block).
async fn exported_height(db: &tokio_postgres::Client) -> u64 {
    match db.query_one("SELECT coalesce(height, 0) FROM taksa.export_state", &[]).await {
        Ok(row) => u64::try_from(row.get::<_, i64>(0)).expect("height"),
        Err(_) => 0,
    }
}

/// The exported height, once it reaches `height` (waiting up to `within`).
async fn exported_to(db: &tokio_postgres::Client, height: u64, within: Duration, log: &Path) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(row) = db.query_one("SELECT coalesce(height, -1) FROM taksa.export_state", &[]).await {
            let h: i64 = row.get(0);
            if h >= 0 && h as u64 >= height {
                return h as u64;
            }
        }
        assert!(
            Instant::now() < deadline,
            "not exported to {height} within {within:?}; exporter log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The tables equal the chain up to the exported height: the blocks (hash, transaction count,
/// cursor) at every height once, the stored cursor the last block's, every submitted transfer
/// exactly once, and for each address the rows `account_getHistory` lists, in the same order.
async fn assert_tables_equal_chain(client: &HttpClient, db: &tokio_postgres::Client, hashes: &[String]) {
    let state = db.query_one("SELECT height, cursor FROM taksa.export_state", &[]).await.expect("state");
    let height = u64::try_from(state.get::<_, i64>(0)).expect("height");
    let cursor: String = state.get(1);

    let rows =
        db.query("SELECT height, hash, tx_count, cursor FROM taksa.blocks ORDER BY height", &[]).await.expect("q");
    let stored: Vec<(u64, String, u32, String)> = rows
        .iter()
        .map(|r| {
            let h: i64 = r.get(0);
            let n: i32 = r.get(2);
            (h as u64, r.get(1), n as u32, r.get(3))
        })
        .collect();
    let first = stored.first().expect("blocks exported").0;
    assert!(first <= 1, "the export starts at height {first}");
    let heights: Vec<u64> = stored.iter().map(|b| b.0).collect();
    assert_eq!(heights, (first..=height).collect::<Vec<_>>(), "every height once, none missing");
    assert_eq!(stored.last().expect("last").3, cursor, "the stored cursor is the last block's");

    // The chain's summaries, newest first in pages of 100.
    let mut chain = Vec::new();
    let mut before = height + 1;
    while before > first {
        let page = call(client, "explorer_recentBlocks", params(&[json!({"limit": 100, "beforeHeight": before})]))
            .await
            .expect("recentBlocks");
        let page = page["blocks"].as_array().expect("blocks").clone();
        assert!(!page.is_empty(), "no blocks below {before}");
        for b in &page {
            chain.push((
                b["height"].as_u64().expect("height"),
                b["hash"].as_str().expect("hash").to_owned(),
                b["txCount"].as_u64().expect("txCount") as u32,
                b["cursor"].as_str().expect("cursor").to_owned(),
            ));
        }
        before = page.last().expect("last")["height"].as_u64().expect("height");
    }
    chain.retain(|b| b.0 >= first);
    chain.reverse();
    assert_eq!(stored, chain, "the blocks table equals the chain");

    let all: Vec<String> =
        db.query("SELECT hash FROM taksa.transfers", &[]).await.expect("q").iter().map(|r| r.get(0)).collect();
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "no transfer twice");
    let submitted: HashSet<&String> = hashes.iter().collect();
    assert_eq!(distinct, submitted, "every submitted transfer once, nothing else");

    let addresses: BTreeSet<String> = db
        .query("SELECT from_address FROM taksa.transfers UNION SELECT to_address FROM taksa.transfers", &[])
        .await
        .expect("q")
        .iter()
        .map(|r| r.get(0))
        .collect();
    for address in &addresses {
        let mut history = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let options = match &cursor {
                Some(c) => json!({"cursor": c, "limit": 100}),
                None => json!({"order": "oldest", "limit": 100}),
            };
            let page = call(client, "account_getHistory", params(&[json!(address), options])).await.expect("history");
            for i in page["items"].as_array().expect("items") {
                history.push((
                    i["hash"].as_str().expect("hash").to_owned(),
                    i["height"].as_u64().expect("height"),
                    i["index"].as_u64().expect("index"),
                    i["from"].as_str().expect("from").to_owned(),
                    i["to"].as_str().expect("to").to_owned(),
                    i["amount"].as_str().expect("amount").to_owned(),
                    i["fee"].as_str().expect("fee").to_owned(),
                    i["nonce"].as_u64().expect("nonce").to_string(),
                    i["memo"].as_str().map(str::to_owned),
                ));
            }
            match page["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        history.retain(|h| h.1 <= height);
        let rows = db
            .query(
                "SELECT hash, height, tx_index, from_address, to_address, amount::text, fee::text, nonce::text, memo_raw,
                        memo
                 FROM taksa.transfers WHERE from_address = $1 OR to_address = $1 ORDER BY height, tx_index",
                &[address],
            )
            .await
            .expect("q");
        let exported: Vec<_> = rows
            .iter()
            .map(|r| {
                let h: i64 = r.get(1);
                let i: i32 = r.get(2);
                let raw: Option<Vec<u8>> = r.get(8);
                let memo = raw.map(|b| String::from_utf8(b).expect("memo_raw holds the memo's UTF-8"));
                let shown: Option<String> = r.get(9);
                assert_eq!(shown, memo.as_ref().map(|m| m.replace('\0', "\u{FFFD}")), "memo is memo_raw without NUL");
                (r.get(0), h as u64, i as u64, r.get(3), r.get(4), r.get(5), r.get(6), r.get(7), memo)
            })
            .collect();
        assert_eq!(exported, history, "{address}: the rows equal account_getHistory");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_killed_with_9_again_and_again_under_load_resumes_with_nothing_lost_or_doubled() {
    let pg = Postgres::start();
    let db = pg.client().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&tmp.path().join("data"), 100);
    let log = tmp.path().join("exporter.log");
    let senders = (0..4).map(devnet::dev_account).collect();
    let load = tokio::spawn(load(
        node.client(),
        devnet::DEV_CHAIN_ID,
        senders,
        recipients(40, 12),
        50,
        Duration::from_millis(150),
    ));

    let mut exporter = Exporter::start(&[&node.url], &pg.url(), &log, &[]);
    let mut kills = 0;
    for pause_ms in [300, 700, 100, 900, 500, 0] {
        // Each kill lands on an exporter that is writing: it has moved the cursor since its start.
        let before = exported_height(&db).await;
        exported_to(&db, before + 1, Duration::from_secs(30), &log).await;
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        exporter.kill_9();
        kills += 1;
        exporter = Exporter::start(&[&node.url], &pg.url(), &log, &[]);
    }
    let hashes = load.await.expect("load");
    let height = all_final(&node.client(), &hashes).await;
    let exported = exported_to(&db, height, Duration::from_secs(60), &log).await;
    drop(exporter);
    eprintln!("{} transfers to height {exported} exported across {kills} kill -9s", hashes.len());
    assert_tables_equal_chain(&node.client(), &db, &hashes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_waits_out_a_10_s_database_outage_under_load_with_nothing_lost_or_doubled() {
    let mut pg = Postgres::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&tmp.path().join("data"), 100);
    let log = tmp.path().join("exporter.log");
    let senders = (4..7).map(devnet::dev_account).collect();
    let load = tokio::spawn(load(
        node.client(),
        devnet::DEV_CHAIN_ID,
        senders,
        recipients(80, 9),
        80,
        Duration::from_millis(200),
    ));
    let exporter = Exporter::start(&[&node.url], &pg.url(), &log, &[]);
    let db = pg.client().await;
    exported_to(&db, 3, Duration::from_secs(30), &log).await;
    drop(db);

    pg.stop();
    let stopped_at = finalized_height(&node.client()).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let finalized_meanwhile = finalized_height(&node.client()).await - stopped_at;
    pg.spawn();

    let hashes = load.await.expect("load");
    let height = all_final(&node.client(), &hashes).await;
    let db = pg.client().await;
    exported_to(&db, height, Duration::from_secs(60), &log).await;
    drop(exporter);
    let said = std::fs::read_to_string(&log).expect("log");
    assert!(said.contains("export: database:"), "the exporter never saw the outage:\n{said}");
    assert!(finalized_meanwhile >= 20, "the chain went on during the outage ({finalized_meanwhile} blocks)");
    eprintln!("{finalized_meanwhile} blocks finalized during the 10 s outage; {} transfers exported", hashes.len());
    assert_tables_equal_chain(&node.client(), &db, &hashes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_fails_over_to_the_next_node_when_its_node_dies() {
    let _one = exclusive().await;
    let pg = Postgres::start();
    let db = pg.client().await;
    let mut net = Testnet::start(4, 0, 200);
    net.wait_finalized(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await;
    let log = net.scratch().join("exporter.log");
    let senders = (0..3).map(devnet::testnet_account).collect();
    let load = tokio::spawn(load(
        net.client(1),
        devnet::TESTNET_CHAIN_ID,
        senders,
        recipients(120, 6),
        30,
        Duration::from_millis(200),
    ));
    // A dead address first: the exporter must pass over it too.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let (url0, url1) = (net.url(0), net.url(1));
    let exporter = Exporter::start(&[&url0, &dead, &url1], &pg.url(), &log, &[]);
    exported_to(&db, 4, Duration::from_secs(30), &log).await;
    net.kill_9(0);
    let hashes = load.await.expect("load");
    let height = all_final(&net.client(1), &hashes).await;
    exported_to(&db, height, Duration::from_secs(60), &log).await;
    drop(exporter);
    let said = std::fs::read_to_string(&log).expect("log");
    assert!(said.contains(&format!("export: node ws://{}", url0.trim_start_matches("http://"))), "{said}");
    assert_tables_equal_chain(&net.client(1), &db, &hashes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_refuses_a_node_whose_chain_does_not_extend_the_exported_one() {
    let pg = Postgres::start();
    let db = pg.client().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    // Two dev chains from the same genesis: the same cursors, different blocks.
    let a = DevNode::start(&tmp.path().join("a"), 100);
    let b = DevNode::start(&tmp.path().join("b"), 100);
    let log = tmp.path().join("exporter.log");
    let status = Exporter::start(&[&a.url], &pg.url(), &log, &["--stop-at-height", "5"]).wait(Duration::from_secs(60));
    assert!(status.success(), "{}", std::fs::read_to_string(&log).unwrap_or_default());
    let before = db.query_one("SELECT height, cursor FROM taksa.export_state", &[]).await.expect("state");
    let before: (i64, String) = (before.get(0), before.get(1));
    assert_eq!(before.0, 5, "--stop-at-height stops there");

    let other = Exporter::start(&[&b.url], &pg.url(), &log, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("names parent") {
        assert!(
            Instant::now() < deadline,
            "the other chain was not refused:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(other);
    let after = db.query_one("SELECT height, cursor FROM taksa.export_state", &[]).await.expect("state");
    assert_eq!((after.get::<_, i64>(0), after.get::<_, String>(1)), before, "nothing of the other chain written");
    let blocks: i64 = db.query_one("SELECT count(*) FROM taksa.blocks", &[]).await.expect("count").get(0);
    assert!(blocks <= 6, "{blocks} blocks");
    drop(a);
}

/// What a fake node in front of a real one does to the events it passes on.
#[derive(Clone, Copy)]
enum Mischief {
    /// Accepts the subscription and sends nothing, while reporting the real chain's height.
    Withhold,
    /// Passes every event on but the first transfer of the first block that has any.
    DropTransfer,
    /// Answers every subscription with a `lagged` notice.
    Lagged,
}

/// A JSON-RPC server on a free loopback port that answers `chain_getInfo` as `real` does and
/// serves `events_subscribe` from `real`'s stream with `mischief` done to it. Returns its URL.
async fn fake_node(real: &str, mischief: Mischief) -> (String, jsonrpsee::server::ServerHandle) {
    use jsonrpsee::core::client::{ClientT as _, SubscriptionClientT as _};
    use jsonrpsee::server::{RpcModule, Server, SubscriptionMessage};

    let server = Server::builder().build("127.0.0.1:0").await.expect("fake server");
    let url = format!("http://{}", server.local_addr().expect("addr"));
    let real_ws = real.replacen("http://", "ws://", 1);
    let mut module = RpcModule::new(real_ws);
    module
        .register_async_method("chain_getInfo", |_, real, _| async move {
            let c = jsonrpsee::ws_client::WsClientBuilder::default().build(real.as_str()).await.expect("real node");
            c.request::<serde_json::Value, _>("chain_getInfo", params(&[])).await.expect("real chain_getInfo")
        })
        .expect("register");
    module
        .register_subscription(
            "events_subscribe",
            "events_event",
            "events_unsubscribe",
            move |p, pending, real, _| async move {
                let options: serde_json::Value = p.one().unwrap_or(serde_json::Value::Null);
                let Ok(sink) = pending.accept().await else { return };
                let send = |v: serde_json::Value| {
                    let raw = serde_json::value::to_raw_value(&v).expect("raw");
                    SubscriptionMessage::from(raw)
                };
                match mischief {
                    Mischief::Withhold => std::future::pending::<()>().await,
                    Mischief::Lagged => {
                        let notice = json!({"type": "lagged", "resumeCursor": null, "message": "read faster"});
                        let _ = sink.send(send(notice)).await;
                    }
                    Mischief::DropTransfer => {
                        let c =
                            jsonrpsee::ws_client::WsClientBuilder::default().build(real.as_str()).await.expect("real");
                        let mut sub = c
                            .subscribe::<serde_json::Value, _>(
                                "events_subscribe",
                                params(&[options]),
                                "events_unsubscribe",
                            )
                            .await
                            .expect("real subscription");
                        let mut dropped = false;
                        while let Some(Ok(event)) = sub.next().await {
                            if !dropped && event["type"] == "transfer" && event["index"] == 0 {
                                dropped = true;
                                continue;
                            }
                            if sink.send(send(event)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            },
        )
        .expect("register");
    (url, server.start(module))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_leaves_nodes_that_withhold_events_drop_a_transfer_or_keep_saying_lagged() {
    let pg = Postgres::start();
    let db = pg.client().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&tmp.path().join("data"), 100);
    let log = tmp.path().join("exporter.log");
    let senders = (7..10).map(devnet::dev_account).collect();
    let load = tokio::spawn(load(
        node.client(),
        devnet::DEV_CHAIN_ID,
        senders,
        recipients(160, 5),
        30,
        Duration::from_millis(300),
    ));
    let (withhold, _w) = fake_node(&node.url, Mischief::Withhold).await;
    let (drop_one, _d) = fake_node(&node.url, Mischief::DropTransfer).await;
    let (lagged, _l) = fake_node(&node.url, Mischief::Lagged).await;
    let genesis = tmp.path().join("genesis.json");
    let g = devnet::dev_genesis(100).to_file(None);
    std::fs::write(&genesis, serde_json::to_string(&g).expect("json")).expect("genesis");
    let genesis_arg = genesis.to_string_lossy().into_owned();
    let exporter =
        Exporter::start(&[&withhold, &drop_one, &lagged, &node.url], &pg.url(), &log, &["--genesis", &genesis_arg]);
    let hashes = load.await.expect("load");
    let height = all_final(&node.client(), &hashes).await;
    exported_to(&db, height, Duration::from_secs(90), &log).await;
    drop(exporter);
    let said = std::fs::read_to_string(&log).expect("log");
    for (what, line) in [
        ("the node that withholds", "withholding events"),
        ("the node that drops a transfer", "one is missing or repeated"),
        ("the node that keeps saying lagged", "said lagged before sending a block"),
    ] {
        assert!(said.contains(line), "{what} was not left:\n{said}");
    }
    assert_tables_equal_chain(&node.client(), &db, &hashes).await;
}
