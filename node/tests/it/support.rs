//! Starting `taksa dev` processes for tests and talking to them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ArrayParams;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde_json::Value;
use taksa_consensus::{Address, Hash, Keypair, Transaction};
use taksa_node::devnet;

pub(crate) const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_taksa")
}

/// A `taksa dev` process, killed by pid when dropped.
pub(crate) struct DevNode {
    pub(crate) child: Child,
    pub(crate) url: String,
    log_path: PathBuf,
}

impl DevNode {
    /// Starts `taksa dev` on a free port (127.0.0.1:0) with the given data folder.
    pub(crate) fn start(data_dir: &Path, block_time_ms: u64) -> DevNode {
        DevNode::start_with(data_dir, block_time_ms, &[])
    }

    /// As [`DevNode::start`], with more `taksa dev` options. Waits for the node's ready file
    /// (`--ready-file`), which names its RPC URL.
    pub(crate) fn start_with(data_dir: &Path, block_time_ms: u64, options: &[&str]) -> DevNode {
        let log_path = data_dir.with_extension(format!("log{}", Instant::now().elapsed().as_nanos()));
        let ready_path = data_dir.with_extension("ready.json");
        let _ = std::fs::remove_file(&ready_path);
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut child = Command::new(bin())
            .args(["dev", "--rpc-addr", "127.0.0.1:0", "--block-time-ms", &block_time_ms.to_string(), "--data-dir"])
            .arg(data_dir)
            .arg("--ready-file")
            .arg(&ready_path)
            .args(options)
            .env("TAKSA_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn taksa dev");
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            let ready = taksa_node::testnet::Ready::read(&ready_path).ok().flatten();
            if let Some(ready) = ready.filter(|r| r.pid == child.id()) {
                break ready.rpc_url;
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() >= deadline {
                let _ = child.kill();
                panic!(
                    "taksa dev did not write its ready file ({exited:?}); log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        DevNode { child, url, log_path }
    }

    pub(crate) fn client(&self) -> HttpClient {
        HttpClientBuilder::default().request_timeout(Duration::from_secs(10)).build(&self.url).expect("client")
    }

    /// SIGKILL: no chance to flush or clean up.
    pub(crate) fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit status.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "node did not stop within 20 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn call(client: &HttpClient, method: &str, params: ArrayParams) -> Result<Value, String> {
    client.request::<Value, _>(method, params).await.map_err(|e| e.to_string())
}

pub(crate) async fn finalized_height(client: &HttpClient) -> u64 {
    let info = call(client, "chain_getInfo", ArrayParams::new()).await.expect("chain_getInfo");
    info["finalizedHeight"].as_u64().expect("finalizedHeight")
}

/// Waits until `tx_get` reports a terminal status.
pub(crate) async fn wait_status(client: &HttpClient, hash: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut p = ArrayParams::new();
        p.insert(hash).expect("param");
        let r = call(client, "tx_get", p).await.expect("tx_get");
        if r["status"] != "pending" {
            return r;
        }
        assert!(Instant::now() < deadline, "{hash} still pending after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `taksa wallet …` with the test password and returns (success, stdout, stderr).
pub(crate) fn wallet(url: &str, keystore: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write as _;
    let mut child = Command::new(bin())
        .arg("wallet")
        .args(["--rpc", url, "--keystore"])
        .arg(keystore)
        .args(args)
        .env("TAKSA_PASSWORD", PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn taksa wallet");
    if let Some(input) = stdin {
        child.stdin.as_mut().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wallet output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn params(values: &[Value]) -> ArrayParams {
    let mut p = ArrayParams::new();
    for v in values {
        p.insert(v).expect("param");
    }
    p
}

/// A transfer on `chain_id` paying the account-creation fee, as `tx_submit` takes it (`0x…`).
pub(crate) fn signed_transfer(
    chain_id: &str,
    key: &Keypair,
    to: Address,
    amount: u128,
    nonce: u64,
    memo: Option<String>,
    genesis: &Hash,
) -> String {
    let tx = Transaction {
        chain_id: chain_id.into(),
        from: Address(key.public()),
        to,
        amount,
        fee: devnet::ACCOUNT_CREATION_FEE,
        nonce,
        valid_until_height: None,
        memo,
        action: None,
    };
    format!("0x{}", hex::encode(tx.sign(key, genesis).encode()))
}

/// `GET path` on a node's RPC port over plain HTTP/1.1: the whole reply, head and body.
pub(crate) async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("request");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.expect("a UTF-8 reply");
    reply
}
