//! Reserved peers from a file (`taksa node --reserved-peers-file`): read at start, then looked at
//! every second, so that an operator, or a test partitioning a network, can restrict the node to
//! a set of peers and lift the restriction while it runs.
//!
//! The file lists one base58 peer id per line; blank lines and `#` comments are skipped; a line
//! `*` alone lifts the restriction. At start, a missing file or one that lists nobody means no
//! restriction. The node fails closed: at start an invalid file stops it (a typo must not leave
//! a validator open to everyone), and later an invalid, unreadable, emptied or deleted file is
//! ignored with a warning and the previous set stays, until the file lists peers again or says
//! `*`.

use std::io::{ErrorKind, Read as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use taksa_p2p::{Handle, PeerId};

/// How often the file is read again.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// A larger file is refused (a peer id takes about 53 bytes: this is room for some 20 000).
const FILE_BYTES_MAX: u64 = 1024 * 1024;

/// The reserved set, sorted and without duplicates; `None` lets any peer connect.
pub(crate) type Reserved = Option<Vec<PeerId>>;

/// A line of the file that is not a peer id.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadLine {
    /// Its number, from 1.
    pub(crate) line: usize,
    /// Why it was refused.
    pub(crate) reason: String,
}

/// What a valid file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Listing {
    /// No peer id and no `*`: at start no restriction, later no change.
    Nobody,
    /// `*`: any peer may connect.
    Anyone,
    /// Only these peers, sorted and without duplicates.
    Peers(Vec<PeerId>),
}

/// Parses the file's text.
pub(crate) fn parse(text: &str) -> Result<Listing, BadLine> {
    let mut peers = Vec::new();
    let mut anyone = None;
    for (index, line) in text.lines().enumerate() {
        let entry = line.split_once('#').map_or(line, |(entry, _comment)| entry).trim();
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            anyone = Some(index + 1);
            continue;
        }
        let peer = entry.parse::<PeerId>().map_err(|e| BadLine { line: index + 1, reason: e.to_string() })?;
        peers.push(peer);
    }
    peers.sort();
    peers.dedup();
    match (anyone, peers.is_empty()) {
        (Some(line), false) => {
            Err(BadLine { line, reason: "`*` allows any peer: list peer ids or `*`, not both".to_owned() })
        }
        (Some(_), true) => Ok(Listing::Anyone),
        (None, true) => Ok(Listing::Nobody),
        (None, false) => Ok(Listing::Peers(peers)),
    }
}

/// What one look at the file found.
#[derive(Clone, Debug, PartialEq, Eq)]
enum FileState {
    Missing,
    Text(String),
    Unreadable(String),
}

fn read_blocking(path: &Path) -> FileState {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return FileState::Missing,
        Err(e) => return FileState::Unreadable(e.to_string()),
    };
    let mut text = String::new();
    match file.take(FILE_BYTES_MAX + 1).read_to_string(&mut text) {
        Ok(len) if u64::try_from(len).unwrap_or(u64::MAX) > FILE_BYTES_MAX => {
            FileState::Unreadable(format!("larger than {FILE_BYTES_MAX} bytes"))
        }
        Ok(_) => FileState::Text(text),
        Err(e) => FileState::Unreadable(e.to_string()),
    }
}

async fn read(path: &Path) -> FileState {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || read_blocking(&path))
        .await
        .unwrap_or_else(|e| FileState::Unreadable(format!("the reading task failed: {e}")))
}

/// Follows the file: what the network was last told, and what the file held at the last look.
pub(crate) struct Watcher {
    path: PathBuf,
    current: Reserved,
    last: Option<FileState>,
}

impl Watcher {
    /// Reads the file at start; a file that is unreadable or has an invalid line is an error.
    pub(crate) async fn load(path: PathBuf) -> anyhow::Result<Watcher> {
        let state = read(&path).await;
        let current = match &state {
            FileState::Missing => None,
            FileState::Text(text) => match parse(text) {
                Ok(Listing::Peers(peers)) => Some(peers),
                Ok(Listing::Nobody | Listing::Anyone) => None,
                Err(bad) => anyhow::bail!("--reserved-peers-file {} line {}: {}", path.display(), bad.line, bad.reason),
            },
            FileState::Unreadable(reason) => {
                anyhow::bail!("cannot read --reserved-peers-file {}: {reason}", path.display())
            }
        };
        let watcher = Watcher { path, current, last: Some(state) };
        watcher.log_setting();
        Ok(watcher)
    }

    /// The setting the network starts with.
    pub(crate) fn reserved(&self) -> Reserved {
        self.current.clone()
    }

