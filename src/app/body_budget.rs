//! The bound on request-body bytes buffered at once across all client connections
//! (`MAX_BUFFERED_BODY_BYTES`), so that many large bodies arriving together cannot exhaust
//! memory: a body that does not fit is refused with 503 and `retry-after` instead of buffered.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One permit stands for this many bytes (permits are `u32`, bodies can be up to 1 GiB).
const BYTES_PER_PERMIT: u64 = 1024;

/// A semaphore on body bytes, counted in KiB.
#[derive(Debug)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    total_kib: u64,
}

/// Bytes held by one request's body; given back when dropped.
#[derive(Debug, Default)]
pub struct BodyReservation {
    permit: Option<OwnedSemaphorePermit>,
    kib: u64,
}

fn kib(bytes: u64) -> u64 {
    bytes.div_ceil(BYTES_PER_PERMIT)
}

impl BodyBudget {
    /// A budget of `bytes` (rounded up to whole KiB).
    pub fn new(bytes: u64) -> Self {
        let total_kib = kib(bytes).min(Semaphore::MAX_PERMITS as u64);
        Self {
            permits: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// Grows `held` so that it covers `bytes` in all; `false` (and `held` unchanged) when the
    /// budget has not that much left. Never waits.
    pub fn try_cover(&self, held: &mut BodyReservation, bytes: u64) -> bool {
        let want = kib(bytes);
        if want <= held.kib {
            return true;
        }
        let Ok(extra) = u32::try_from(want - held.kib) else {
            return false;
        };
        match self.permits.clone().try_acquire_many_owned(extra) {
            Ok(p) => {
                match held.permit.as_mut() {
                    Some(h) => h.merge(p),
                    None => held.permit = Some(p),
                }
                held.kib = want;
                true
            }
            Err(_) => false,
        }
    }

    /// Bytes not reserved by any body right now.
    pub fn available_bytes(&self) -> u64 {
        self.permits.available_permits() as u64 * BYTES_PER_PERMIT
    }

    /// The whole budget in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.total_kib * BYTES_PER_PERMIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_budget_and_give_it_back() {
        let budget = BodyBudget::new(10 * 1024);
        let mut a = BodyReservation::default();
        assert!(budget.try_cover(&mut a, 6 * 1024));
        assert!(budget.try_cover(&mut a, 6 * 1024 + 1), "grows by one KiB");
        assert_eq!(budget.available_bytes(), 3 * 1024);
        let mut b = BodyReservation::default();
        assert!(!budget.try_cover(&mut b, 4 * 1024), "does not fit");
        assert!(budget.try_cover(&mut b, 3 * 1024));
        assert_eq!(budget.available_bytes(), 0);
        drop(a);
        assert_eq!(budget.available_bytes(), 7 * 1024);
        assert!(budget.try_cover(&mut b, 10 * 1024));
        assert!(
            !budget.try_cover(&mut b, 10 * 1024 + 1),
            "never above the total"
        );
    }
}
