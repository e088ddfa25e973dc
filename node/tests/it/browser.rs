//! The web explorer in a real browser: headless Chromium driven by Playwright
//! (`node/tests/browser/explorer.test.mjs`) against a real `taksa dev` node: the page opens, a
//! new block arrives live, a transaction sent by this test is found by the search box and its
//! page, block and sender's history show it.

use std::path::Path;
use std::process::Command;

use serde_json::json;
use taksa_consensus::{Address, Hash, Keypair};
use taksa_node::devnet;

use crate::support::{call, params, signed_transfer, wait_status, DevNode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_explorer_shows_live_blocks_and_finds_a_transaction_in_chromium() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run scripts/test.sh (it installs it), or `npm ci` in {}",
        dir.display()
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&tmp.path().join("data"), 500);
    let client = node.client();
    let info = call(&client, "chain_getInfo", params(&[])).await.expect("info");
    let genesis = Hash::from_hex(info["genesisHash"].as_str().expect("genesis")).expect("hash");
    let key = devnet::dev_account(6);
    let from = Address(key.public());
    let to = Address(Keypair::from_seed(&[91; 32]).public());
    let raw = signed_transfer(devnet::DEV_CHAIN_ID, &key, to, 1_234_000_000, 0, Some("browser test".into()), &genesis);
    let hash = call(&client, "tx_submit", params(&[json!(raw)])).await.expect("submitted");
    let hash = hash.as_str().expect("hash").to_owned();
    let status = wait_status(&client, &hash).await;
    assert_eq!(status["status"], "finalized", "{status}");

    let out = Command::new("node")
        .current_dir(&dir)
        .args(["explorer.test.mjs", "--url", &node.url, "--tx", &hash, "--address", &from.to_bech32("tdev")])
        .output()
        .expect("node runs (install Node.js: scripts/test.sh does)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "the browser test failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
}
