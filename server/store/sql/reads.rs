//! Group reads (DESIGN.md §6): the two reads every check-in makes — who is signed in with
//! this token, the visit to change (on PostgreSQL the two as one read, keyed by both) — are
//! made for all requests waiting at that moment in one statement, as group commit does for
//! the writes. [`Batches`] runs any such statement; [`Reads`] are batches of keys to look up.
//! Each statement costs the database a round trip, a plan and an executor start however few
//! rows it reads; under load those were most of a check-in's reading. A reader starts its
//! statements at least [`PACE`] apart, so that under load each gathers more; an idle server
//! reads alone, after one yield to the runtime, without waiting for company.
//!
//! A read is never cached: each answer comes from a statement started after it was asked.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::{Duration, Instant};

use super::{StoreError, StoreResult};

/// Keys read in one statement (and saves written in one transaction) at most.
pub(crate) const BATCH_MAX: usize = 128;
/// Statements of one kind of read in flight at once. One: a second would take, at once and
/// alone, the read that arrives while the first is out, so under load most statements read
/// one key (at 5,000 check-ins/s, 10,583 of 16,000 visit reads did), each paying a round trip
/// and an executor start.
const READERS: usize = 1;

/// Least time between the starts of a reader's statements. A statement costs the database
/// (and the server) about as much for one key as for ten, and under load a reader that went
/// again the moment it was answered read a few keys each time: at 5,000 check-ins/s the two
/// readers kept about 1,900 statements a second going. Waiting out the rest of this gathers
/// what arrives meanwhile: there the machine's busy cores fell from 1.59-1.64 to 1.41-1.53
/// (the database's from 0.88-0.90 to 0.78-0.84), p99 alike and p50 a few tenths of a ms
/// higher. A read after a quiet millisecond goes at once.
const PACE: Duration = Duration::from_millis(1);

type Answer<R> = oneshot::Sender<StoreResult<R>>;

/// Where items queue for a task that hands all those waiting to one run (a statement), at
/// least [`PACE`] apart, and answers each caller with its own result.
pub(crate) struct Batches<T, R> {
    queue: mpsc::UnboundedSender<(T, Answer<R>)>,
    run: Run<T, R>,
}

impl<T, R> std::fmt::Debug for Batches<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Batches")
    }
}

/// Runs a batch: one result for each item, in order.
pub(crate) type Run<T, R> = Arc<dyn Fn(Vec<T>) -> Running<R> + Send + Sync>;
pub(crate) type Running<R> = Pin<Box<dyn Future<Output = StoreResult<Vec<R>>> + Send>>;

impl<T, R> Batches<T, R>
where
    T: Clone + Send + 'static,
    R: Send + 'static,
{
    /// Starts the runners (on the current Tokio runtime); they end when `self` is dropped.
    pub(crate) fn start(run: Run<T, R>) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..READERS {
            let (run, rx) = (Arc::clone(&run), Arc::clone(&rx));
            tokio::spawn(async move {
                let mut last: Option<Instant> = None;
                loop {
                    if let Some(next) = last.map(|at| at + PACE)
                        && Instant::now() < next
                    {
                        tokio::time::sleep_until(next).await;
                    }
                    let Some(batch) = next_batch(&rx).await else { break };
                    last = Some(Instant::now());
                    answer(&run, batch).await;
                }
            });
        }
        Batches { queue, run }
    }

    /// Queues `item` and waits for its result. Should the runners be gone (their runtime
    /// ended), `item` is run here alone.
    pub(crate) async fn get(&self, item: T) -> StoreResult<R> {
        let (done, answer) = oneshot::channel();
        if self.queue.send((item.clone(), done)).is_ok()
            && let Ok(result) = answer.await
        {
            return result;
        }
        (self.run)(vec![item])
            .await?
            .pop()
            .ok_or_else(|| StoreError::Other("a batch of one gave no result".into()))
    }
}

/// Batches of keys, each looked up once however many wait for it.
#[derive(Debug)]
pub(crate) struct Reads<K, V>(Batches<K, Option<V>>);

/// Reads the rows of many keys in one go: each key's value, if it has one.
pub(crate) type Fetch<K, V> = Arc<dyn Fn(Vec<K>) -> Fetching<K, V> + Send + Sync>;
pub(crate) type Fetching<K, V> = Pin<Box<dyn Future<Output = StoreResult<HashMap<K, V>>> + Send>>;

