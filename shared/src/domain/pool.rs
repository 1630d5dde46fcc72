//! The hashing pool: every argon2 computation of the process runs here, on a fixed number
//! of worker threads, each reusing its own memory block, behind a bounded queue.
//!
//! So the memory spent on hashing is at most `workers x` one policy block (19 MiB) whatever
//! the load, and a burst that would wait too long is refused at once ([`PoolError::Full`],
//! answered 503 with `retry-after`) instead of piling up threads and memory.
//!
//! Nothing is started before the first job: a function that never hashes spawns no thread
//! and allocates no block.

use crate::domain::error::Chain;
use crate::domain::hasher::HashMemory;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use thiserror::Error;
use tokio::sync::oneshot;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PoolError {
    /// Every worker is busy and the queue is full: shed the load.
    #[error("the hashing queue is full")]
    Full,
    /// No worker could be started, or the job died.
    #[error("the hashing pool failed: {0}")]
    Failed(&'static str),
}

type Job = Box<dyn FnOnce(&mut HashMemory) + Send>;

/// A bounded pool of hashing workers. Cheap to share behind an `Arc`; dropping the last
/// handle lets the workers finish their jobs and exit.
pub struct HashPool {
    workers: usize,
    queue: usize,
    sender: OnceLock<Option<SyncSender<Job>>>,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl HashPool {
    /// `workers` threads (default: the number of cores) and room for `queue` waiting jobs.
    pub fn new(workers: Option<usize>, queue: usize) -> Self {
        let workers =
            workers.unwrap_or_else(|| std::thread::available_parallelism().map(usize::from).unwrap_or(1)).max(1);
        Self { workers, queue, sender: OnceLock::new(), counters: Arc::default() }
    }

    /// How many jobs may run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// How many jobs may wait for a worker before new ones are refused.
    pub fn queue(&self) -> usize {
        self.queue
    }

    /// The most jobs that ever ran at the same time.
    pub fn peak_running(&self) -> usize {
        self.counters.peak.load(Ordering::SeqCst)
    }

    /// Queues `job` now, or refuses it at once when the queue is full; the returned
    /// future resolves to its result.
    pub fn submit<T, F>(&self, job: F) -> Result<impl std::future::Future<Output = Result<T, PoolError>>, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(&mut HashMemory) -> T + Send + 'static,
    {
        let sender = self.sender.get_or_init(|| self.start()).as_ref().ok_or(PoolError::Failed("no worker started"))?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _ = tx.send(job(memory));
        });
        match sender.try_send(job) {
            Ok(()) => Ok(async move { rx.await.map_err(|_| PoolError::Failed("the hashing job died")) }),
            Err(TrySendError::Full(_)) => Err(PoolError::Full),
            Err(TrySendError::Disconnected(_)) => Err(PoolError::Failed("no worker left")),
        }
    }

    /// Queues a job that says when it starts, then holds its worker until `release` says go
    /// (test-only: for tests of the bound and of the queue).
    #[cfg(any(test, feature = "testing"))]
    pub fn hold(
        &self,
        started: &std::sync::mpsc::Sender<()>,
        release: &Arc<Mutex<Receiver<()>>>,
    ) -> Result<impl std::future::Future<Output = Result<(), PoolError>>, PoolError> {
        let (started, release) = (started.clone(), Arc::clone(release));
        self.submit(move |_| {
            let _ = started.send(());
            if let Ok(release) = release.lock() {
                let _ = release.recv();
            }
        })
    }

    /// Runs `job` on a worker with that worker's memory.
    pub async fn run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(&mut HashMemory) -> T + Send + 'static,
    {
        self.submit(job)?.await
    }

    fn start(&self) -> Option<SyncSender<Job>> {
        let (sender, receiver) = sync_channel::<Job>(self.queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let mut started = 0;
        for n in 0..self.workers {
            let receiver = Arc::clone(&receiver);
            let counters = Arc::clone(&self.counters);
            match std::thread::Builder::new().name(format!("argon2-{n}")).spawn(move || work(&receiver, &counters)) {
                Ok(_) => started += 1,
                Err(error) => tracing::error!(error = %Chain(&error), "could not start a hashing worker"),
            }
        }
        (started > 0).then_some(sender)
    }
}

fn work(receiver: &Mutex<Receiver<Job>>, counters: &Counters) {
    let mut memory = HashMemory::default();
    loop {
        let next = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = next else {
            return; // the pool is gone
        };
        let running = counters.running.fetch_add(1, Ordering::SeqCst) + 1;
        counters.peak.fetch_max(running, Ordering::SeqCst);
        // A job that panics drops its answer channel (the caller sees `Failed`); the
        // worker and its memory stay.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
        counters.running.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::hasher::{Argon2Hasher, PasswordHasher};
    use std::sync::mpsc;

    #[tokio::test]
    async fn no_more_hashes_run_at_once_than_there_are_workers() {
        let pool = Arc::new(HashPool::new(Some(2), 64));
        let hasher = Arc::new(Argon2Hasher::with_params(64, 1, 1).unwrap());
        let hashes = (0..24).map(|n| {
            let (pool, hasher) = (Arc::clone(&pool), Arc::clone(&hasher));
            async move { pool.run(move |memory| hasher.hash_in(&format!("Password-{n}"), memory)).await }
        });
        let hashes = futures::future::join_all(hashes).await;
        assert_eq!(hashes.len(), 24);
        for hash in hashes {
            assert!(hash.unwrap().unwrap().starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        }
        assert!((1..=2).contains(&pool.peak_running()), "peak {}", pool.peak_running());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_the_queued_jobs_still_run() {
        // Given two workers, both held, and a queue of one, filled.
        let pool = HashPool::new(Some(2), 1);
        let (started_tx, started) = mpsc::channel();
        let (release_tx, release) = mpsc::channel();
        let release = Arc::new(Mutex::new(release));
        let first = pool.hold(&started_tx, &release).unwrap();
        started.recv().unwrap();
        let second = pool.hold(&started_tx, &release).unwrap();
        started.recv().unwrap();
        let running = [first, second];
        let queued = pool.hold(&started_tx, &release).unwrap();

        // When one more job comes, it is refused without waiting.
        assert!(matches!(pool.submit(|_| ()), Err(PoolError::Full)));

        // Then, once the workers are released, every admitted job completes, never more
        // than two at once.
        for _ in 0..3 {
            release_tx.send(()).unwrap();
        }
        for job in running {
            job.await.unwrap();
        }
        queued.await.unwrap();
        assert_eq!(pool.peak_running(), 2);
        assert_eq!(pool.run(|_| 7).await, Ok(7));
    }
}
