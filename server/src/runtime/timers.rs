//! One timer queue for every instance, instead of a task and a sleep per instance: each
//! instance has at most one entry that matters (its earliest deadline). Entries made stale
//! by a re-arm stay in the heap, so re-arming is a push, never a search; the data plane
//! drops them when they reach the front, and compacts the heap if they pile up.

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

    /// Move an instance's wake-up from `superseded` (its entry until now, if any) to `next`
    /// (none: nothing to wake it for). The old entry stays in the heap, stale; if it was at
    /// the front, the stale entries there are dropped, so the front is the earliest entry
    /// still wanted. `live` must already say `next` is the instance's entry. Returns whether
    /// the front moved, which is when whoever sleeps until it must look again.
    pub fn requeue(
        &mut self,
        id: InstanceId,
        superseded: Option<Time>,
        next: Option<Time>,
        live: impl Fn(InstanceId, Time) -> bool,
    ) -> bool {
        let front_before = self.peek();
        if let Some(deadline) = next {
            self.schedule(id, deadline);
        }
        if superseded.is_some() && superseded == front_before {
            self.discard_stale_front(live);
        }
        self.peek() != front_before
    }

    /// Drop entries from the front for as long as `live` says they are stale, so the
    /// earliest entry left is one that is wanted.
    pub fn discard_stale_front(&mut self, live: impl Fn(InstanceId, Time) -> bool) {
        while let Some(Reverse((t, id))) = self.heap.peek() {
            if live(*id, *t) {
                break;
            }
            self.heap.pop();
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
    fn stale_entries_are_dropped_from_the_front_only_up_to_the_first_live_one() {
        let mut q = TimerQueue::default();
        for ms in [10, 20, 30, 40] {
            q.schedule(InstanceId(ms), Time::from_millis(ms));
        }
        q.schedule(InstanceId(10), Time::from_millis(50));
        // Instance 10 moved to 50 ms and 30 is stale too; 20 is live.
        let live = |id: InstanceId, t: Time| match id.0 {
            10 => t == Time::from_millis(50),
            30 => false,
            _ => true,
        };
        q.discard_stale_front(live);
        assert_eq!(q.peek(), Some(Time::from_millis(20)));
        assert_eq!(q.len(), 4, "the stale entry behind a live one stays");
        q.pop_due(Time::from_millis(20));
        q.discard_stale_front(live);
        assert_eq!(q.peek(), Some(Time::from_millis(40)));
    }

    #[test]
    fn deadlines_that_keep_moving_later_leave_the_earliest_live_one_at_the_front() {
        // Three backups whose Master_Down_Timers every advert pushes 10 ms later: the front
        // must always be the earliest deadline still wanted, never a superseded one (which
        // would wake the thread for nothing).
        use std::cell::RefCell;
        use std::collections::HashMap;
        let mut q = TimerQueue::default();
        let scheduled: RefCell<HashMap<InstanceId, Time>> = RefCell::new(HashMap::new());
        let live = |id: InstanceId, t: Time| scheduled.borrow().get(&id) == Some(&t);
        for round in 0..20u64 {
            for i in 1..=3u64 {
                let id = InstanceId(i);
                let next = Time::from_millis(36 + round * 10 + i);
                let superseded = scheduled.borrow_mut().insert(id, next);
                let moved = q.requeue(id, superseded, Some(next), live);
                let earliest = scheduled.borrow().values().min().copied();
                assert_eq!(q.peek(), earliest, "round {round}, instance {i}");
                // In the first round only the first push moves the front; after that, each
                // instance in turn supersedes the entry at the front.
                assert_eq!(moved, round > 0 || i == 1, "round {round}, instance {i}");
            }
        }
        // An instance that stops wanting a wake-up leaves the front to the next one.
        let superseded = scheduled.borrow_mut().remove(&InstanceId(1));
        assert!(q.requeue(InstanceId(1), superseded, None, live));
        assert_eq!(q.peek(), scheduled.borrow().get(&InstanceId(2)).copied());
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
