//! In memory: the clean-up of ended authorization state ([`EndedState`]), as D1 does it: oldest
//! first, at most `limit` a call, a grant with its refresh tokens in one step.

use super::memory::{AuthzMemory, AuthzStep};
use super::records::AppGrant;
use super::store::EndedState;
use crate::store::StoreError;

/// When a grant ended: revoked, or at the latest at its absolute expiry (D1:
/// `coalesce(revoked_at, expires_at)`, indexed).
fn ended_at(g: &AppGrant) -> i64 {
    g.revoked_at.unwrap_or(g.expires_at)
}

/// Removes at most `limit` of `rows` whose `at` is before `before`, oldest first: the removed.
fn take_oldest<T>(rows: &mut Vec<T>, at: impl Fn(&T) -> i64, before: i64, limit: u32) -> Vec<T> {
    let mut due: Vec<(i64, usize)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| at(r) < before)
        .map(|(i, r)| (at(r), i))
        .collect();
    due.sort_unstable();
    due.truncate(limit as usize);
    let mut picked: Vec<usize> = due.into_iter().map(|(_, i)| i).collect();
    picked.sort_unstable_by(|a, b| b.cmp(a));
    picked.into_iter().map(|i| rows.remove(i)).collect()
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl EndedState for AuthzMemory {
    async fn delete_expired_codes(&self, before: i64, limit: u32) -> Result<u32, StoreError> {
        self.write(AuthzStep::Cleanup, || {
            count(
                take_oldest(
                    &mut self.codes.borrow_mut(),
                    |c| c.expires_at,
                    before,
                    limit,
                )
                .len(),
            )
        })
    }

    async fn delete_expired_consents(&self, before: i64, limit: u32) -> Result<u32, StoreError> {
        self.write(AuthzStep::Cleanup, || {
            count(
                take_oldest(
                    &mut self.consents.borrow_mut(),
                    |c| c.expires_at,
                    before,
                    limit,
                )
                .len(),
            )
        })
    }

    async fn delete_ended_grants(&self, before: i64, limit: u32) -> Result<u32, StoreError> {
        self.write(AuthzStep::Cleanup, || {
            let gone = take_oldest(&mut self.grants.borrow_mut(), ended_at, before, limit);
            self.refresh
                .borrow_mut()
                .retain(|r| !gone.iter().any(|g| g.id == r.grant_id));
            count(gone.len())
        })
    }
}
