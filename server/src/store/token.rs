//! Page tokens for the history lists. A token names the list, the position to continue
//! below, and a fingerprint of the filter, so that a token reused with another filter or on
//! the other list is refused instead of silently returning the wrong rows.

use super::error::StoreError;
use super::time::to_micros;
use super::types::HistoryQuery;

/// Which history list a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum List {
    Transitions,
    ConfigChanges,
}

impl List {
    fn tag(self) -> &'static str {
        match self {
            Self::Transitions => "t",
            Self::ConfigChanges => "c",
        }
    }
}

/// The token for the page after the one that ended at `last_key` (a seq or a change id).
pub(crate) fn encode(list: List, q: &HistoryQuery, last_key: i64) -> String {
    format!("{}.{last_key}.{:016x}", list.tag(), fingerprint(q))
}

/// The key the next page starts below, or `None` without a token.
pub(crate) fn decode(list: List, q: &HistoryQuery) -> Result<Option<i64>, StoreError> {
    let Some(token) = q.page_token.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let bad = |reason: &str| StoreError::BadPageToken {
        token: token.to_owned(),
        reason: reason.to_owned(),
    };
    let mut parts = token.split('.');
    let (Some(tag), Some(key), Some(fp), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("it is not a page token of this server"));
    };
    let key = key
        .parse::<i64>()
        .ok()
        .filter(|k| *k > 0)
        .ok_or_else(|| bad("it is not a page token of this server"))?;
    let fp =
        u64::from_str_radix(fp, 16).map_err(|_| bad("it is not a page token of this server"))?;
    if tag != list.tag() {
        return Err(bad("it was issued for the other history list"));
    }
    if fp != fingerprint(q) {
        return Err(bad("it was issued for a different filter"));
    }
    Ok(Some(key))
}

/// FNV-1a over the filter: stable across builds, unlike std's hasher.
fn fingerprint(q: &HistoryQuery) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so that ("ab", "") and ("a", "b") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    feed(q.instance.as_deref().unwrap_or("\u{0}none").as_bytes());
    for t in [q.since, q.until] {
        match t {
            Some(t) => feed(&to_micros(t).to_be_bytes()),
            None => feed(b"none"),
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn tokens_round_trip_and_refuse_misuse() {
        let q = HistoryQuery {
            instance: Some("a".into()),
            since: Some(UNIX_EPOCH + Duration::from_secs(5)),
            ..Default::default()
        };
        let token = encode(List::Transitions, &q, 42);
        let with = |q: &HistoryQuery, token: &str| HistoryQuery {
            page_token: Some(token.to_owned()),
            ..q.clone()
        };
        assert_eq!(
            decode(List::Transitions, &with(&q, &token)).unwrap(),
            Some(42)
        );
        assert_eq!(decode(List::Transitions, &q).unwrap(), None);

        let other_filter = HistoryQuery {
            instance: Some("b".into()),
            ..q.clone()
        };
        for (list, q, token, reason) in [
            (
                List::ConfigChanges,
                &q,
                token.as_str(),
                "other history list",
            ),
            (
                List::Transitions,
                &other_filter,
                token.as_str(),
                "different filter",
            ),
            (List::Transitions, &q, "garbage", "not a page token"),
            (List::Transitions, &q, "t.-3.00", "not a page token"),
        ] {
            let err = decode(list, &with(q, token)).unwrap_err();
            assert!(matches!(err, StoreError::BadPageToken { .. }));
            let msg = err.to_string();
            assert!(msg.contains(reason) && msg.contains(token), "{msg}");
        }
    }
}
