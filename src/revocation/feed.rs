//! The feed: one entry per revocation, numbered in commit order by the consistent place that
//! keeps it, kept as long as a stale positive answer can survive anywhere, and served "since a
//! cursor" in pages.
//!
//! **Persisted format** (the lines of a page, written by one version and read by the next in
//! every location): `{seq} {kind} {at} {until} {value...}`, one entry per line, fields separated
//! by one space, times in Unix milliseconds. Kinds (never change a letter's meaning):
//!
//! | kind | value | which tokens it kills |
//! |---|---|---|
//! | `t` | 32 lowercase hex: the first 16 bytes of the token's SHA-256 | that one reference token (rotation without grace, end of a grace, RFC 7009 of an old token) |
//! | `r` | a token record id | every hash the record had (PAT or client reference token, current and in grace) and the JWTs exchanged from it |
//! | `g` | `{generation} {record id}` | JWTs exchanged from that record at a generation below `generation` (a rotation) |
//! | `j` | a JWT id (`jti`) | that client JWT access token |
//! | `a` | an authorization-server grant id | every access and refresh token of the grant |
//! | `c` | a client uid | none by itself: tokens of the client ask the source of truth for the client (disabled or deleted; it may come back) |
//!
//! A reader skips a line of a kind it does not know: a new kind may only ever describe tokens
//! that older versions do not issue, never restate a revocation that an existing kind covers.

use super::Millis;
use crate::token::TokenHash;
use std::collections::VecDeque;
use std::fmt::Write as _;

/// Bytes of the token hash a `t` entry carries. 128 bits: the chance that some live token's hash
/// shares the prefix of one of `n` entries is about `n * 2^-128`.
pub const TOKEN_PREFIX_LEN: usize = 16;

/// Longest value (an id) an entry carries. Longer ids cannot be revoked through the feed: the
/// writer refuses them ([`FormatError::BadValue`]), and ids patgate makes are 22 characters.
pub const MAX_VALUE_LEN: usize = 128;

/// What an entry revokes (see the module's table).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Token([u8; TOKEN_PREFIX_LEN]),
    Record(String),
    /// Record id, and the first generation still alive.
    Generation(String, i64),
    Jti(String),
    Grant(String),
    Client(String),
}

impl Key {
    /// The entry of one reference token.
    pub fn token(hash: &TokenHash) -> Key {
        let mut p = [0u8; TOKEN_PREFIX_LEN];
        p.copy_from_slice(&hash.0[..TOKEN_PREFIX_LEN]);
        Key::Token(p)
    }

    /// The kind letter and the value as the feed writes them (`g`: `{generation} {record}`).
    /// An id that cannot be written ([`FormatError::BadValue`]) is refused.
    pub fn kind_and_value(&self) -> Result<(char, String), FormatError> {
        let value = match self {
            Key::Token(p) => crate::encoding::hex(p),
            Key::Generation(record, generation) => format!("{generation} {record}"),
            Key::Record(v) | Key::Jti(v) | Key::Grant(v) | Key::Client(v) => v.clone(),
        };
        match self {
            Key::Generation(v, _)
            | Key::Record(v)
            | Key::Jti(v)
            | Key::Grant(v)
            | Key::Client(v)
                if !valid_value(v) =>
            {
                Err(FormatError::BadValue)
            }
            _ => Ok((self.kind(), value)),
        }
    }

    fn kind(&self) -> char {
        match self {
            Key::Token(_) => 't',
            Key::Record(_) => 'r',
            Key::Generation(..) => 'g',
            Key::Jti(_) => 'j',
            Key::Grant(_) => 'a',
            Key::Client(_) => 'c',
        }
    }
}

/// One revocation, as the consistent place numbered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in commit order (1, 2, ...): an entry visible implies every smaller one visible.
    pub seq: u64,
    pub key: Key,
    /// When it was committed, by the writer's clock.
    pub at: Millis,
    /// Until when it must be kept (see [`Retention`]), by the writer's clock.
    pub until: Millis,
}

