//! The one way a transaction enters the pool, whether it came by `tx_submit`, `tx_submitBatch`
//! or gossip ([`Shared::admit_many`]), and the batching of transaction gossip ([`TxGossip`]).
//!
//! Admission: hashes our pool or chain already knows answer at once, and so do transactions the
//! pool would refuse from the sender's committed account alone (a used nonce, a balance short of
//! amount and fee), before any signature is verified; the stateless checks run on the caller's
//! thread, with the signatures verified in batches on every core; the chain
//! actor, which owns the pool, then admits the batch in one step. Gossip: what our pool newly
//! admits, from RPC or from peers (and what becomes proposable once a nonce gap fills), goes
//! out in messages of up to [`GOSSIP_BATCH_TXS_MAX`] transactions, at most [`GOSSIP_FLUSH_MS`]
//! after admission, not one message each: at thousands of transfers a second, single messages
//! filled libp2p's send queues and were lost. A message from a peer is forwarded as it came
//! only when our pool took every transaction in it as new; otherwise what our pool took goes
//! on in our own messages, so a new transaction cannot carry junk along.

use std::collections::HashSet;
use std::sync::Mutex;

use taksa_consensus::pool::refusal_before_signature;
use taksa_consensus::tx::{encode_gossip_batch, GOSSIP_BATCH_BYTES_MAX, GOSSIP_BATCH_TXS_MAX};
use taksa_consensus::{codec, state, Address, Hash, SignedTransaction, TxError};

use crate::chain::{Candidate, NoVerdict, Shared, Verdict};

/// How long a newly admitted transaction waits for others to share its gossip message, at most.
pub(crate) const GOSSIP_FLUSH_MS: u64 = 5;

/// Where transactions offered to [`Shared::admit_many`] come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `tx_submit` or `tx_submitBatch`: each transaction is admitted on its own merits.
    Rpc,
    /// A peer's gossip message: one that fails a stateless check (which no honest node sends)
    /// makes the whole message refused, and nothing of it is admitted. Transactions refused from
    /// their sender's account before any check (a used nonce, an empty balance) are answered
    /// alone and cost the peer nothing, as they cost the node nothing.
    Gossip,
}

/// What became of one transaction offered to [`Shared::admit_many`].
#[derive(Debug)]
pub(crate) enum Admission {
    /// Our pool or our chain has it already.
    Known,
    /// It fails a check that needs no state (fields for this chain, recipient key, signature):
    /// no honest node sends it, so a peer that did is at fault.
    Invalid(TxError),
    /// The pool's verdict.
    Pool(Verdict),
    /// No verdict: the admission queue stayed full, or the node is stopping.
    Unanswered(NoVerdict),
    /// The store could not be read.
    Internal(String),
}

impl Admission {
    /// Whether our pool took the transaction as newly proposable (peers should hear of it).
    pub(crate) fn is_new(&self) -> bool {
        matches!(self, Admission::Pool(Ok(admitted)) if admitted.gossip())
    }
}

