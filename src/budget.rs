//! The budget cap: reserve each attempt's worst case before it is sent, settle to the real
//! charge when it returns. The cap covers the output dir's recorded spend across resumes, so
//! spend plus every outstanding reservation never passes it.

use std::sync::Mutex;

use rust_decimal::Decimal;

/// The shared budget of a run.
pub struct Budget {
    cap: Option<Decimal>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    spent: Decimal,
    reserved: Decimal,
}

/// An outstanding reservation (settle it exactly once).
#[derive(Debug)]
#[must_use = "a reservation must be settled"]
pub struct Reservation(Decimal);

impl Budget {
    /// A budget with an optional cap, starting from what the output dir already spent.
    pub fn new(cap: Option<Decimal>, already_spent: Decimal) -> Budget {
        Budget {
            cap,
            state: Mutex::new(State {
                spent: already_spent,
                reserved: Decimal::ZERO,
            }),
        }
    }

    /// Reserves `worst` (an attempt's worst-case charge) when it fits under the cap.
    /// With no cap every reservation fits.
    pub fn try_reserve(&self, worst: Decimal) -> Option<Reservation> {
        let mut s = self.lock();
        if let Some(cap) = self.cap
            && s.spent + s.reserved + worst > cap
        {
            return None;
        }
        s.reserved += worst;
        Some(Reservation(worst))
    }

    /// Settles a reservation: `Some(cost)` is the real charge (0 when not billed); `None`
    /// means the charge is unknown, and the worst case stays counted as spent.
    pub fn settle(&self, r: Reservation, actual: Option<Decimal>) {
        let mut s = self.lock();
        s.reserved -= r.0;
        s.spent += actual.unwrap_or(r.0);
    }

    /// Spent so far (recorded, including earlier runs).
    pub fn spent(&self) -> Decimal {
        self.lock().spent
    }

    /// Reserved by attempts in flight.
    pub fn reserved(&self) -> Decimal {
        self.lock().reserved
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_over_cap() {
        let b = Budget::new(Some(Decimal::new(10, 0)), Decimal::new(4, 0));
        let r1 = b.try_reserve(Decimal::new(5, 0)).unwrap();
        assert!(b.try_reserve(Decimal::new(2, 0)).is_none());
        b.settle(r1, Some(Decimal::new(1, 0)));
        assert_eq!(b.spent(), Decimal::new(5, 0));
        let r2 = b.try_reserve(Decimal::new(5, 0)).unwrap();
        b.settle(r2, None);
        assert_eq!(b.spent(), Decimal::new(10, 0));
        assert!(b.try_reserve(Decimal::new(1, 6)).is_none());
    }
}
