use super::*;
use crate::revocation::feed::FeedLog;

const P: Params = Params::DEFAULT;
/// A time after every entry's `at` in these tests.
const LATER: Millis = 1 << 40;

fn rec(id: &str) -> Key {
    Key::Record(id.into())
}

fn hash(n: u8) -> TokenHash {
    TokenHash([n; 32])
}

fn feed_with(keys: &[Key], until: Millis) -> FeedLog {
    let mut f = FeedLog::new();
    for k in keys {
        f.append(k.clone(), 0, until);
    }
    f
}

#[test]
fn refreshing_merges_pages_and_stamps_the_send_time() {
    let mut f = feed_with(&[rec("a"), rec("b"), rec("c")], 1_000_000);
    let s0 = Snapshot::empty();
    // a first page that does not reach the head: not valid as of anything yet
    let s1 = s0
        .refreshed(&f.since(0, 2), 100, 150, 500)
        .expect("continues");
    assert_eq!(
        (s1.as_of, s1.through, s1.entries.len()),
        (Millis::MIN, 2, 2)
    );
    let s2 = s1
        .refreshed(&f.since(2, 2), 200, 900, 500)
        .expect("continues");
    assert_eq!(
        (s2.as_of, s2.through, s2.entries.len()),
        (200, 3, 3),
        "sent at 200, not 900"
    );
    // incremental: only what is new travels
    f.append(rec("d"), 0, 1_000_000);
    let page = f.since(s2.through, 100);
    assert_eq!(page.entries.len(), 1);
    let s3 = s2.refreshed(&page, 300, 310, 500).expect("continues");
    assert_eq!((s3.as_of, s3.through, s3.entries.len()), (300, 4, 4));
    // a page from before s3 (a delayed answer) adds nothing and keeps the newer as_of
    let old = s3
        .refreshed(&f.since(0, 100), 50, 320, 500)
        .expect("overlaps");
    assert_eq!(old, s3);
    // a page that skips entries is refused
    f.append(rec("e"), 0, 1_000_000);
    f.append(rec("f"), 0, 1_000_000);
    assert_eq!(
        s3.refreshed(&f.since(5, 100), 400, 400, 500),
        Err(Refused::Gap { through: 4 })
    );
}

#[test]
fn a_feed_that_went_back_is_noticed() {
    let mut feed = feed_with(&[rec("a"), rec("b"), rec("c")], 1_000_000);
    let snap = Snapshot::empty()
        .refreshed(&feed.since(0, 10), 100, 100, 500)
        .expect("ok");
    let mut view = View::new();
    view.apply(&snap, 100, &P);
    // the store is restored to when it held one entry; seq 2 is given out again
    feed = feed_with(&[rec("a")], 1_000_000);
    feed.append(rec("x"), 0, 1_000_000);
    assert_eq!(
        snap.refreshed(&feed.since(snap.through, 10), 2_000, 2_000, 500),
        Err(Refused::Rewound { head: 2 })
    );
    // the location starts over; the isolate, seeing a newer snapshot that knows less, too
    let again = Snapshot::empty()
        .refreshed(&feed.since(0, 10), 2_000, 2_000, 500)
        .expect("ok");
    view.apply(&again, 2_000, &P);
    assert_eq!((view.through(), view.as_of()), (2, 2_000));
    let record = |r| Subject {
        record: Some(r),
        ..Subject::default()
    };
    assert_eq!(view.hit(&record("x"), LATER, &P), Some(Hit::Revoked));
    assert_eq!(
        view.hit(&record("b"), LATER, &P),
        None,
        "the restored feed no longer has it"
    );
    // a copy that knows less and is not newer beyond the clock allowance (a delayed answer)
    // does not reset the view
    let mut other = View::new();
    other.apply(&snap, 100, &P);
    let older = Snapshot::empty()
        .refreshed(
            &feed_with(&[rec("a")], 1_000_000).since(0, 10),
            600,
            600,
            500,
        )
        .expect("ok");
    other.apply(&older, 650, &P);
    assert_eq!((other.through(), other.as_of(), other.len()), (3, 600, 3));
}