/// Why a page or an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// Not `{seq} {kind} {at} {until} {value}`, or a number that does not parse.
    BadLine(usize),
    /// An id that is empty, too long, or not printable ASCII without spaces.
    BadValue,
    /// Entries not in increasing `seq` order, or a header that contradicts them.
    Inconsistent,
    /// The header line is missing or of another format version.
    BadHeader,
}

/// The token prefix from exactly 32 lowercase hex digits (the written form only).
fn unhex_prefix(s: &str) -> Option<[u8; TOKEN_PREFIX_LEN]> {
    fn digit(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if bytes.len() != 2 * TOKEN_PREFIX_LEN {
        return None;
    }
    let mut out = [0u8; TOKEN_PREFIX_LEN];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

fn valid_value(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_VALUE_LEN && v.bytes().all(|b| b.is_ascii_graphic())
}

impl Entry {
    /// Appends the entry's line (with its newline) to `out`; on error `out` is unchanged.
    pub fn write_line(&self, out: &mut String) -> Result<(), FormatError> {
        let id = match &self.key {
            Key::Token(_) => None,
            Key::Generation(v, _)
            | Key::Record(v)
            | Key::Jti(v)
            | Key::Grant(v)
            | Key::Client(v) => Some(v),
        };
        if id.is_some_and(|v| !valid_value(v)) {
            return Err(FormatError::BadValue);
        }
        let (seq, kind, at, until) = (self.seq, self.key.kind(), self.at, self.until);
        let _ = write!(out, "{seq} {kind} {at} {until} ");
        match &self.key {
            Key::Token(p) => out.push_str(&crate::encoding::hex(p)),
            Key::Generation(record, generation) => {
                let _ = write!(out, "{generation} {record}");
            }
            Key::Record(v) | Key::Jti(v) | Key::Grant(v) | Key::Client(v) => out.push_str(v),
        }
        out.push('\n');
        Ok(())
    }

    /// Parses one line (without its newline). `Ok(None)`: a well-formed line of a kind this
    /// version does not know (skipped, see the module documentation).
    pub fn parse_line(line: &str, n: usize) -> Result<Option<Entry>, FormatError> {
        let bad = FormatError::BadLine(n);
        let mut f = line.split(' ');
        let mut next = || f.next().ok_or(bad.clone());
        let seq = next()?.parse::<u64>().map_err(|_| bad.clone())?;
        let kind = next()?;
        let at = next()?.parse::<i64>().map_err(|_| bad.clone())?;
        let until = next()?.parse::<i64>().map_err(|_| bad.clone())?;
        let value = next()?;
        let key = match kind {
            "t" => Key::Token(unhex_prefix(value).ok_or(bad.clone())?),
            "g" => {
                let generation = value.parse::<i64>().map_err(|_| bad.clone())?;
                Key::Generation(next()?.to_owned(), generation)
            }
            "r" => Key::Record(value.to_owned()),
            "j" => Key::Jti(value.to_owned()),
            "a" => Key::Grant(value.to_owned()),
            "c" => Key::Client(value.to_owned()),
            k if k.len() == 1 && k.bytes().all(|b| b.is_ascii_lowercase()) => return Ok(None),
            _ => return Err(bad),
        };
        if next().is_ok() || seq == 0 {
            return Err(bad);
        }
        match &key {
            Key::Record(v)
            | Key::Jti(v)
            | Key::Grant(v)
            | Key::Client(v)
            | Key::Generation(v, _)
                if !valid_value(v) =>
            {
                Err(FormatError::BadValue)
            }
            _ => Ok(Some(Entry {
                seq,
                key,
                at,
                until,
            })),
        }
    }
}

/// How long entries stay. An entry must outlive every answer that could still say "active" for
/// what it revokes without asking the source of truth:
/// - reference tokens (`t`, `r`, `a`): a KV grant is trusted until its `fresh_until`, at most
///   `grant_cache` after the D1 read that wrote it, and that read came before the revocation
///   (a later one sees it). KV's own propagation delay does not matter: however late a location
///   sees a write, the grant it serves carries its deadline. `r` also covers exchanged JWTs;
/// - `g`: exchanged JWTs live at most `exchanged_jwt` after the rotation;
/// - `j`: a JWT is dead at its `exp` plus the verification leeway;
/// - `c`: an isolate trusts its client record at most `registry` (cache life plus the outage
///   allowance).
///
/// `margin` (a minute) covers clock differences and second-resolution timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub grant_cache_ms: i64,
    pub exchanged_jwt_ms: i64,
    pub registry_ms: i64,
    pub jwt_leeway_ms: i64,
    /// The longest life of any JWT patgate signs (a `j` entry without a known `exp`).
    pub max_jwt_life_ms: i64,
    pub margin_ms: i64,
}

impl Retention {
    /// The retention of patgate's defaults: `GRANT_CACHE_SECONDS` 3600, `EXCHANGED_JWT_SECONDS`
    /// 900, registry 30 + 300 s, JWT leeway 60 s, client tokens at most 86400 s.
    pub const DEFAULT: Retention = Retention {
        grant_cache_ms: 3_600_000,
        exchanged_jwt_ms: 900_000,
        registry_ms: 330_000,
        jwt_leeway_ms: 60_000,
        max_jwt_life_ms: 86_400_000,
        margin_ms: 60_000,
    };

    /// Until when the entry for `key`, committed at `at`, must be kept. `jwt_exp`: for a `j`
    /// entry, the JWT's `exp` (milliseconds).
    pub fn until(&self, key: &Key, at: Millis, jwt_exp: Option<Millis>) -> Millis {
        let life = match key {
            Key::Token(_) | Key::Grant(_) => self.grant_cache_ms,
            Key::Record(_) => self.grant_cache_ms.max(self.exchanged_jwt_ms),
            Key::Generation(..) => self.exchanged_jwt_ms,
            Key::Client(_) => self.registry_ms,
            Key::Jti(_) => {
                return jwt_exp.map_or(at + self.max_jwt_life_ms, |exp| {
                    exp.min(at + self.max_jwt_life_ms)
                }) + self.jwt_leeway_ms
                    + self.margin_ms
            }
        };
        at + life + self.margin_ms
    }
}

/// What the consistent place answers to "since `after`": every entry it still keeps with
/// `after < seq <= through`. Entries in that range that it no longer keeps were trimmed, so
/// expired: a reader loses nothing by not seeing them. A `head` below `after` means the feed
/// went back (its store was restored to an earlier point): the reader must start over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub after: u64,
    pub through: u64,
    /// The last seq the consistent place had given out when it answered.
    pub head: u64,
    pub entries: Vec<Entry>,
}