impl Shared {
    /// Admits `txs` by the one admission path (see the module docs) and answers each with its
    /// hash, in order. Those newly proposable here are gossiped, in batches, except for a gossip
    /// message that was new here as a whole, which is forwarded as it came.
    pub(crate) fn admit_many(&self, txs: Vec<SignedTransaction>, origin: Origin) -> Vec<(Hash, Admission)> {
        let pool = &self.chain().pool;
        let mut out: Vec<(Hash, Admission)> = Vec::with_capacity(txs.len());
        let mut fresh: Vec<(usize, SignedTransaction, usize)> = Vec::new();
        for (i, tx) in txs.into_iter().enumerate() {
            let bytes = codec::encoded_len(&tx);
            let hash = tx.hash();
            // The same bytes again answer the same hash, pending or final, so wallets can retry.
            let admission = if pool.contains(&hash) {
                Admission::Known
            } else {
                match self.store.tx_location(&hash) {
                    Ok(Some(_)) => Admission::Known,
                    Ok(None) => {
                        fresh.push((i, tx, bytes));
                        Admission::Unanswered(NoVerdict::Busy)
                    }
                    Err(e) => Admission::Internal(e.to_string()),
                }
            };
            out.push((hash, admission));
        }
        // What the pool would refuse from the sender's account alone is answered now, without
        // a verification: junk from empty or spent accounts costs a lookup (the store's cache,
        // else one read from disk).
        // Read without filling the state cache: anyone may send transactions from or to any
        // address, and must not evict what blocks use.
        let state = self.store.peeking();
        let early: Vec<Option<TxError>> = fresh
            .iter()
            .map(|(_, tx, _)| refusal_before_signature(&tx.tx, &self.store.peek_account(&tx.tx.from)))
            .collect();
        let funded: HashSet<Address> =
            fresh.iter().map(|(_, tx, _)| tx.tx.to).filter(|to| state::recipient_known_valid(&state, to)).collect();
        let mut fresh_checked = Vec::with_capacity(fresh.len());
        for (item, refusal) in fresh.into_iter().zip(early) {
            match (refusal, out.get_mut(item.0)) {
                (Some(e), Some(slot)) => slot.1 = Admission::Pool(Err(e.into())),
                _ => fresh_checked.push(item),
            }
        }
        let fresh = fresh_checked;
        let checked: Vec<SignedTransaction> = fresh.iter().map(|(_, tx, _)| tx.clone()).collect();
        let verdicts = SignedTransaction::check_stateless_many(
            &checked,
            &self.genesis.chain_id,
            &self.genesis_hash,
            self.genesis.fee_floor,
            &|to| funded.contains(to),
        );
        if origin == Origin::Gossip && verdicts.iter().any(Result::is_err) {
            // The sender is at fault: nothing of its message enters the pool, so that honest
            // copies of its valid transactions still travel on when they come.
            for ((i, _, _), verdict) in fresh.iter().zip(verdicts) {
                if let (Err(e), Some(slot)) = (verdict, out.get_mut(*i)) {
                    slot.1 = Admission::Invalid(e);
                }
            }
            return out;
        }
        let mut candidates = Vec::new();
        let mut waiting = Vec::new();
        for ((i, tx, bytes), verdict) in fresh.into_iter().zip(verdicts) {
            match (verdict, out.get_mut(i)) {
                (Err(e), Some(slot)) => slot.1 = Admission::Invalid(e),
                (Ok(()), Some(slot)) => {
                    candidates.push(Candidate { tx, hash: slot.0, bytes });
                    waiting.push(i);
                }
                (_, None) => {}
            }
        }
        let kept: Vec<SignedTransaction> = candidates.iter().map(|c| c.tx.clone()).collect();
        match self.submit_many_and_wait(candidates) {
            Ok(verdicts) if verdicts.len() == waiting.len() => {
                let mut new = Vec::new();
                let mut kept = kept.into_iter();
                for (i, verdict) in waiting.into_iter().zip(verdicts) {
                    if let (Ok(admitted), Some(tx)) = (&verdict, kept.next()) {
                        if admitted.gossip() {
                            new.push(tx);
                        }
                    }
                    if let Some(slot) = out.get_mut(i) {
                        slot.1 = Admission::Pool(verdict);
                    }
                }
                // A gossip message whose transactions were all new here is forwarded as it came
                // (`network::admit_gossiped`); otherwise what was new goes on in our own messages.
                if origin == Origin::Rpc || !out.iter().all(|(_, a)| a.is_new()) {
                    self.gossip_txs(new);
                }
            }
            Ok(_) => {
                for i in waiting {
                    if let Some(slot) = out.get_mut(i) {
                        slot.1 = Admission::Internal("the pool answered a different number of transactions".into());
                    }
                }
            }
            Err(e) => {
                let pool = &self.chain().pool;
                for i in waiting {
                    if let Some(slot) = out.get_mut(i) {
                        // Admitted in the instant before the wait ran out: the pool shows it.
                        slot.1 = if pool.contains(&slot.0) { Admission::Known } else { Admission::Unanswered(e) };
                    }
                }
            }
        }
        out
    }

    /// Queues transactions for gossip. A node without a network (the dev chain) sends nothing;
    /// the few that wait for a full message there are replaced by the next ones.
    pub(crate) fn gossip_txs(&self, txs: Vec<SignedTransaction>) {
        for batch in self.tx_gossip.push(txs) {
            if let Some(p2p) = &self.p2p {
                publish_batch(p2p, &batch);
            }
        }
    }

