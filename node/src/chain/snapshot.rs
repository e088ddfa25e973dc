//! What the chain actor shows everyone else: an immutable [`ChainSnapshot`], published after
//! each step (after that step's disk writes), which readers clone as an `Arc` and never lock
//! across IO. The actor is the only writer of everything in it.

use std::collections::VecDeque;
use std::sync::Arc;

use taksa_consensus::chain::SyncView;
use taksa_consensus::engine::Status;
use taksa_consensus::pool::{Limits, Mempool};
use taksa_consensus::{Address, Evidence, ValidatorSet};
use tokio::sync::watch;

/// How many evidence items are kept for RPC.
const EVIDENCE_KEPT_MAX: usize = 1024;
/// How many recent finality lags the explorer's figure averages.
const FINALITY_LAGS_KEPT: usize = 100;

/// The chain as of the actor's latest step.
#[derive(Clone)]
pub(crate) struct ChainSnapshot {
    /// The engine's status; `None` until the actor's first step.
    pub(crate) status: Option<Status>,
    /// The epoch consensus runs: the epoch of the block after the head.
    pub(crate) epoch: u64,
    /// Its validator set: the one gossip of this epoch is checked against.
    pub(crate) validators: Arc<ValidatorSet>,
    /// Catch-up progress.
    pub(crate) sync: SyncView,
    /// Equivocation evidence, oldest first (the newest [`EVIDENCE_KEPT_MAX`]).
    pub(crate) evidence: Arc<[Evidence]>,
    /// When each validator (in the order of `validators`) last sent a valid consensus message
    /// here, Unix ms.
    pub(crate) last_seen_ms: Arc<[Option<u64>]>,
    /// Views this node left by timeout since it started.
    pub(crate) timeouts_total: u64,
    /// Commit time minus block timestamp, in ms, for the newest blocks committed live.
    pub(crate) finality_lags_ms: Arc<[u64]>,
    /// The pool (a persistent clone: it shares everything with the actor's and never changes).
    /// Its answers that read state (`next_nonce`) take the store, which may be a commit ahead.
    pub(crate) pool: Mempool,
}

/// The readers' side.
pub(crate) type SnapshotReader = watch::Receiver<Arc<ChainSnapshot>>;

/// The actor's side: keeps the lists the snapshot shows and publishes a new snapshot when
/// asked, rebuilding only the lists that changed since the last one.
pub(crate) struct Publisher {
    sender: watch::Sender<Arc<ChainSnapshot>>,
    epoch: u64,
    validators: Arc<ValidatorSet>,
    evidence: VecDeque<Evidence>,
    last_seen: Vec<Option<u64>>,
    lags: VecDeque<u64>,
    evidence_changed: bool,
    seen_changed: bool,
    lags_changed: bool,
}

impl Publisher {
    /// A publisher and its first (empty) snapshot's reader.
    pub(crate) fn new(epoch: u64, validators: Arc<ValidatorSet>) -> (Publisher, SnapshotReader) {
        let last_seen = vec![None; validators.len()];
        let first = ChainSnapshot {
            status: None,
            epoch,
            validators: Arc::clone(&validators),
            sync: SyncView::default(),
            evidence: Arc::from(Vec::new()),
            last_seen_ms: last_seen.clone().into(),
            timeouts_total: 0,
            finality_lags_ms: Arc::from(Vec::new()),
            pool: Mempool::new(Limits::default()),
        };
        let (sender, reader) = watch::channel(Arc::new(first));
        let publisher = Publisher {
            sender,
            epoch,
            validators,
            evidence: VecDeque::new(),
            last_seen,
            lags: VecDeque::with_capacity(FINALITY_LAGS_KEPT),
            evidence_changed: false,
            seen_changed: false,
            lags_changed: false,
        };
        (publisher, reader)
    }

    /// A new epoch with its set: the last-seen times of validators who stay are kept.
    pub(crate) fn set_epoch(&mut self, epoch: u64, validators: Arc<ValidatorSet>) {
        let seen: Vec<Option<u64>> = validators
            .addresses()
            .iter()
            .map(|a| self.validators.index_of(a).and_then(|i| self.last_seen.get(i).copied().flatten()))
            .collect();
        self.epoch = epoch;
        self.validators = validators;
        self.last_seen = seen;
        self.seen_changed = true;
    }

    /// Notes that `validator` sent a valid consensus message at `now_ms`.
    pub(crate) fn saw_validator(&mut self, validator: &Address, now_ms: u64) {
        if let Some(slot) = self.validators.index_of(validator).and_then(|i| self.last_seen.get_mut(i)) {
            *slot = Some(now_ms);
            self.seen_changed = true;
        }
    }

