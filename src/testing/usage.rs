//! The in-memory backend's usage counting, inventory and webhook delivery log: the `LastUsed`
//! objects run the same bookkeeping as the Durable Object ([`crate::usage::book`]), and
//! [`MemoryBackend::flush_usage`] is their alarm (the write to "D1").

use super::{MemoryBackend, Step};
use crate::last_use::UseRecord;
use crate::model::TokenRecord;
use crate::store::{DeliveryLog, Inventory, StoreError, UsageRecorder, UsageStore, Write};
use crate::store_usage::{Attempt, EndpointHealth, InventoryQuery};
use crate::usage::book::{self, UsageRow};

impl UsageRecorder for MemoryBackend {
    async fn record_use(&self, rec: &UseRecord) -> Result<(), StoreError> {
        self.bump(|c| c.do_call += 1);
        book::check(rec).map_err(|e| StoreError(format!("bad record: {}", e.0)))?;
        let now = self.object_now.get().unwrap_or(rec.at);
        self.write(Step::UseRecord, || {
            self.uses.borrow_mut().push(rec.clone());
            let mut objects = self.objects.borrow_mut();
            let o = objects.entry(rec.token_id.clone()).or_default();
            let applied = book::apply(&mut o.state, &mut o.days, rec, now);
            for d in applied.delete {
                o.days.remove(&d);
            }
        })
    }
}

impl MemoryBackend {
    /// Every object's alarm at `now`: its counts, daily totals and places written to the token's
    /// record, its changed days to the usage rows, days past retention deleted.
    pub fn flush_usage(&self, now: i64) {
        let ids: Vec<String> = self.objects.borrow().keys().cloned().collect();
        for id in ids {
            let (flush, seq) = {
                let objects = self.objects.borrow();
                let o = &objects[&id];
                let dirty: Vec<crate::last_use::DayBucket> = o
                    .state
                    .dirty
                    .iter()
                    .filter_map(|d| o.days.get(d).cloned())
                    .collect();
                (book::flush(&o.state, &dirty, now), o.state.seq)
            };
            if let Some(t) = self
                .tokens
                .borrow_mut()
                .iter_mut()
                .find(|t| t.id == flush.token_id)
            {
                t.last_used_at = Some(t.last_used_at.unwrap_or(0).max(flush.last_used_at));
                t.use_count = flush.use_count;
                t.daily_uses = crate::usage::summary::DailyUses::parse(Some(&flush.daily_uses))
                    .unwrap_or_default();
                t.last_used_from = crate::usage::summary::parse_from(Some(&flush.last_used_from))
                    .unwrap_or_default();
            }
            let mut rows = self.usage_rows.borrow_mut();
            for r in flush.rows {
                match rows.iter_mut().find(|(t, x)| {
                    *t == flush.token_id
                        && x.day == r.day
                        && x.via == r.via
                        && x.name == r.name
                        && x.outcome == r.outcome
                }) {
                    Some((_, x)) => x.uses = r.uses,
                    None => rows.push((flush.token_id.clone(), r)),
                }
            }
            rows.retain(|(t, r)| *t != flush.token_id || r.day >= flush.first_kept_day);
            if let Some(o) = self.objects.borrow_mut().get_mut(&id) {
                book::flushed(&mut o.state, seq);
            }
        }
    }
}

impl UsageStore for MemoryBackend {
    async fn token_usage(&self, id: &str, from_day: i64) -> Result<Vec<UsageRow>, StoreError> {
        self.d1()?;
        Ok(self
            .usage_rows
            .borrow()
            .iter()
            .filter(|(t, r)| t == id && r.day >= from_day)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn prune_usage(&self, before_day: i64) -> Result<(), StoreError> {
        self.d1()?;
        self.usage_rows
            .borrow_mut()
            .retain(|(_, r)| r.day >= before_day);
        Ok(())
    }

    async fn grant_uses(
        &self,
        grant_ids: &[String],
        from_day: i64,
    ) -> Result<Vec<crate::store_usage::GrantUses>, StoreError> {
        self.d1()?;
        self.read_fault(Step::GrantUses)?;
        Ok(crate::storage::grant_usage::from_records(
            &self.tokens.borrow(),
            &self.usage_rows.borrow(),
            grant_ids,
            from_day,
        ))
    }
}

impl Inventory for MemoryBackend {
    async fn inventory(&self, q: &InventoryQuery) -> Result<Vec<TokenRecord>, StoreError> {
        self.d1()?;
        Ok(crate::storage::inventory::page(&self.tokens.borrow(), q))
    }

    async fn inventory_count(&self, q: &InventoryQuery) -> Result<u64, StoreError> {
        self.d1()?;
        Ok(self
            .tokens
            .borrow()
            .iter()
            .filter(|r| crate::storage::inventory::matches(r, q))
            .count() as u64)
    }
}

impl DeliveryLog for MemoryBackend {
    async fn record_attempt(&self, a: &Attempt) -> Result<i64, StoreError> {
        self.d1()?;
        self.write(Step::AttemptRecord, || {
            let mut all = self.attempts.borrow_mut();
            let id = all.last().and_then(|a| a.id).unwrap_or(0) + 1;
            all.push(Attempt {
                id: Some(id),
                ..a.clone()
            });
            id
        })
    }

    async fn attempts(
        &self,
        endpoint: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Attempt>, StoreError> {
        self.d1()?;
        Ok(self
            .attempts
            .borrow()
            .iter()
            .rev()
            .filter(|a| a.endpoint == endpoint && a.id < Some(before.unwrap_or(i64::MAX)))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn attempt(&self, endpoint: &str, id: i64) -> Result<Option<Attempt>, StoreError> {
        self.d1()?;
        Ok(self
            .attempts
            .borrow()
            .iter()
            .find(|a| a.endpoint == endpoint && a.id == Some(id))
            .cloned())
    }

    async fn set_health(&self, id: &str, h: &EndpointHealth) -> Result<Write, StoreError> {
        self.d1()?;
        self.write(Step::HealthWrite, || {
            match self.webhooks.borrow_mut().iter_mut().find(|w| w.id == id) {
                Some(w) => {
                    w.health = h.clone();
                    Write::Done
                }
                None => Write::NotFound,
            }
        })
    }

    async fn prune_attempts(&self, before: i64) -> Result<(), StoreError> {
        self.d1()?;
        self.attempts.borrow_mut().retain(|a| a.at >= before);
        Ok(())
    }
}