#[test]
fn refreshing_drops_expired_entries() {
    let mut f = FeedLog::new();
    f.append(rec("short"), 0, 1_000);
    f.append(rec("long"), 0, 9_000);
    let s = Snapshot::empty()
        .refreshed(&f.since(0, 10), 0, 0, 500)
        .expect("ok");
    assert_eq!(s.entries.len(), 2);
    let later = s
        .refreshed(&f.since(s.through, 10), 1_400, 1_400, 500)
        .expect("ok");
    assert_eq!(later.entries.len(), 2, "kept for the skew allowance");
    let later = s
        .refreshed(&f.since(s.through, 10), 1_600, 1_600, 500)
        .expect("ok");
    assert_eq!(
        later.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2]
    );
    assert_eq!(later.through, 2);
}

/// The Cache API body is read by other isolates and versions: this text must not change.
#[test]
fn snapshot_text_format_unchanged() {
    let mut f = FeedLog::new();
    f.append(
        Key::token(&hash(0xab)),
        1_700_000_000_000,
        1_700_003_660_000,
    );
    f.append(
        Key::Generation("pat1".into(), 2),
        1_700_000_000_500,
        1_700_000_960_500,
    );
    let s = Snapshot::empty()
        .refreshed(&f.since(0, 10), 1_700_000_001_000, 1_700_000_001_000, 500)
        .expect("ok");
    let text = s.encode().expect("encodes");
    assert_eq!(
        text,
        "patgate-revocations 1 1700000001000 2\n\
         1 t 1700000000000 1700003660000 abababababababababababababababab\n\
         2 g 1700000000500 1700000960500 2 pat1\n"
    );
    assert_eq!(Snapshot::parse(&text), Ok(s));
    let empty = Snapshot::empty().encode().expect("encodes");
    assert_eq!(empty, "patgate-revocations 1 -9223372036854775808 0\n");
    assert_eq!(Snapshot::parse(&empty), Ok(Snapshot::empty()));
}

#[test]
fn hostile_snapshots_are_refused_whole() {
    let h = "patgate-revocations 1 10 5\n";
    for bad in [
        String::new(),
        "patgate-revocations 2 10 5\n".to_owned(),
        "patgate-revocations 1 10\n".to_owned(),
        "patgate-revocations 1 x 5\n".to_owned(),
        "patgate-revocations 1 10 -5\n".to_owned(),
        "patgate-revocations 110 5\n".to_owned(),
        format!("{h}2 r 0 1 a\n1 r 0 1 b\n"),
        format!("{h}2 r 0 1 a\n2 r 0 1 b\n"),
        format!("{h}6 r 0 1 a\n"),
        format!("{h}1 r 0 1 a\ngarbage\n"),
        format!("{h}1 r 0 1 a\n\n"),
        format!("{h}1 r 0 1 a\r\n"),
    ] {
        assert!(Snapshot::parse(&bad).is_err(), "{bad:?}");
    }
    // a kind from a newer version is skipped, the rest kept
    let s = Snapshot::parse(&format!("{h}1 z 0 1 future\n2 r 0 1 a\n")).expect("parses");
    assert_eq!(s.entries.len(), 1);
    assert_eq!(s.entries[0].key, rec("a"));
}

#[test]
fn an_isolate_parses_only_what_is_new() {
    let mut f = FeedLog::new();
    for id in ["a", "b", "c", "d"] {
        f.append(rec(id), 0, 1_000_000);
    }
    let s = Snapshot::empty()
        .refreshed(&f.since(0, 10), 50, 50, 500)
        .expect("ok");
    let text = s.encode().expect("encodes");
    let tail = Snapshot::parse_after(&text, 2).expect("parses");
    assert_eq!((tail.as_of, tail.through), (50, 4));
    assert_eq!(tail.entries, s.entries[2..].to_vec());
    assert_eq!(
        Snapshot::parse_after(&text, 4).expect("parses").entries,
        vec![]
    );
    // skipped lines still have to be in order
    let shuffled = text.replacen("1 r", "3 r", 1);
    assert_eq!(
        Snapshot::parse_after(&shuffled, 3),
        Err(FormatError::Inconsistent)
    );
    // a view that knew the first two, fed only the tail, ends where the whole snapshot leads
    let first = Snapshot::empty()
        .refreshed(&f.since(0, 2), 40, 40, 500)
        .expect("ok");
    let (mut whole, mut partial) = (View::new(), View::new());
    whole.apply(&s, 50, &P);
    partial.apply(&first, 40, &P);
    assert_eq!(partial.through(), 2);
    let tail = Snapshot::parse_after(&text, partial.through()).expect("parses");
    assert_eq!(partial.apply(&tail, 50, &P), 2);
    assert_eq!(
        (whole.len(), whole.through(), whole.as_of()),
        (partial.len(), partial.through(), partial.as_of())
    );
}

