//! Reading the values of keepalived statements: numbers in a range, times in (fractional)
//! seconds, booleans, addresses. Every failure names the statement's file and line.

use std::net::IpAddr;
use std::str::FromStr;

use pbjson_types::Duration;

use super::ParseError;
use super::tree::Statement;

/// The statement's first argument, which it needs.
pub fn arg(s: &Statement) -> Result<&str, ParseError> {
    s.args
        .first()
        .map(String::as_str)
        .ok_or_else(|| ParseError::new(&s.location, format!("{} needs a value", s.keyword)))
}

/// An integer from `min` to `max`.
pub fn int<T>(s: &Statement, text: &str, min: T, max: T) -> Result<T, ParseError>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    text.parse::<T>()
        .ok()
        .filter(|v| *v >= min && *v <= max)
        .ok_or_else(|| {
            ParseError::new(
                &s.location,
                format!(
                    "{}: '{text}' is not a whole number from {min} to {max}",
                    s.keyword
                ),
            )
        })
}

/// The statement's first argument as an integer from `min` to `max`.
pub fn int_arg<T>(s: &Statement, min: T, max: T) -> Result<T, ParseError>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    int(s, arg(s)?, min, max)
}

/// Seconds with an optional fraction ("1", "0.5", "2.71828"), to the nanosecond, up to
/// `max_seconds`.
pub fn seconds(s: &Statement, text: &str, max_seconds: i64) -> Result<Duration, ParseError> {
    let bad = || {
        ParseError::new(
            &s.location,
            format!(
                "{}: '{text}' is not a time in seconds from 0 to {max_seconds}, e.g. 1 or 0.5",
                s.keyword
            ),
        )
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(bad());
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let seconds: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    if seconds > max_seconds {
        return Err(bad());
    }
    // Nanoseconds from the first nine digits of the fraction; the rest is below resolution.
    let digits: String = fraction.chars().take(9).collect();
    let nanos: i32 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().map_err(|_| bad())?
    };
    Ok(Duration { seconds, nanos })
}

/// The statement's first argument as seconds.
pub fn seconds_arg(s: &Statement, max_seconds: i64) -> Result<Duration, ParseError> {
    seconds(s, arg(s)?, max_seconds)
}

/// keepalived's <BOOL>: on|off|true|false|yes|no; a keyword alone means true.
pub fn bool_arg(s: &Statement) -> Result<bool, ParseError> {
    match s.args.first().map(|a| a.to_ascii_lowercase()).as_deref() {
        None | Some("on" | "true" | "yes") => Ok(true),
        Some("off" | "false" | "no") => Ok(false),
        Some(other) => Err(ParseError::new(
            &s.location,
            format!(
                "{}: '{other}' is not on, off, true, false, yes or no",
                s.keyword
            ),
        )),
    }
}

pub fn ip(s: &Statement, text: &str) -> Result<IpAddr, ParseError> {
    text.parse().map_err(|_| {
        ParseError::new(
            &s.location,
            format!("{}: '{text}' is not an IPv4 or IPv6 address", s.keyword),
        )
    })
}

/// Total nanoseconds, for comparisons and arithmetic.
pub fn nanos(d: &Duration) -> i128 {
    i128::from(d.seconds) * 1_000_000_000 + i128::from(d.nanos)
}

pub fn from_nanos(n: i128) -> Duration {
    Duration {
        seconds: i64::try_from(n / 1_000_000_000).unwrap_or(i64::MAX),
        nanos: i32::try_from(n % 1_000_000_000).unwrap_or(0),
    }
}

/// "1.5" for 1.5 s, "3" for 3 s: how keepalived would write it, for messages.
pub fn seconds_text(d: &Duration) -> String {
    if d.nanos == 0 {
        d.seconds.to_string()
    } else {
        let fraction = format!("{:09}", d.nanos);
        format!("{}.{}", d.seconds, fraction.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keepalived::Location;

    fn st(keyword: &str) -> Statement {
        Statement {
            keyword: keyword.into(),
            args: Vec::new(),
            location: Location {
                file: "k.conf".into(),
                line: 3,
            },
            block: None,
        }
    }

    #[test]
    fn seconds_with_fractions() {
        let s = st("advert_int");
        let d = |t| seconds(&s, t, 255).unwrap();
        assert_eq!(
            d("1"),
            Duration {
                seconds: 1,
                nanos: 0
            }
        );
        assert_eq!(
            d("0.5"),
            Duration {
                seconds: 0,
                nanos: 500_000_000
            }
        );
        assert_eq!(
            d(".25"),
            Duration {
                seconds: 0,
                nanos: 250_000_000
            }
        );
        assert_eq!(
            d("2.718281828459"),
            Duration {
                seconds: 2,
                nanos: 718_281_828
            }
        );
        for bad in ["", ".", "-1", "1e3", "abc", "256", "1.2.3"] {
            let err = seconds(&s, bad, 255).unwrap_err();
            assert!(
                err.to_string().starts_with("k.conf:3: advert_int: "),
                "{err}"
            );
        }
        assert_eq!(seconds_text(&d("0.50")), "0.5");
        assert_eq!(seconds_text(&d("3")), "3");
    }

    #[test]
    fn integers_in_a_range() {
        let s = st("priority");
        assert_eq!(int(&s, "50", 1u32, 255).unwrap(), 50);
        assert_eq!(
            int(&s, "256", 1u32, 255).unwrap_err().to_string(),
            "k.conf:3: priority: '256' is not a whole number from 1 to 255"
        );
        assert!(int(&s, "-1", 1u32, 255).is_err());
        assert_eq!(int(&s, "-20", -253i32, 253).unwrap(), -20);
    }
}
