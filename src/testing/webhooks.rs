//! The in-memory webhook storage, queue and sender.

use super::{Fault, MemoryBackend, WebhookPost};
use crate::store::{StoreError, Write};

impl crate::store::WebhookStore for MemoryBackend {
    async fn list_webhooks(&self) -> Result<Vec<crate::store::WebhookEndpoint>, StoreError> {
        self.d1()?;
        let mut all = self.webhooks.borrow().clone();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    async fn webhook(&self, id: &str) -> Result<Option<crate::store::WebhookEndpoint>, StoreError> {
        self.d1()?;
        Ok(self.webhooks.borrow().iter().find(|w| w.id == id).cloned())
    }

    async fn create_webhook(&self, w: &crate::store::WebhookEndpoint) -> Result<Write, StoreError> {
        self.d1()?;
        let mut all = self.webhooks.borrow_mut();
        if all.iter().any(|x| x.id == w.id) {
            return Ok(Write::Conflict);
        }
        all.push(w.clone());
        Ok(Write::Done)
    }

    async fn update_webhook_secrets(
        &self,
        w: &crate::store::WebhookEndpoint,
    ) -> Result<Write, StoreError> {
        self.d1()?;
        let mut all = self.webhooks.borrow_mut();
        match all.iter_mut().find(|x| x.id == w.id) {
            Some(x) => {
                x.secret = w.secret.clone();
                x.previous_secret.clone_from(&w.previous_secret);
                Ok(Write::Done)
            }
            None => Ok(Write::NotFound),
        }
    }

    async fn delete_webhook(&self, id: &str) -> Result<Write, StoreError> {
        self.d1()?;
        let mut all = self.webhooks.borrow_mut();
        let before = all.len();
        all.retain(|w| w.id != id);
        Ok(if all.len() < before {
            Write::Done
        } else {
            Write::NotFound
        })
    }
}

/// What Cloudflare Queues measure of a message (its JSON body and about 100 bytes of metadata),
/// measured here independently of the producer's own estimate.
fn platform_message_bytes(d: &crate::webhook::Delivery) -> usize {
    serde_json::to_string(d).map_or(usize::MAX / 4, |b| b.len()) + 100
}

impl crate::store::DeliveryQueue for MemoryBackend {
    /// Refuses a batch the platform would refuse (over 100 messages, a message over 128 KB, or
    /// over 256 KB in all), then applies the next injected fault.
    async fn enqueue(&self, msgs: &[crate::webhook::Delivery]) -> Result<(), StoreError> {
        let sizes: Vec<usize> = msgs.iter().map(platform_message_bytes).collect();
        if msgs.len() > 100
            || sizes.iter().any(|n| *n > 128_000)
            || sizes.iter().sum::<usize>() > 256_000
        {
            return Err(StoreError(format!(
                "batch of {} messages, {} bytes: over the Queues limits (test)",
                msgs.len(),
                sizes.iter().sum::<usize>()
            )));
        }
        let fault = {
            let mut f = self.queue_faults.borrow_mut();
            (!f.is_empty()).then(|| f.remove(0))
        };
        if fault == Some(Fault::Lost) {
            return Err(StoreError("enqueue lost (test)".into()));
        }
        self.queue.borrow_mut().extend_from_slice(msgs);
        if fault == Some(Fault::LandedButFailed) {
            return Err(StoreError("enqueue landed but failed (test)".into()));
        }
        Ok(())
    }
}

impl crate::store::WebhookSender for MemoryBackend {
    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: &str,
        timeout_secs: u32,
    ) -> Result<u16, StoreError> {
        self.posts.borrow_mut().push(WebhookPost {
            url: url.to_owned(),
            headers: headers.to_vec(),
            body: body.to_owned(),
            timeout_secs,
        });
        self.post_answers
            .borrow_mut()
            .pop_front()
            .unwrap_or(Ok(200))
    }
}
