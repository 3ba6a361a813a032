//! Deliveries handed to the host together (the messages that arrived in one read): each
//! event's answer is held until the group's last is done, then all are given at once, so
//! that the pulling task wakes once per group rather than once per event.
//!
//! A group is held together only briefly: the consumer calls [`Together::let_go`]
//! [`HOLD_AT_MOST`] after the group arrived (one timer per group, not per event), which
//! gives the answers of the events done so far, and from then on each of the group's
//! answers is given as it comes. So one slow event holds back neither the others'
//! acknowledgements nor their slots.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use switchboard::service::Handled;
use tokio::sync::{oneshot, Notify};

/// How long a finished event's answer may wait for the rest of its group.
pub(crate) const HOLD_AT_MOST: Duration = Duration::from_millis(10);

/// One group of events handed over together.
#[derive(Default)]
pub(crate) struct Together {
    held: Mutex<Held>,
    /// Let go: each answer is given as it comes.
    apart: AtomicBool,
    /// Told when the group is let go.
    gone: Notify,
}

#[derive(Default)]
struct Held {
    /// Answers not given yet.
    answers: Vec<(oneshot::Sender<Handled>, Handled)>,
    /// Events of the group whose answer has not come yet.
    awaited: usize,
}

impl Together {
    /// An empty group.
    pub(crate) fn new() -> Arc<Together> {
        Arc::default()
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        // Plain lists and a count: a panic elsewhere cannot leave them half-updated.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops holding the group together: gives the answers held so far; later ones are
    /// given as they come.
    pub(crate) fn let_go(&self) {
        // Set before the lock is taken: an answer that comes after the answers held are
        // given sees it, and is given at once.
        self.apart.store(true, Ordering::SeqCst);
        give(self.lock());
        self.gone.notify_waiters();
    }

    /// Returns once the group is let go (at once if it is).
    pub(crate) async fn until_let_go(&self) {
        let notified = self.gone.notified();
        tokio::pin!(notified);
        // Registered before the flag is read: a `let_go` in between is not missed.
        notified.as_mut().enable();
        if self.apart.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }

    /// Takes the answer of one event (none: it ended without one); the group's last (or
    /// any, once let go) gives the answers held.
    fn settle(&self, answer: Option<(oneshot::Sender<Handled>, Handled)>) {
        let mut held = self.lock();
        held.answers.extend(answer);
        held.awaited -= 1;
        if held.awaited == 0 || self.apart.load(Ordering::SeqCst) {
            give(held);
        }
    }
}

/// Gives the answers `held` holds, outside the lock.
fn give(mut held: MutexGuard<'_, Held>) {
    let answers = std::mem::take(&mut held.answers);
    drop(held);
    for (to, handled) in answers {
        // A receiver gone (its host stopping) needs no answer.
        let _ = to.send(handled);
    }
}

/// Where one event's answer goes: into its group, given with the group's last.
pub(crate) struct Answer {
    together: Arc<Together>,
    to: Option<oneshot::Sender<Handled>>,
}

impl Answer {
    /// An answer in `together`'s group, and where it is received.
    pub(crate) fn new(together: Arc<Together>) -> (Answer, oneshot::Receiver<Handled>) {
        together.lock().awaited += 1;
        let (to, outcome) = oneshot::channel();
        let answer = Answer {
            together,
            to: Some(to),
        };
        (answer, outcome)
    }

    /// Gives `handled`, held until the group's last answer (or until it is let go).
    pub(crate) fn give(mut self, handled: Handled) {
        if let Some(to) = self.to.take() {
            self.together.settle(Some((to, handled)));
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        // Never given (its offer was dropped by a stop): its receiver learns it at once,
        // and the group does not wait for it.
        if let Some(to) = self.to.take() {
            drop(to);
            self.together.settle(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Handled {
        Handled::Failed(vec!["p.cb (error): no".into()])
    }

    #[test]
    fn answers_wait_for_the_last_of_the_group() {
        let together = Together::new();
        let (a, mut a_out) = Answer::new(Arc::clone(&together));
        let (b, mut b_out) = Answer::new(Arc::clone(&together));
        let (c, mut c_out) = Answer::new(Arc::clone(&together));
        a.give(Handled::Completed);
        b.give(failed());
        assert!(
            a_out.try_recv().is_err(),
            "answered before the group's last"
        );
        assert!(
            b_out.try_recv().is_err(),
            "answered before the group's last"
        );
        c.give(Handled::Completed);
        assert_eq!(a_out.try_recv().unwrap(), Handled::Completed);
        assert_eq!(b_out.try_recv().unwrap(), failed());
        assert_eq!(c_out.try_recv().unwrap(), Handled::Completed);
    }

    #[test]
    fn a_slow_event_holds_back_nothing_once_the_group_is_let_go() {
        let together = Together::new();
        let (fast, mut fast_out) = Answer::new(Arc::clone(&together));
        let (slow, mut slow_out) = Answer::new(Arc::clone(&together));
        let (later, mut later_out) = Answer::new(Arc::clone(&together));
        fast.give(Handled::Completed);
        assert!(fast_out.try_recv().is_err());
        together.let_go();
        together.let_go();
        assert_eq!(fast_out.try_recv().unwrap(), Handled::Completed);
        // Waiting for it after the fact returns at once.
        futures_util::FutureExt::now_or_never(together.until_let_go()).expect("let go");
        // Once let go, each is answered as it finishes.
        later.give(failed());
        assert_eq!(later_out.try_recv().unwrap(), failed());
        assert!(slow_out.try_recv().is_err());
        slow.give(Handled::Completed);
        assert_eq!(slow_out.try_recv().unwrap(), Handled::Completed);
    }

    #[test]
    fn an_answer_never_given_lets_the_group_go_and_says_so_to_its_receiver() {
        let together = Together::new();
        let (dropped, mut dropped_out) = Answer::new(Arc::clone(&together));
        let (kept, mut kept_out) = Answer::new(Arc::clone(&together));
        kept.give(Handled::Completed);
        assert!(kept_out.try_recv().is_err());
        drop(dropped);
        assert!(matches!(
            dropped_out.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
        assert_eq!(kept_out.try_recv().unwrap(), Handled::Completed);
    }
}