    /// Sends what waits for gossip now (every [`GOSSIP_FLUSH_MS`], from the network task).
    pub(crate) fn flush_tx_gossip(&self) {
        if let Some(p2p) = &self.p2p {
            if let Some(batch) = self.tx_gossip.take() {
                publish_batch(p2p, &batch);
            }
        }
    }
}

fn publish_batch(p2p: &taksa_p2p::Handle, batch: &[SignedTransaction]) {
    // A full network queue loses the message; the transactions stay in our pool, go into our
    // blocks, and are gossiped again if still pending (`network::regossip`).
    if let Err(e) = p2p.publish(taksa_p2p::Topic::Transactions, encode_gossip_batch(batch)) {
        tracing::debug!(target: "p2p", txs = batch.len(), error = %e, "could not gossip a batch of transactions");
    }
}

/// Transactions waiting to be gossiped together: at most one message's worth, since a full
/// message leaves at once.
#[derive(Default)]
pub(crate) struct TxGossip {
    waiting: Mutex<(Vec<SignedTransaction>, usize)>,
}

impl TxGossip {
    /// Adds `txs`; returns the full messages to send now.
    fn push(&self, txs: Vec<SignedTransaction>) -> Vec<Vec<SignedTransaction>> {
        // The list's length prefix, then the transactions.
        const ROOM: usize = GOSSIP_BATCH_BYTES_MAX - 8;
        let mut full = Vec::new();
        let Ok(mut guard) = self.waiting.lock() else { return full };
        let (waiting, bytes) = &mut *guard;
        for tx in txs {
            let len = codec::encoded_len(&tx);
            if waiting.len() >= GOSSIP_BATCH_TXS_MAX || *bytes + len > ROOM {
                full.push(std::mem::take(waiting));
                *bytes = 0;
            }
            waiting.push(tx);
            *bytes += len;
        }
        if waiting.len() >= GOSSIP_BATCH_TXS_MAX {
            full.push(std::mem::take(waiting));
            *bytes = 0;
        }
        full
    }

    /// Takes what waits, if anything.
    pub(crate) fn take(&self) -> Option<Vec<SignedTransaction>> {
        let mut guard = self.waiting.lock().ok()?;
        let (waiting, bytes) = &mut *guard;
        *bytes = 0;
        (!waiting.is_empty()).then(|| std::mem::take(waiting))
    }
}

#[cfg(test)]
mod tests {
    use taksa_consensus::tx::decode_gossip_batch;
    use taksa_consensus::{Keypair, Transaction};

    use super::*;

    fn transfer(nonce: u64, memo_bytes: usize) -> SignedTransaction {
        let key = Keypair::from_seed(&[6; 32]);
        Transaction {
            chain_id: "taksa-test".into(),
            from: Address(key.public()),
            to: Address(key.public()),
            amount: 1,
            fee: 1,
            nonce,
            valid_until_height: None,
            memo: (memo_bytes > 0).then(|| "m".repeat(memo_bytes)),
            action: None,
        }
        .sign(&key, &Hash([2; 32]))
    }

    #[test]
    fn gossip_leaves_in_full_messages_each_within_the_limits_and_nothing_is_lost() {
        let gossip = TxGossip::default();
        let small: Vec<SignedTransaction> = (0..300).map(|n| transfer(n, 0)).collect();
        let full = gossip.push(small.clone());
        assert_eq!(full.iter().map(Vec::len).collect::<Vec<_>>(), vec![GOSSIP_BATCH_TXS_MAX; 2]);
        let rest = gossip.take().expect("the rest waits");
        assert_eq!(rest.len(), 300 - 2 * GOSSIP_BATCH_TXS_MAX);
        assert!(gossip.take().is_none(), "taken once");
        let sent: Vec<SignedTransaction> = full.into_iter().flatten().chain(rest).collect();
        assert_eq!(sent, small, "every transaction once, in order");
        // Full messages of the longest transfers stay within the byte limit.
        let long: Vec<SignedTransaction> =
            (0..GOSSIP_BATCH_TXS_MAX as u64).map(|n| transfer(n, taksa_consensus::tx::MEMO_BYTES_MAX)).collect();
        let messages = gossip.push(long);
        assert_eq!(messages.len(), 1);
        for m in &messages {
            let bytes = encode_gossip_batch(m);
            assert!(bytes.len() <= GOSSIP_BATCH_BYTES_MAX);
            assert_eq!(decode_gossip_batch(&bytes).as_ref(), Ok(m));
        }
    }
}