impl Page {
    /// Whether the page holds everything committed when it was answered (else: ask again since
    /// `through`).
    pub fn reaches_head(&self) -> bool {
        self.through >= self.head
    }
}

/// The feed as its consistent place keeps it (a D1 table in commit order, or a Durable Object's
/// storage): this is the contract its adapter follows, and the model the simulation runs.
#[derive(Debug, Clone, Default)]
pub struct FeedLog {
    entries: VecDeque<Entry>,
    head: u64,
}

impl FeedLog {
    pub fn new() -> Self {
        FeedLog::default()
    }

    /// Appends a revocation (in the same transaction as the revocation itself); returns its seq.
    pub fn append(&mut self, key: Key, at: Millis, until: Millis) -> u64 {
        self.head += 1;
        self.entries.push_back(Entry {
            seq: self.head,
            key,
            at,
            until,
        });
        self.head
    }

    /// Drops the entries whose `until` is more than `skew_ms` past (by this place's clock).
    /// Returns how many went.
    pub fn trim(&mut self, now: Millis, skew_ms: i64) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|e| e.until.saturating_add(skew_ms) >= now);
        before - self.entries.len()
    }

    /// Entries with `seq > after`, at most `limit` of them (at least one).
    pub fn since(&self, after: u64, limit: usize) -> Page {
        let start = self.entries.partition_point(|e| e.seq <= after);
        let entries: Vec<Entry> = self
            .entries
            .iter()
            .skip(start)
            .take(limit.max(1))
            .cloned()
            .collect();
        let more = self.entries.len() - start > entries.len();
        let through = match entries.last() {
            Some(last) if more => last.seq,
            _ => self.head.max(after),
        };
        Page {
            after,
            through,
            head: self.head,
            entries,
        }
    }

    pub fn head(&self) -> u64 {
        self.head
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> Key {
        Key::Record(id.into())
    }

    /// The line format is read across versions and locations: these lines must not change.
    #[test]
    fn entry_line_format_unchanged() {
        let mut hash = [0u8; 32];
        hash[0] = 0xab;
        hash[15] = 0x01;
        hash[16] = 0xff; // beyond the prefix: not carried
        let cases = [
            (
                Key::token(&TokenHash(hash)),
                "1 t 1700000000123 1700003720123 ab000000000000000000000000000001\n",
            ),
            (
                rec("0123456789abcdefghijKL"),
                "1 r 1700000000123 1700003720123 0123456789abcdefghijKL\n",
            ),
            (
                Key::Generation("pat1".into(), 3),
                "1 g 1700000000123 1700003720123 3 pat1\n",
            ),
            (
                Key::Jti("jti-1".into()),
                "1 j 1700000000123 1700003720123 jti-1\n",
            ),
            (
                Key::Grant("gr1".into()),
                "1 a 1700000000123 1700003720123 gr1\n",
            ),
            (
                Key::Client("u1".into()),
                "1 c 1700000000123 1700003720123 u1\n",
            ),
        ];
        for (key, line) in cases {
            let e = Entry {
                seq: 1,
                key,
                at: 1_700_000_000_123,
                until: 1_700_003_720_123,
            };
            let mut out = String::new();
            e.write_line(&mut out).expect("writes");
            assert_eq!(out, line);
            let parsed = Entry::parse_line(line.trim_end_matches('\n'), 1).expect("parses");
            assert_eq!(parsed, Some(e));
        }
    }

    #[test]
    fn unknown_kinds_are_skipped_and_garbage_refused() {
        assert_eq!(Entry::parse_line("5 x 1 2 whatever", 1), Ok(None));
        for bad in [
            "",
            "5",
            "5 r 1 2",
            "0 r 1 2 a",
            "-5 r 1 2 a",
            "5 r one 2 a",
            "5 r 1 2 a extra",
            "5 t 1 2 abcd",
            "5 t 1 2 zz000000000000000000000000000001",
            "5 t 1 2 AB000000000000000000000000000001",
            "5 g 1 2 notanumber pat",
            "5 g 1 2 3",
            "5 R 1 2 a",
            "5 rr 1 2 a",
            "5  r 1 2 a",
        ] {
            assert!(Entry::parse_line(bad, 7).is_err(), "{bad:?}");
        }
        let long = format!("5 r 1 2 {}", "a".repeat(MAX_VALUE_LEN + 1));
        assert_eq!(Entry::parse_line(&long, 1), Err(FormatError::BadValue));
        assert_eq!(
            Entry::parse_line("5 j 1 2 caf\u{e9}", 1),
            Err(FormatError::BadValue)
        );
    }

    #[test]
    fn kind_and_value_match_the_line() {
        for key in [
            Key::token(&TokenHash([9; 32])),
            rec("p1"),
            Key::Generation("p1".into(), 4),
            Key::Jti("j".into()),
            Key::Grant("g".into()),
            Key::Client("u".into()),
        ] {
            let (kind, value) = key.kind_and_value().expect("writable");
            let line = format!("3 {kind} 1 2 {value}");
            let parsed = Entry::parse_line(&line, 1).expect("parses").expect("known");
            assert_eq!(parsed.key, key);
        }
        assert_eq!(
            Key::Jti("a b".into()).kind_and_value(),
            Err(FormatError::BadValue)
        );
    }

    #[test]
    fn writer_refuses_values_a_reader_could_not_split() {
        for v in ["", "a b", "a\nb", "\u{e9}"] {
            let e = Entry {
                seq: 1,
                key: Key::Jti(v.into()),
                at: 0,
                until: 0,
            };
            let mut out = String::from("kept\n");
            assert_eq!(e.write_line(&mut out), Err(FormatError::BadValue));
            assert_eq!(out, "kept\n", "nothing half-written");
        }
    }

    #[test]
    fn serves_since_a_cursor_in_pages() {
        let mut f = FeedLog::new();
        assert_eq!(
            f.since(0, 10),
            Page {
                after: 0,
                through: 0,
                head: 0,
                entries: vec![]
            }
        );
        for i in 1..=5 {
            assert_eq!(
                f.append(rec(&format!("p{i}")), i * 10, 1_000),
                u64::try_from(i).expect("small")
            );
        }
        let all = f.since(0, 10);
        assert_eq!((all.through, all.head, all.entries.len()), (5, 5, 5));
        assert!(all.reaches_head());
        let first = f.since(0, 2);
        assert_eq!((first.through, first.entries.len()), (2, 2));
        assert!(!first.reaches_head());
        let rest = f.since(first.through, 10);
        assert_eq!(
            rest.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert!(rest.reaches_head());
        assert_eq!(f.since(5, 10).entries, vec![]);
        assert_eq!(f.since(5, 10).through, 5);
        // a cursor ahead of the head (the feed was restored to an earlier point) shows as such
        let ahead = f.since(9, 10);
        assert_eq!((ahead.through, ahead.head), (9, 5));
    }

    #[test]
    fn trims_by_age_with_the_skew_allowance() {
        let mut f = FeedLog::new();
        f.append(rec("a"), 0, 1_000);
        f.append(rec("b"), 0, 5_000);
        f.append(rec("c"), 0, 2_000);
        assert_eq!(f.trim(1_400, 500), 0, "until + skew not yet past");
        assert_eq!(f.trim(1_501, 500), 1);
        let page = f.since(0, 10);
        assert_eq!(
            page.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![2, 3]
        );
        // the trimmed entry's seq is still covered: the page reaches from 0 through the head
        assert_eq!((page.after, page.through), (0, 3));
        f.trim(10_000, 500);
        assert!(f.is_empty());
        assert_eq!(f.head(), 3, "seqs are never reused");
        assert_eq!(f.append(rec("d"), 0, 1), 4);
    }

    #[test]
    fn retention_outlives_every_cached_positive() {
        let r = Retention::DEFAULT;
        let at = 1_000_000;
        let h = Key::token(&TokenHash([7; 32]));
        // a KV grant read from D1 just before the revocation is trusted up to grant_cache later
        assert!(r.until(&h, at, None) > at + r.grant_cache_ms);
        assert!(r.until(&rec("p"), at, None) > at + r.grant_cache_ms.max(r.exchanged_jwt_ms));
        assert!(r.until(&Key::Generation("p".into(), 2), at, None) > at + r.exchanged_jwt_ms);
        assert!(r.until(&Key::Client("u".into()), at, None) > at + r.registry_ms);
        let exp = at + 600_000;
        assert!(r.until(&Key::Jti("j".into()), at, Some(exp)) > exp + r.jwt_leeway_ms);
        // a forged far-future exp cannot make an entry live forever
        assert!(
            r.until(&Key::Jti("j".into()), at, Some(i64::MAX / 2))
                <= at + r.max_jwt_life_ms + 120_000
        );
    }
}
