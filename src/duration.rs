//! Windows and durations: `"minute"`, `60`, `"90s"`, `"15m"`, `"2h"`, `"1d"`.

use serde_json::Value;

/// The longest window or duration accepted: ten years, so that time arithmetic never overflows.
pub const MAX_DURATION_MS: u64 = 10 * 366 * 86_400_000;

const EXPECTED: &str =
    "expected second, minute, hour, day, a number of seconds, or a duration such as \"90s\"";

/// Parses a window or duration string into milliseconds.
///
/// Accepts `second`, `minute`, `hour`, `day`, a positive integer of seconds written as a string
/// (`"60"`), or a positive integer followed by `s`, `m`, `h` or `d`.
///
/// ```
/// use mcp_policy::duration::parse_duration;
/// assert_eq!(parse_duration("minute"), Ok(60_000));
/// assert_eq!(parse_duration("90s"), Ok(90_000));
/// assert_eq!(parse_duration("2h"), Ok(7_200_000));
/// assert!(parse_duration("minutes").is_err());
/// assert!(parse_duration("0s").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let named = match text {
        "second" => Some(1_000),
        "minute" => Some(60_000),
        "hour" => Some(3_600_000),
        "day" => Some(86_400_000),
        _ => None,
    };
    if let Some(ms) = named {
        return Ok(ms);
    }
    let bad = || format!("unknown window {text:?}; {EXPECTED}");
    let (digits, unit_ms) = match text.char_indices().last() {
        Some((i, 's')) => (text.get(..i).ok_or_else(bad)?, 1_000u64),
        Some((i, 'm')) => (text.get(..i).ok_or_else(bad)?, 60_000),
        Some((i, 'h')) => (text.get(..i).ok_or_else(bad)?, 3_600_000),
        Some((i, 'd')) => (text.get(..i).ok_or_else(bad)?, 86_400_000),
        Some((_, c)) if c.is_ascii_digit() => (text, 1_000),
        _ => return Err(bad()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| too_long(text))?;
    if n == 0 {
        return Err(format!("window {text:?} must be positive"));
    }
    let ms = n.checked_mul(unit_ms).ok_or_else(|| too_long(text))?;
    if ms > MAX_DURATION_MS {
        return Err(too_long(text));
    }
    Ok(ms)
}

fn too_long(text: &str) -> String {
    format!("window {text:?} is longer than the maximum of ten years")
}

/// Parses a window given as a JSON value: a string (see [`parse_duration`]) or a positive
/// integer number of seconds.
pub(crate) fn duration_from_value(value: &Value) -> Result<u64, String> {
    match value {
        Value::String(s) => parse_duration(s),
        Value::Number(n) => {
            let secs = n
                .as_u64()
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("window {n} must be a positive integer of seconds"))?;
            let ms = secs
                .checked_mul(1_000)
                .ok_or_else(|| too_long(&n.to_string()))?;
            if ms > MAX_DURATION_MS {
                return Err(too_long(&n.to_string()));
            }
            Ok(ms)
        }
        other => Err(format!(
            "expected a window, found {}; {EXPECTED}",
            crate::error::type_name(other)
        )),
    }
}

/// Formats milliseconds the way a person reads a window: `1m`, `90s`, `2h`, `1500ms`.
pub fn format_duration(ms: u64) -> String {
    if ms.is_multiple_of(86_400_000) && ms > 0 {
        format!("{}d", ms / 86_400_000)
    } else if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_windows() {
        assert_eq!(parse_duration("second"), Ok(1_000));
        assert_eq!(parse_duration("day"), Ok(86_400_000));
    }

    #[test]
    fn unit_suffixes_and_bare_seconds() {
        assert_eq!(parse_duration("15m"), Ok(900_000));
        assert_eq!(parse_duration("1d"), Ok(86_400_000));
        assert_eq!(parse_duration("60"), Ok(60_000));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "s",
            "-5s",
            "1.5m",
            "5 m",
            "5w",
            "minutes",
            "0",
            "0m",
            "m5",
            "99999999999999999999s",
            "4000d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        let msg = parse_duration("minutes").unwrap_err();
        assert_eq!(
            msg,
            "unknown window \"minutes\"; expected second, minute, hour, day, a number of seconds, or a duration such as \"90s\""
        );
    }

    #[test]
    fn numbers_are_seconds() {
        assert_eq!(duration_from_value(&json!(60)), Ok(60_000));
        assert!(duration_from_value(&json!(0)).is_err());
        assert!(duration_from_value(&json!(-1)).is_err());
        assert!(duration_from_value(&json!(1.5)).is_err());
        assert!(duration_from_value(&json!(true)).is_err());
        assert!(duration_from_value(&json!(u64::MAX)).is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format_duration(60_000), "1m");
        assert_eq!(format_duration(90_000), "90s");
        assert_eq!(format_duration(1_500), "1500ms");
        assert_eq!(format_duration(0), "0s");
    }
}
