//! One timer queue for every instance, instead of a task and a sleep per instance: each
//! instance has at most one entry that matters (its earliest deadline). Entries made stale
//! by a re-arm are skipped when they come up, so re-arming is a push, never a search.

use super::InstanceId;
use havip_vrrp::Time;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Debug, Default)]
pub struct TimerQueue {
    heap: BinaryHeap<Reverse<(Time, InstanceId)>>,
}

impl TimerQueue {
    /// Note that `id` wants to be woken at `deadline`.
    pub fn schedule(&mut self, id: InstanceId, deadline: Time) {
        self.heap.push(Reverse((deadline, id)));
    }

    /// The earliest entry, which may be stale.
    pub fn peek(&self) -> Option<Time> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Remove and return the earliest entry due at `now`.
    pub fn pop_due(&mut self, now: Time) -> Option<(Time, InstanceId)> {
        match self.heap.peek() {
            Some(Reverse((t, _))) if *t <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drop stale entries when the heap has grown well beyond the live instance count, so a
    /// backup that re-arms on every advert cannot grow it without bound.
    pub fn compact(&mut self, live: impl Fn(InstanceId, Time) -> bool) {
        let entries = std::mem::take(&mut self.heap).into_vec();
        self.heap = entries
            .into_iter()
            .filter(|Reverse((t, id))| live(*id, *t))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let mut q = TimerQueue::default();
        q.schedule(InstanceId(2), Time::from_millis(30));
        q.schedule(InstanceId(1), Time::from_millis(10));
        q.schedule(InstanceId(3), Time::from_millis(20));
        assert_eq!(q.pop_due(Time::from_millis(5)), None);
        assert_eq!(
            q.pop_due(Time::from_millis(25)),
            Some((Time::from_millis(10), InstanceId(1)))
        );
        assert_eq!(
            q.pop_due(Time::from_millis(25)),
            Some((Time::from_millis(20), InstanceId(3)))
        );
        assert_eq!(q.pop_due(Time::from_millis(25)), None);
        assert_eq!(q.peek(), Some(Time::from_millis(30)));
    }

    #[test]
    fn compaction_keeps_only_live_entries() {
        let mut q = TimerQueue::default();
        for ms in 0..100 {
            q.schedule(InstanceId(1), Time::from_millis(ms));
        }
        q.compact(|_, t| t == Time::from_millis(99));
        assert_eq!(q.len(), 1);
    }
}
