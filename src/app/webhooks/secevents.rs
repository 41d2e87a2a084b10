//! Revocations pushed to Security Event Token receivers (RFC 8417 SETs, RFC 8935 push): at the
//! fan-out, one SET per (revocation notice, receiver), signed with `JWT_SIGNING_KEYS` for the
//! receiver's audience (its `jti` is the delivery's message id: unique per SET, the same on every
//! retry); at delivery, the POST a receiver expects.

use crate::app::config::Config;
use crate::events::Event;
use crate::jose::secevent::{SecurityEventClaims, SECEVENT_MEDIA_TYPE};
use crate::revocation::push::{subject_and_events, Notice, Receiver};
use crate::store::WebhookSubscription;
use crate::webhook::{self, Delivery};

/// The queue message type of a SET delivery (log lines say it).
pub const EVENT_TYPE: &str = "secevent";

/// One delivery of `notice` per Security Event Token receiver among `subs`; what could not be
/// made goes to `warnings`.
pub fn deliveries(
    cfg: &Config,
    now: i64,
    notice: &Notice,
    subs: &[WebhookSubscription],
    warnings: &mut Vec<Event>,
) -> Vec<Delivery> {
    let mut out = Vec::new();
    for s in subs {
        let Some(receiver) = &s.secevent else {
            continue;
        };
        match delivery(cfg, now, notice, &s.id, receiver) {
            Ok(d) => out.push(d),
            Err(message) => {
                warnings.push(Event::Warning { message });
                break;
            }
        }
    }
    out
}

/// The delivery of `notice` to receiver `endpoint`, or why there is none (a warning).
fn delivery(
    cfg: &Config,
    now: i64,
    notice: &Notice,
    endpoint: &str,
    receiver: &Receiver,
) -> Result<Delivery, String> {
    let keys = cfg
        .signing_keys
        .as_ref()
        .ok_or("secevent: Security Event Tokens need JWT_SIGNING_KEYS; none sent")?;
    let jti =
        webhook::new_msg_id().map_err(|e| format!("secevent: randomness unavailable: {e}"))?;
    let (sub_id, events) = subject_and_events(notice, &cfg.issuer, receiver);
    // The SETs of one revocation share `txn`: the subject and the time name it.
    let txn = txn(notice, &sub_id);
    let claims = SecurityEventClaims {
        iss: &cfg.issuer,
        jti: &jti,
        aud: &receiver.audience,
        txn: Some(&txn),
        sub_id: &sub_id,
        events: &events,
    };
    let set = keys
        .sign_secevent(&claims, now)
        .map_err(|e| format!("secevent: signing failed: {e}"))?;
    Ok(Delivery {
        endpoint: endpoint.to_owned(),
        msg_id: jti,
        event_type: EVENT_TYPE.to_owned(),
        payload: set,
        redelivery: false,
    })
}

/// `txn`: the same for every receiver's SET of one revocation (a hash of what changed and when).
fn txn(notice: &Notice, sub_id: &serde_json::Value) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(sub_id.to_string().as_bytes());
    h.update(notice.at.to_le_bytes());
    h.update(format!("{:?}", notice.change).as_bytes());
    let d = h.finalize();
    crate::encoding::hex(&d[..16])
}

/// The headers of a SET's POST (RFC 8935 2).
pub fn headers() -> [(&'static str, String); 3] {
    [
        ("content-type", SECEVENT_MEDIA_TYPE.to_owned()),
        ("accept", "application/json".to_owned()),
        ("user-agent", "patgate-secevents".to_owned()),
    ]
}

/// RFC 8935 2.3: a receiver answers `202` to a SET it accepted and `400` (with an `err` code)
/// to one it refuses: final, never sent again. Other answers are failures, retried.
pub fn refused(status: u16) -> bool {
    status == 400
}
