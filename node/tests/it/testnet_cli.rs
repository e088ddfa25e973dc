//! `taksa testnet` as a user runs it, command by command, in a temporary folder: the same
//! library as the tests' networks, driven through its command line and its files alone.

use std::path::Path;
use std::process::Command;

use crate::support::bin;
use crate::testnet::exclusive;

/// Runs `taksa testnet --dir DIR ARGS`; returns stdout, or panics with stderr.
fn testnet(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(bin()).arg("testnet").arg("--dir").arg(dir).args(args).output().expect("run taksa testnet");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "taksa testnet {args:?} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

/// The pids the status table shows as running, by node.
fn running(status: &str) -> Vec<Option<u32>> {
    status
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            (words.get(2) == Some(&"running")).then(|| words[3].parse().expect("pid"))
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

/// Stops the testnet's nodes if the test ends early: they are not this process's children.
struct Down<'a>(&'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = Command::new(bin()).arg("testnet").arg("--dir").arg(self.0).arg("down").output();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testnet_up_status_kill_restart_wipe_demo_and_down_from_the_command_line() {
    let _one = exclusive().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    let _down = Down(&dir);
    // Below the kernel's ephemeral range (32768 and up), so that no other test's port 0 lands on
    // them between `init` picking them and a restart binding them again.
    let base = 21_000 + (std::process::id() % 2_000) as u16 * 2;
    let (rpc, p2p) = (base.to_string(), (base + 5_000).to_string());
    let up = testnet(&dir, &["up", "--block-time-ms", "200", "--rpc-port", &rpc, "--p2p-port", &p2p, "--full", "1"]);
    let pids = running(&up);
    assert_eq!(pids.len(), 5, "{up}");
    assert!(pids.iter().all(Option::is_some), "every node runs after up:\n{up}");
    for (i, pid) in pids.iter().enumerate() {
        let ready: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("node{i}/ready.json"))).expect("ready file"),
        )
        .expect("JSON");
        assert_eq!(ready["pid"].as_u64(), pid.map(u64::from), "node {i}'s ready file names its process");
    }

    testnet(&dir, &["kill", "1"]);
    let status = testnet(&dir, &["status"]);
    assert_eq!(running(&status)[1], None, "{status}");
    assert!(!alive(pids[1].expect("pid")), "node 1's process is gone");
    testnet(&dir, &["restart", "1"]);
    testnet(&dir, &["wipe", "3"]);
    assert!(!dir.join("node3/data").exists(), "wipe deletes the chain data");
    assert!(dir.join("node3/keystore/validator-3.json").exists(), "and keeps the key");
    testnet(&dir, &["restart", "3"]);

    let demo = testnet(&dir, &["demo"]);
    assert!(demo.contains("demo ok"), "{demo}");
    assert!(demo.contains("agree at height"), "{demo}");

    let status = testnet(&dir, &["status"]);
    let pids = running(&status);
    assert!(pids.iter().all(Option::is_some), "{status}");
    let down = testnet(&dir, &["down", "--delete"]);
    assert!(down.contains("stopped 5 node(s)"), "{down}");
    for pid in pids.into_iter().flatten() {
        assert!(!alive(pid), "down stops node pid {pid}");
    }
    assert!(!dir.exists(), "down --delete removes the folder");
}