impl<K, V> Reads<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Starts the readers (on the current Tokio runtime); they end when `self` is dropped.
    pub(crate) fn start(fetch: Fetch<K, V>) -> Self {
        Reads(Batches::start(Arc::new(move |keys: Vec<K>| {
            let fetch = Arc::clone(&fetch);
            Box::pin(async move {
                let mut unique: Vec<K> = Vec::with_capacity(keys.len());
                for k in &keys {
                    if !unique.contains(k) {
                        unique.push(k.clone());
                    }
                }
                let values = fetch(unique).await?;
                Ok(keys.iter().map(|k| values.get(k).cloned()).collect())
            })
        })))
    }

    /// Queues `key` and waits for its value.
    pub(crate) async fn get(&self, key: K) -> StoreResult<Option<V>> {
        self.0.get(key).await
    }
}

/// The first queued item, and all others queued by then, up to [`BATCH_MAX`] (group commit's
/// batches too). While the batch keeps growing the task yields, at most [`GATHER_YIELDS`]
/// times, so that requests the server has already received but not yet queued join it: under
/// load one statement serves them all, instead of a lone key now and the rest next time. An
/// idle server yields once, finds nothing new, and goes.
pub(crate) async fn next_batch<T>(rx: &Mutex<mpsc::UnboundedReceiver<T>>) -> Option<Vec<T>> {
    let mut rx = rx.lock().await;
    let mut batch = vec![rx.recv().await?];
    let mut at_last_yield = 0;
    for _ in 0..GATHER_YIELDS {
        drain(&mut rx, &mut batch);
        if batch.len() == at_last_yield || batch.len() >= BATCH_MAX {
            return Some(batch);
        }
        at_last_yield = batch.len();
        tokio::task::yield_now().await;
    }
    drain(&mut rx, &mut batch);
    Some(batch)
}

/// Most yields while a batch gathers. At 5,000 check-ins/s, one yield took the one-key visit
/// reads from about a third of them to almost none and the p50 from 13-14 ms to 11 ms; up to
/// four, 10 ms.
const GATHER_YIELDS: usize = 4;

fn drain<T>(rx: &mut mpsc::UnboundedReceiver<T>, batch: &mut Vec<T>) {
    while batch.len() < BATCH_MAX
        && let Ok(q) = rx.try_recv()
    {
        batch.push(q);
    }
}

async fn answer<T, R>(run: &Run<T, R>, batch: Vec<(T, Answer<R>)>) {
    let (items, answers): (Vec<T>, Vec<Answer<R>>) = batch.into_iter().unzip();
    match run(items).await {
        // The caller may have gone (its request was dropped).
        Ok(results) => {
            for (done, result) in answers.into_iter().zip(results) {
                let _ = done.send(Ok(result));
            }
        }
        Err(e) => {
            for done in answers {
                let _ = done.send(Err(e.clone()));
            }
        }
    }
}

/// `items` split into rounds in which no key appears twice, in order: a statement may write
/// a row only once.
pub(crate) fn rounds<T, K: Eq + Hash>(items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<Vec<T>> {
    let mut rounds: Vec<(HashSet<K>, Vec<T>)> = Vec::new();
    for item in items {
        let k = key(&item);
        match rounds.iter_mut().find(|(keys, _)| !keys.contains(&k)) {
            Some((keys, round)) => {
                keys.insert(k);
                round.push(item);
            }
            None => rounds.push((HashSet::from([k]), vec![item])),
        }
    }
    rounds.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue holding `first`, with its sender.
    fn queue_of(first: u32) -> (mpsc::UnboundedSender<u32>, Mutex<mpsc::UnboundedReceiver<u32>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(first).unwrap();
        (tx, Mutex::new(rx))
    }

    /// On one thread: a task that would queue as soon as it runs is waited for.
    #[tokio::test]
    async fn a_batch_gathers_what_running_tasks_queue() {
        let (tx, rx) = queue_of(1);
        let sender = tx.clone();
        tokio::spawn(async move { sender.send(2).unwrap() });
        assert_eq!(next_batch(&rx).await.unwrap(), [1, 2]);
    }

    /// A queue that never stops growing still gives a batch, after a few yields.
    #[tokio::test]
    async fn gathering_ends() {
        let (tx, rx) = queue_of(0);
        let sender = tx.clone();
        let endless = tokio::spawn(async move {
            for i in 1.. {
                if sender.send(i).is_err() {
                    return;
                }
                tokio::task::yield_now().await;
            }
        });
        let batch = next_batch(&rx).await.unwrap();
        assert!(batch.len() > 1 && batch.len() < BATCH_MAX, "{batch:?}");
        endless.abort();
        drop(tx);
    }
}