    /// Keeps an evidence item (dropping the oldest beyond the bound).
    pub(crate) fn evidence(&mut self, e: Evidence) {
        if self.evidence.len() >= EVIDENCE_KEPT_MAX {
            self.evidence.pop_front();
        }
        self.evidence.push_back(e);
        self.evidence_changed = true;
    }

    /// Records how long after its timestamp a block became final here.
    pub(crate) fn finality_lag(&mut self, lag_ms: u64) {
        if self.lags.len() >= FINALITY_LAGS_KEPT {
            self.lags.pop_front();
        }
        self.lags.push_back(lag_ms);
        self.lags_changed = true;
    }

    /// Publishes the chain as it is now; readers see it from their next read.
    pub(crate) fn publish(&mut self, status: Status, sync: SyncView, timeouts_total: u64, pool: Mempool) {
        let previous = Arc::clone(&self.sender.borrow());
        let snapshot = ChainSnapshot {
            status: Some(status),
            epoch: self.epoch,
            validators: Arc::clone(&self.validators),
            sync,
            evidence: if std::mem::take(&mut self.evidence_changed) {
                self.evidence.iter().cloned().collect()
            } else {
                Arc::clone(&previous.evidence)
            },
            last_seen_ms: if std::mem::take(&mut self.seen_changed) {
                self.last_seen.as_slice().into()
            } else {
                Arc::clone(&previous.last_seen_ms)
            },
            timeouts_total,
            finality_lags_ms: if std::mem::take(&mut self.lags_changed) {
                self.lags.iter().copied().collect()
            } else {
                Arc::clone(&previous.finality_lags_ms)
            },
            pool,
        };
        drop(previous);
        self.sender.send_replace(Arc::new(snapshot));
    }
}

#[cfg(test)]
mod tests {
    use taksa_consensus::{Hash, Keypair};

    use super::*;

    fn status() -> Status {
        Status {
            view: 3,
            leader: Address::default(),
            finalized_height: 2,
            finalized_view: 2,
            finalized_hash: Hash::ZERO,
            notarized_view: 2,
            is_validator: false,
            failed_views: 0,
            evidence_count: 0,
        }
    }

    fn pool() -> Mempool {
        Mempool::new(Limits::default())
    }

    #[test]
    fn readers_see_a_step_only_once_it_is_published_and_unchanged_lists_are_shared() {
        let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_seed(&[i; 32])).collect();
        let validators = ValidatorSet::new(keys.iter().map(|k| Address(k.public())).collect());
        let (mut publisher, reader) = Publisher::new(0, Arc::new(validators));
        assert!(reader.borrow().status.is_none());
        assert_eq!(reader.borrow().last_seen_ms.len(), 4);

        publisher.saw_validator(&Address(keys[2].public()), 77);
        publisher.saw_validator(&Address(Keypair::from_seed(&[9; 32]).public()), 78);
        publisher.finality_lag(5);
        assert_eq!(reader.borrow().last_seen_ms[2], None, "nothing shows before publish");
        publisher.publish(status(), SyncView::default(), 1, pool());
        let first = Arc::clone(&reader.borrow());
        assert_eq!(first.last_seen_ms.as_ref(), &[None, None, Some(77), None]);
        assert_eq!(first.finality_lags_ms.as_ref(), &[5]);
        assert_eq!(first.timeouts_total, 1);

        publisher.finality_lag(6);
        publisher.publish(status(), SyncView::default(), 2, pool());
        let second = Arc::clone(&reader.borrow());
        assert!(Arc::ptr_eq(&first.last_seen_ms, &second.last_seen_ms), "an unchanged list is not copied");
        assert_eq!(second.finality_lags_ms.as_ref(), &[5, 6]);
        assert_eq!(first.finality_lags_ms.as_ref(), &[5], "a published snapshot never changes");
    }

    #[test]
    fn kept_lists_are_bounded() {
        let (mut publisher, reader) = Publisher::new(0, Arc::new(ValidatorSet::new(vec![Address::default()])));
        for i in 0..(FINALITY_LAGS_KEPT as u64 + 10) {
            publisher.finality_lag(i);
        }
        publisher.publish(status(), SyncView::default(), 0, pool());
        let lags = Arc::clone(&reader.borrow().finality_lags_ms);
        assert_eq!(lags.len(), FINALITY_LAGS_KEPT);
        assert_eq!(lags.first(), Some(&10), "the oldest go first");
    }
}