#[test]
fn a_new_view_asks_until_its_first_snapshot() {
    let v = View::new();
    assert!(v.must_fall_back(0, &P));
    assert!(v.must_fall_back(Millis::MAX, &P));
    assert!(v.wants_fetch(0, &P));
    assert!(v.is_empty());
}

#[test]
fn view_age_decides_trust_and_refresh() {
    let f = feed_with(&[], 1);
    let s = Snapshot::empty()
        .refreshed(&f.since(0, 10), 10_000, 10_000, P.skew_ms)
        .expect("ok");
    let mut v = View::new();
    v.apply(&s, 10_000, &P);
    assert_eq!(v.as_of(), 10_000);
    // age counts the skew allowance
    assert_eq!(v.age(10_000, &P), P.skew_ms);
    assert!(!v.wants_fetch(10_000 + P.refresh_after_ms - P.skew_ms, &P));
    assert!(v.wants_fetch(10_001 + P.refresh_after_ms - P.skew_ms, &P));
    assert!(!v.must_fall_back(10_000 + P.max_age_ms - P.skew_ms, &P));
    assert!(v.must_fall_back(10_001 + P.max_age_ms - P.skew_ms, &P));
    // one fetch at a time, until it is overdue
    let t = 20_000;
    v.fetch_started(t);
    assert!(!v.wants_fetch(t + 1, &P));
    assert!(!v.wants_fetch(t + P.fetch_timeout_ms - 1, &P));
    assert!(v.wants_fetch(t + P.fetch_timeout_ms, &P));
    assert!(
        !v.wants_fetch(t - 1, &P),
        "a request that began just before the one that started the fetch starts no other"
    );
    assert!(!v.wants_fetch(t - P.fetch_timeout_ms + 1, &P));
    assert!(
        v.wants_fetch(t - P.fetch_timeout_ms, &P),
        "a clock that went back by more than the timeout does not block fetches"
    );
    v.fetch_failed();
    assert!(v.wants_fetch(t + 1, &P));
    // an older snapshot applied late does not make the view older
    let older = Snapshot::empty()
        .refreshed(&f.since(0, 10), 5_000, 5_000, P.skew_ms)
        .expect("ok");
    v.fetch_started(t);
    v.apply(&older, t, &P);
    assert_eq!(v.as_of(), 10_000);
    assert!(v.wants_fetch(t, &P), "apply ends the fetch under way");
}

#[test]
fn every_key_kind_is_found_and_nothing_else() {
    let dead = hash(1);
    let mut shares_prefix = [1u8; 32];
    shares_prefix[31] = 2;
    let shares_prefix = TokenHash(shares_prefix);
    let feed = feed_with(
        &[
            Key::token(&dead),
            rec("pat-a"),
            Key::Generation("pat-b".into(), 3),
            Key::Jti("jti-1".into()),
            Key::Grant("grant-1".into()),
        ],
        1_000_000,
    );
    let snap = Snapshot::empty()
        .refreshed(&feed.since(0, 10), 0, 0, 500)
        .expect("ok");
    let mut view = View::new();
    assert_eq!(view.apply(&snap, 0, &P), 5);
    let live = hash(2);
    let none = Subject::default();
    let token = |h| Subject {
        token: Some(h),
        ..none
    };
    let record = |r, g| Subject {
        record: Some(r),
        generation: g,
        ..none
    };
    let jti = |j| Subject {
        jti: Some(j),
        ..none
    };
    let grant = |g| Subject {
        grant: Some(g),
        ..none
    };
    let revoked = Some(Hit::Revoked);
    for (subject, expected) in [
        (token(&dead), revoked),
        // 16 bytes decide: a token sharing them counts as revoked (chance ~ n * 2^-128)
        (token(&shares_prefix), revoked),
        (token(&live), None),
        (record("pat-a", None), revoked),
        (record("pat-a", Some(7)), revoked),
        (record("pat-c", None), None),
        // generations below the first live one are dead; the record itself is not
        (record("pat-b", Some(2)), revoked),
        (record("pat-b", Some(3)), None),
        (record("pat-b", None), None),
        (jti("jti-1"), revoked),
        (jti("jti-2"), None),
        (grant("grant-1"), revoked),
        (grant("grant-2"), None),
        (none, None),
    ] {
        assert_eq!(view.hit(&subject, LATER, &P), expected, "{subject:?}");
    }
}

