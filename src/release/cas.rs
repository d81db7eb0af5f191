//! The one compare-and-swap loop: read, decide, write conditionally, and
//! start over when another writer got there first.
//!
//! The pointer and the index are shared by every publisher and promoter.
//! Each change to them reads the current object (and its etag), computes the
//! next one, and writes it with [`PutMode::Update`] (or
//! [`PutMode::Create`] when absent). A lost race is not an error: the loser
//! reads again and recomputes from what the winner wrote, so no update is
//! ever lost (DESIGN.md, invariant 4). Contention is bounded by [`ROUNDS`]
//! so a store that never settles ends in an error, not a loop without end.
//!
//! [`PutMode::Update`]: crate::store::PutMode::Update
//! [`PutMode::Create`]: crate::store::PutMode::Create

use std::future::Future;

use super::ReleaseError;
use crate::store::StoreError;

/// Rounds before giving up. Each round is a few requests; 50 rounds means 49
/// other writers changed the object while this one worked, far beyond any
/// real release concurrency (the race suites run 8 writers at once).
pub(crate) const ROUNDS: usize = 50;

/// The outcome of one round of a compare-and-swap loop.
pub(crate) enum Round<T> {
    /// Finished with this value.
    Done(T),
    /// Another writer changed the object: read again and recompute.
    Lost,
}

impl<T> Round<T> {
    /// The same outcome with `f` applied to a finished value.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Round<U> {
        match self {
            Round::Done(value) => Round::Done(f(value)),
            Round::Lost => Round::Lost,
        }
    }
}

/// Whether a conditional write failed because another writer got there
/// first (the object changed, appeared, or disappeared since it was read,
/// or another conditional write to it was in flight).
pub(crate) fn lost_race(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Precondition { .. }
            | StoreError::AlreadyExists { .. }
            | StoreError::NotFound { .. }
            | StoreError::ConcurrentWrite { .. }
    )
}

/// Maps the result of a conditional write: a lost race becomes
/// [`Round::Lost`], success goes to `done`, anything else is an error.
pub(crate) fn settle<W, T>(write: Result<W, StoreError>, done: impl FnOnce(W) -> T) -> Result<Round<T>, ReleaseError> {
    match write {
        Ok(w) => Ok(Round::Done(done(w))),
        Err(e) if lost_race(&e) => Ok(Round::Lost),
        Err(e) => Err(e.into()),
    }
}

/// Runs `round` until it is [`Round::Done`], at most [`ROUNDS`] times.
/// `object` names what kept changing, for the error.
pub(crate) async fn retry<T, F, Fut>(object: &'static str, mut round: F) -> Result<T, ReleaseError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Round<T>, ReleaseError>>,
{
    for _ in 0..ROUNDS {
        if let Round::Done(value) = round().await? {
            return Ok(value);
        }
    }
    Err(ReleaseError::Contention { object, rounds: ROUNDS })
}