    /// Looks at the file every second and hands each new setting to the network; returns once
    /// the network has stopped.
    pub(crate) async fn run(mut self, handle: Handle) {
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let state = read(&self.path).await;
            let Some(wanted) = self.step(state) else { continue };
            match handle.set_reserved(wanted.clone()) {
                Ok(()) => self.applied(wanted),
                // The network's queue is full: forget this look so that the next one retries.
                Err(taksa_p2p::Error::Busy) => self.last = None,
                // The network has stopped: nothing is left to restrict.
                Err(_) => return,
            }
        }
    }

    /// The setting to apply after a look that found `state`, if it differs from the current one.
    /// An invalid version is logged once and otherwise ignored.
    fn step(&mut self, state: FileState) -> Option<Reserved> {
        if self.last.as_ref() == Some(&state) {
            return None;
        }
        let path = self.path.display().to_string();
        let keep = |why: &str| {
            if self.current.is_some() {
                tracing::warn!(target: "p2p", %path, "the reserved peers file {why}: the previous set stays; write `*` in it to allow any peer");
            }
            self.current.clone()
        };
        let wanted = match &state {
            FileState::Missing => keep("is gone"),
            FileState::Text(text) => match parse(text) {
                Ok(Listing::Peers(peers)) => Some(peers),
                Ok(Listing::Anyone) => None,
                Ok(Listing::Nobody) => keep("lists nobody"),
                Err(bad) => {
                    tracing::warn!(target: "p2p", %path, line = bad.line, reason = %bad.reason,
                        "invalid line in the reserved peers file: this version is ignored, the previous setting stays");
                    self.current.clone()
                }
            },
            FileState::Unreadable(reason) => {
                tracing::warn!(target: "p2p", %path, %reason,
                    "cannot read the reserved peers file: the previous setting stays");
                self.current.clone()
            }
        };
        self.last = Some(state);
        (wanted != self.current).then_some(wanted)
    }

    fn applied(&mut self, reserved: Reserved) {
        self.current = reserved;
        self.log_setting();
    }

    fn log_setting(&self) {
        let path = self.path.display().to_string();
        match &self.current {
            Some(peers) => tracing::info!(target: "p2p", %path, reserved = peers.len(),
                "reserved peers only: connecting to and accepting no other peer"),
            None => tracing::info!(target: "p2p", %path, "reserved peers: unrestricted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "12D3KooWR4gqATy2UShTaJqs6Cp9us1kEeRzGrpvozp774EQSkgx";
    const B: &str = "12D3KooWRsfn6XJKWeZ7NqjAPajC7bVZbefMdKEN5bSc83dpMnsH";

    fn peers(ids: &[&str]) -> Reserved {
        let mut peers: Vec<PeerId> = ids.iter().map(|id| id.parse().expect("a valid peer id")).collect();
        peers.sort();
        Some(peers)
    }

    fn listing(ids: &[&str]) -> Listing {
        Listing::Peers(peers(ids).expect("some"))
    }

    fn watcher(current: Reserved) -> Watcher {
        Watcher { path: PathBuf::from("reserved.txt"), current, last: Some(FileState::Missing) }
    }

    #[test]
    fn peer_ids_are_read_past_comments_blank_lines_and_duplicates() {
        let text = format!("# validators\n\n  {B}  \n{A} # node 0\n{B}\n");
        assert_eq!(parse(&text), Ok(listing(&[A, B])));
    }

    #[test]
    fn a_file_lists_nobody_anyone_or_peers_but_not_anyone_and_peers() {
        assert_eq!(parse(""), Ok(Listing::Nobody));
        assert_eq!(parse("# nobody yet\n\n   \n"), Ok(Listing::Nobody));
        assert_eq!(parse("* # anyone\n"), Ok(Listing::Anyone));
        assert_eq!(parse(&format!("{A}\n*\n")).map_err(|b| b.line), Err(2));
    }

    #[test]
    fn an_invalid_line_is_reported_with_its_number() {
        let bad = parse(&format!("{A}\n\nnot-a-peer-id\n{B}\n")).expect_err("line 3 is invalid");
        assert_eq!(bad.line, 3);
        assert!(bad.reason.contains("not-a-peer-id"), "{}", bad.reason);
    }

    #[test]
    fn invalid_or_unreadable_versions_keep_the_previous_setting() {
        let mut w = watcher(None);
        assert_eq!(w.step(FileState::Missing), None, "nothing changed");
        let wanted = w.step(FileState::Text(format!("{A}\n"))).expect("a new setting");
        assert_eq!(wanted, peers(&[A]));
        w.applied(wanted);

        assert_eq!(w.step(FileState::Text(format!("{A}\n{B}x\n"))), None, "an invalid version is ignored");
        assert_eq!(w.step(FileState::Unreadable("permission denied".into())), None);
        assert_eq!(w.reserved(), peers(&[A]));
        // The same set written differently is no change.
        assert_eq!(w.step(FileState::Text(format!("# again\n{A}\n"))), None);

        let wanted = w.step(FileState::Text(format!("{A}\n{B}\n"))).expect("a new setting");
        assert_eq!(wanted, peers(&[A, B]));
        w.applied(wanted);
        assert_eq!(w.step(FileState::Text(String::new())), None, "an emptied file keeps the set");
        assert_eq!(w.step(FileState::Missing), None, "a deleted file keeps the set");
        assert_eq!(w.reserved(), peers(&[A, B]));
        assert_eq!(w.step(FileState::Text("*\n".into())), Some(None), "only `*` lifts it");
        w.applied(None);
        assert_eq!(w.step(FileState::Text(format!("{B}\n"))), Some(peers(&[B])));
    }

    #[test]
    fn a_file_is_read_as_missing_whole_or_refused_when_too_large() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("reserved.txt");
        assert_eq!(read_blocking(&path), FileState::Missing);
        std::fs::write(&path, format!("{A}\n")).expect("written");
        assert_eq!(read_blocking(&path), FileState::Text(format!("{A}\n")));
        let len = usize::try_from(FILE_BYTES_MAX).expect("fits") + 1;
        std::fs::write(&path, "#".repeat(len)).expect("written");
        assert!(matches!(read_blocking(&path), FileState::Unreadable(_)));
    }

    #[tokio::test]
    async fn an_invalid_file_at_start_is_an_error_and_a_missing_one_no_restriction() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("reserved.txt");
        assert_eq!(Watcher::load(path.clone()).await.expect("a missing file is fine").reserved(), None);
        std::fs::write(&path, format!("{A}\nnonsense\n")).expect("written");
        let error = Watcher::load(path.clone()).await.err().expect("an invalid file is refused").to_string();
        assert!(error.contains("line 2"), "{error}");
        std::fs::write(&path, format!("{B}\n{A}\n")).expect("written");
        assert_eq!(Watcher::load(path).await.expect("a valid file").reserved(), peers(&[A, B]));
    }

    /// Whether `node` lists `peer` (`want`) or not (`!want`) within `secs` seconds.
    async fn becomes(node: &Handle, peer: PeerId, want: bool, secs: u64) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            if node.peers().await.iter().any(|p| p.peer == peer) == want {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_watcher_applies_each_valid_version_of_the_file_to_the_network() {
        let start = |seed: u8, bootnodes: Vec<String>| async move {
            let mut config =
                taksa_p2p::Config::new("127.0.0.1:0", "reserved-test", taksa_consensus::Hash([7; 32]), [seed; 32]);
            config.bootnodes = bootnodes;
            taksa_p2p::start(config).await.expect("the network starts")
        };
        let (node, _node_events) = start(1, Vec::new()).await;
        let addr = node.listen_addrs().await.into_iter().next().expect("a listen address");
        let (other, _other_events) = start(2, vec![addr]).await;
        let other_id = other.local_peer_id();

        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("reserved.txt");
        std::fs::write(&path, "# nobody yet\n").expect("written");
        let watcher = Watcher::load(path.clone()).await.expect("a valid file");
        assert_eq!(watcher.reserved(), None);
        tokio::spawn(watcher.run(node.clone()));
        assert!(becomes(&node, other_id, true, 10).await, "the peers never connected");

        std::fs::write(&path, format!("{A}\n")).expect("written");
        assert!(becomes(&node, other_id, false, 3).await, "a peer not listed stayed connected");
        // An invalid version keeps the list in force: the peer, which re-dials every 2 s, stays out.
        std::fs::write(&path, format!("{A}\n{other_id}\nnonsense\n")).expect("written");
        assert!(!becomes(&node, other_id, true, 3).await, "an invalid version of the file lifted the list");
        // Deleting the file keeps the list in force (fail closed); `*` lifts it.
        std::fs::remove_file(&path).expect("removed");
        assert!(!becomes(&node, other_id, true, 3).await, "deleting the file lifted the list");
        std::fs::write(&path, "*\n").expect("written");
        assert!(becomes(&node, other_id, true, 10).await, "`*` did not lift the list");
    }
}