#[test]
fn a_changed_client_is_read_again_once() {
    let mut f = FeedLog::new();
    f.append(Key::Client("uid-1".into()), 10_000, 1_000_000);
    let s = Snapshot::empty()
        .refreshed(&f.since(0, 10), 10_100, 10_100, 500)
        .expect("ok");
    let mut v = View::new();
    v.apply(&s, 10_100, &P);
    let client = |read_at| Subject {
        token: Some(&TokenHash([9; 32])),
        client_uid: Some("uid-1"),
        client_read_at: read_at,
        ..Subject::default()
    };
    assert_eq!(v.hit(&client(None), LATER, &P), Some(Hit::ClientChanged));
    assert_eq!(
        v.hit(&client(Some(9_000)), LATER, &P),
        Some(Hit::ClientChanged)
    );
    assert_eq!(
        v.hit(&client(Some(10_500)), LATER, &P),
        Some(Hit::ClientChanged),
        "within the skew"
    );
    assert_eq!(
        v.hit(&client(Some(10_501)), LATER, &P),
        None,
        "read after the change"
    );
    let other = Subject {
        client_uid: Some("uid-2"),
        ..Subject::default()
    };
    assert_eq!(v.hit(&other, LATER, &P), None);
}

#[test]
fn expired_entries_leave_the_view() {
    let mut f = FeedLog::new();
    f.append(rec("short"), 0, 1_000);
    f.append(rec("long"), 0, 100_000);
    let s = Snapshot::empty()
        .refreshed(&f.since(0, 10), 0, 0, 500)
        .expect("ok");
    let mut v = View::new();
    v.apply(&s, 0, &P);
    assert_eq!(v.len(), 2);
    // known entries are not added twice; the expired one goes at the next apply past its until
    v.apply(&s, 1_400, &P);
    assert_eq!(v.len(), 2);
    v.apply(&s, 1_501, &P);
    assert_eq!(v.len(), 1);
    let still = Subject {
        record: Some("long"),
        ..Subject::default()
    };
    assert_eq!(v.hit(&still, LATER, &P), Some(Hit::Revoked));
    // an entry already expired when it arrives is not kept
    let mut late = View::new();
    assert_eq!(late.apply(&s, 50_000, &P), 1);
}

#[test]
fn the_latest_client_change_is_known() {
    let mut f = FeedLog::new();
    let mut v = View::new();
    let s = Snapshot::empty()
        .refreshed(&f.since(0, 10), 10, 10, P.skew_ms)
        .expect("ok");
    v.apply(&s, 10, &P);
    assert_eq!(v.latest_client_change(), None);
    f.append(Key::Client("u1".into()), 500, 1_000_000);
    f.append(Key::Client("u2".into()), 300, 1_000_000);
    f.append(rec("p"), 900, 1_000_000);
    let s = s.refreshed(&f.since(0, 10), 20, 20, P.skew_ms).expect("ok");
    v.apply(&s, 20, &P);
    assert_eq!(v.latest_client_change(), Some(500));
}

#[test]
fn a_token_entry_kills_from_its_at_the_earliest_one_winning() {
    // a rotation's short grace: the old token dies when the grace ends, not when it is written
    let old = hash(7);
    let mut f = FeedLog::new();
    f.append(Key::token(&old), 50_000, 1_000_000);
    let snap = Snapshot::empty()
        .refreshed(&f.since(0, 10), 10_000, 10_000, 500)
        .expect("ok");
    let mut v = View::new();
    v.apply(&snap, 10_000, &P);
    let s = Subject {
        token: Some(&old),
        ..Subject::default()
    };
    assert_eq!(v.hit(&s, 49_999, &P), None, "in its grace");
    assert_eq!(v.hit(&s, 50_000, &P), Some(Hit::Revoked));
    // the grace ended early (RFC 7009 of the old token): the earlier entry wins
    f.append(Key::token(&old), 20_000, 1_000_000);
    let snap = snap
        .refreshed(&f.since(snap.through, 10), 20_000, 20_000, 500)
        .expect("ok");
    v.apply(&snap, 20_000, &P);
    assert_eq!(v.hit(&s, 20_000, &P), Some(Hit::Revoked));
}
