//! Crash consistency: a writer process is killed (SIGKILL) while committing blocks; the store it
//! leaves must open (every open check passes) and hold exactly the chain up to some block at or
//! after the last one the writer reported as committed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::Chain;

/// The environment variable that hands the child its data folder.
const CRASH_DIR_ENV: &str = "TAKSA_STORAGE_CRASH_DIR";
/// The child reports this many commits before the parent kills it.
const COMMITS_BEFORE_KILL: u64 = 40;
/// The child stops on its own after this many blocks, so a parent that never kills it still
/// ends.
const CHILD_BLOCKS_MAX: u64 = 100_000;

/// The transfers of the block at `height`: deterministic, so the parent can rebuild the chain.
fn transfers(height: u64) -> Vec<(usize, usize, u128)> {
    let h = usize::try_from(height).expect("small height");
    (0..1 + h % 5).map(|i| ((h + i) % 4, (h + 2 * i + 1) % 4, u128::from(height) + i as u128)).collect()
}

/// Runs in the child process only (the parent starts it with `--ignored`): commits blocks as
/// fast as it can and prints each committed height.
#[test]
#[ignore = "run by killed_writer_leaves_a_consistent_store in a child process"]
fn crash_writer_child() {
    let dir = std::env::var(CRASH_DIR_ENV).expect("the parent test sets the data folder");
    let mut chain = Chain::new();
    let store = chain.open(Path::new(&dir));
    for height in 1..=CHILD_BLOCKS_MAX {
        chain.commit_next(&store, &transfers(height));
        println!("committed {height}");
    }
}

#[test]
fn killed_writer_leaves_a_consistent_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args(["crash::crash_writer_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut reported: u64 = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("reads child output");
        if let Some(height) = line.strip_prefix("committed ").and_then(|h| h.parse::<u64>().ok()) {
            reported = height;
            if reported >= COMMITS_BEFORE_KILL {
                break;
            }
        }
    }
    // SIGKILL mid-stream: the child is committing the next blocks right now.
    child.kill().expect("kills the child");
    child.wait().expect("child exits");
    assert!(reported >= COMMITS_BEFORE_KILL, "the child reported only {reported} commits");

    let mut chain = Chain::new();
    let store = chain.open(dir.path());
    let head = store.head().height;
    assert!(head >= reported, "head {head} lost commits the writer reported ({reported})");
    for height in 1..=head {
        let (block, _) = chain.next_block(&transfers(height));
        assert_eq!(store.hash_at(height).expect("reads"), Some(block.hash()), "block at height {height}");
    }
    chain.assert_matches(&store);
    // And the store keeps working after the crash.
    chain.commit_next(&store, &transfers(head + 1));
    chain.assert_matches(&store);
}
