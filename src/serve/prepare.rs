//! The one thread that turns a new index's bytes into an
//! [`IndexSnapshot`](super::snapshot::IndexSnapshot): parse, gzip, brotli.
//!
//! Why one long-lived thread and not tokio's blocking pool: preparing an
//! index is the largest piece of work the service does (brotli's encoder
//! state alone is tens of MiB, and a debug build touches ~300 KiB of stack
//! for it). glibc keeps what a thread freed in that thread's malloc arena,
//! and a thread's touched stack pages stay resident while it lives. On the
//! blocking pool each reload ran on whichever thread happened to be idle,
//! and under steady load (every local-store read is a blocking task) the
//! pool's threads never retire, so each release left its stack pages and
//! freed buffers on one more thread: `serve`'s RSS grew by ~90 KiB per
//! release while its live heap stayed flat (issue 18.5; the measurements
//! are in docs/RELIABILITY.md). On one thread every index reuses the same
//! stack and the same arena, so memory levels off after the first reload.
//!
//! Jobs run one after another, in order. The thread starts with the first
//! job and ends when its [`Preparer`] is dropped (the channel closes). A
//! job that panics is reported to its caller; the thread goes on with the
//! next one.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, PoisonError};

use tokio::sync::oneshot;

/// The thread's name (in `top -H`, `/proc/<pid>/task/*/comm` and panics).
pub(super) const THREAD_NAME: &str = "sdk-cdn-index";

type Job = Box<dyn FnOnce() + Send>;

/// Why a job did not produce its value.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The OS refused a new thread (out of threads or memory).
    #[error("cannot start the {THREAD_NAME} thread: {0}; the system is out of threads or memory")]
    Spawn(std::io::Error),
    /// The job panicked (a bug: the panic message is on stderr).
    #[error("preparing the SRI index panicked (a bug; the panic message is on stderr)")]
    Panicked,
}

/// A handle on the preparing thread.
#[derive(Debug, Default)]
pub(super) struct Preparer {
    jobs: Mutex<Option<Sender<Job>>>,
}

impl Preparer {
    /// Runs `job` on the preparing thread and waits for its value.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PrepareError> {
        let (done, value) = oneshot::channel();
        self.submit(Box::new(move || {
            // A dropped receiver (the caller timed out) is no error: the value is simply not wanted.
            let _ = done.send(catch_unwind(AssertUnwindSafe(job)));
        }))?;
        match value.await {
            Ok(Ok(value)) => Ok(value),
            // A panic inside the job, or (never, since jobs are caught) the thread died.
            Ok(Err(_)) | Err(_) => Err(PrepareError::Panicked),
        }
    }

    fn submit(&self, job: Job) -> Result<(), PrepareError> {
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let job = match jobs.as_ref() {
            Some(sender) => match sender.send(job) {
                Ok(()) => return Ok(()),
                // The thread is gone: start another one with this job.
                Err(unsent) => unsent.0,
            },
            None => job,
        };
        let (sender, receiver) = channel::<Job>();
        std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                while let Ok(job) = receiver.recv() {
                    job();
                }
            })
            .map_err(PrepareError::Spawn)?;
        // The receiver lives in the thread just started: this send succeeds.
        let _ = sender.send(job);
        *jobs = Some(sender);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_in_order_on_one_named_thread_and_a_panic_is_an_error() {
        let preparer = Preparer::default();
        let first = preparer.run(|| std::thread::current().id()).await.unwrap();
        assert!(matches!(preparer.run(|| panic!("a bug")).await, Err(PrepareError::Panicked)));
        let (second, name) = preparer
            .run(|| (std::thread::current().id(), std::thread::current().name().map(String::from)))
            .await
            .unwrap();
        assert_eq!(first, second, "the panic did not cost the thread");
        assert_eq!(name.as_deref(), Some(THREAD_NAME));
        assert_ne!(first, std::thread::current().id());
    }
}
