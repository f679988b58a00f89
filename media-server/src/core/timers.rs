//! When the core must be woken: a min-heap of participants' deadlines, so a wake-up
//! looks only at the participants that are due instead of scanning all of them.
//!
//! Entries are never updated in place. A participant's deadline is pushed when it
//! becomes earlier than what is queued for it; an entry popped for a participant
//! that has left, or whose deadline moved later, costs one skip (and a re-push).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use super::ICE_RECOVERY_GRACE;
use super::participant::Participant;

#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Participant key → index into the participant list (rebuilt when it changes).
    index: HashMap<u64, usize>,
    next_key: u64,
}

impl Timers {
    /// A key for a new participant, never reused.
    pub fn new_key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    pub fn reindex(&mut self, participants: &[Participant]) {
        self.index.clear();
        self.index
            .extend(participants.iter().enumerate().map(|(i, p)| (p.key, i)));
    }

    /// Queues `p`'s earliest deadline unless an earlier one is queued already.
    pub fn schedule(&mut self, p: &mut Participant) {
        let Some(due) = deadline(p) else {
            return;
        };
        if p.queued.is_none_or(|queued| due < queued) {
            self.heap.push(Reverse((due, p.key)));
            p.queued = Some(due);
        }
    }

    /// The earliest queued deadline (possibly of an entry that turns out stale).
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Indices of the participants with an entry due at `now`, each once. Their
    /// queued mark is cleared: the caller runs them and schedules them again.
    pub fn pop_due(&mut self, now: Instant, participants: &mut [Participant]) -> Vec<usize> {
        let mut due = Vec::new();
        while let Some(Reverse((at, key))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            let Some(&idx) = self.index.get(&key) else {
                continue; // left since
            };
            if let Some(p) = participants.get_mut(idx)
                && p.queued.is_some()
            {
                p.queued = None;
                due.push(idx);
            }
        }
        due
    }
}

/// The earliest time `p` needs the core: str0m's timeout, the end of its ICE grace
/// period, its next black frame.
fn deadline(p: &Participant) -> Option<Instant> {
    [
        p.next_timeout,
        p.ice_lost_since.map(|t| t + ICE_RECOVERY_GRACE),
        p.blank_next,
    ]
    .into_iter()
    .flatten()
    .min()
}
