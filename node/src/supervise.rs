//! Critical tasks: the node's long-lived services. If one stops, whether it returns `Ok`,
//! returns an error or panics, the node stops with its name and reason, instead of running on
//! without it (after reth's `TaskManager` and `spawn_critical`).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use tokio::sync::mpsc;

/// How a critical task ended.
#[derive(Debug)]
pub(crate) struct Exit {
    /// Its name.
    pub(crate) task: &'static str,
    /// What it returned; a panic is an `Err` that says so.
    pub(crate) result: anyhow::Result<()>,
}

/// Runs critical tasks and reports the first to stop.
pub(crate) struct Supervisor {
    tx: mpsc::UnboundedSender<Exit>,
    rx: mpsc::UnboundedReceiver<Exit>,
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

impl Supervisor {
    pub(crate) fn new() -> Supervisor {
        let (tx, rx) = mpsc::unbounded_channel();
        Supervisor { tx, rx }
    }

    /// Runs `task` on tokio; its end, however it comes, is reported once.
    pub(crate) fn spawn_critical<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let tx = self.tx.clone();
        let handle = tokio::spawn(task);
        tokio::spawn(async move {
            let result = match handle.await {
                Ok(r) => r,
                Err(e) if e.is_panic() => Err(anyhow::anyhow!("panicked: {}", panic_message(&*e.into_panic()))),
                Err(e) => Err(anyhow::anyhow!("cancelled: {e}")),
            };
            let _ = tx.send(Exit { task: name, result });
        });
    }

    /// Runs `task` on its own thread; its end, however it comes, is reported once.
    pub(crate) fn spawn_critical_thread<F>(&self, name: &'static str, task: F) -> std::io::Result<()>
    where
        F: FnOnce() -> anyhow::Result<()> + Send + 'static,
    {
        let tx = self.tx.clone();
        std::thread::Builder::new().name(name.into()).spawn(move || {
            let result = match std::panic::catch_unwind(AssertUnwindSafe(task)) {
                Ok(r) => r,
                Err(payload) => Err(anyhow::anyhow!("panicked: {}", panic_message(&*payload))),
            };
            let _ = tx.send(Exit { task: name, result });
        })?;
        Ok(())
    }

    /// The next critical task to stop. Never returns while none has (the supervisor keeps a
    /// sender, so the channel cannot close).
    pub(crate) async fn next_exit(&mut self) -> Exit {
        match self.rx.recv().await {
            Some(exit) => exit,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_returns_or_fails_is_reported_with_its_name_and_reason() {
        let mut sup = Supervisor::new();
        sup.spawn_critical("forever", std::future::pending());
        sup.spawn_critical("panics", async { panic!("the disk is gone") });
        let exit = sup.next_exit().await;
        assert_eq!(exit.task, "panics");
        let err = exit.result.expect_err("a panic is a failure");
        assert!(err.to_string().contains("panicked: the disk is gone"), "{err}");

        sup.spawn_critical("fails", async { Err(anyhow::anyhow!("cannot write")) });
        let exit = sup.next_exit().await;
        assert_eq!((exit.task, exit.result.map_err(|e| e.to_string())), ("fails", Err("cannot write".to_owned())));

        sup.spawn_critical("returns", async { Ok(()) });
        let exit = sup.next_exit().await;
        assert_eq!(exit.task, "returns");
        assert!(exit.result.is_ok(), "a task that returns is reported too: the node does not run on without it");
    }

    #[tokio::test]
    async fn a_thread_that_panics_is_reported() {
        let mut sup = Supervisor::new();
        sup.spawn_critical_thread("chain", || panic!("broken invariant at height {}", 7)).expect("spawns");
        let exit = tokio::time::timeout(Duration::from_secs(5), sup.next_exit()).await.expect("reported");
        assert_eq!(exit.task, "chain");
        let err = exit.result.expect_err("a panic is a failure");
        assert!(err.to_string().contains("panicked: broken invariant at height 7"), "{err}");
    }
}
