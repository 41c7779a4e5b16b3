//! A small RFC 3339 parser: `2026-11-21T10:00:00.250Z`, `2026-11-21T12:00:00+02:00`.

/// Parses an RFC 3339 date-time into milliseconds since the Unix epoch. Fractions of a second
/// beyond milliseconds are truncated; times before 1970 are rejected.
pub fn parse(text: &str) -> Result<u64, String> {
    let bad = |what: &str| format!("invalid RFC 3339 time {text:?}: {what}");
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Result<i64, String> {
        let part = b.get(from..from + len).ok_or_else(|| bad("too short"))?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad("expected digits"));
        }
        Ok(part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, allowed: &[u8]| -> Result<(), String> {
        match b.get(at) {
            Some(c) if allowed.contains(c) => Ok(()),
            _ => Err(bad(
                "expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset",
            )),
        }
    };
    let year = digits(0, 4)?;
    sep(4, b"-")?;
    let month = digits(5, 2)?;
    sep(7, b"-")?;
    let day = digits(8, 2)?;
    sep(10, b"Tt ")?;
    let hour = digits(11, 2)?;
    sep(13, b":")?;
    let minute = digits(14, 2)?;
    sep(16, b":")?;
    let second = digits(17, 2)?;
    if !(1..=12).contains(&month) {
        return Err(bad("month out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(bad("day out of range"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad("time of day out of range"));
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b.get(i).copied().unwrap_or(b'0') - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err(bad("empty fraction of a second"));
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() => {
            let h = digits(i + 1, 2)?;
            sep(i + 3, b":")?;
            let m = digits(i + 4, 2)?;
            if h > 23 || m > 59 {
                return Err(bad("offset out of range"));
            }
            if *sign == b'+' {
                h * 60 + m
            } else {
                -(h * 60 + m)
            }
        }
        _ => return Err(bad("expected Z or an offset such as +02:00 at the end")),
    };
    // A leap second is read as the last moment of its minute.
    let second = second.min(59);
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    let ms = secs * 1_000 + millis;
    u64::try_from(ms).map_err(|_| bad("before 1970"))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn utc_with_millis() {
        assert_eq!(parse("2026-11-21T10:00:00.250Z"), Ok(1_795_255_200_250));
        assert_eq!(parse("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse("2025-11-21T08:00:00Z"), Ok(1_763_712_000_000));
    }

    #[test]
    fn offsets() {
        assert_eq!(
            parse("2026-11-21T12:00:00.250+02:00"),
            parse("2026-11-21T10:00:00.250Z")
        );
        assert_eq!(
            parse("2026-11-21T04:30:00-05:30"),
            parse("2026-11-21T10:00:00Z")
        );
        assert_eq!(parse("2026-11-21t10:00:00z"), parse("2026-11-21T10:00:00Z"));
    }

    #[test]
    fn fractions() {
        assert_eq!(parse("1970-01-01T00:00:01.5Z"), Ok(1_500));
        assert_eq!(parse("1970-01-01T00:00:01.123456789Z"), Ok(1_123));
    }

    #[test]
    fn leap_years() {
        assert_eq!(parse("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
        assert!(parse("2023-02-29T00:00:00Z").is_err());
        assert_eq!(parse("2000-03-01T00:00:00Z"), Ok(951_868_800_000));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "2026-11-21",
            "2026-11-21T10:00:00",
            "2026-13-01T00:00:00Z",
            "2026-11-21T24:00:00Z",
            "2026-11-21T10:00:00.Z",
            "2026-11-21T10:00:00+0200",
            "2026-11-21T10:00:00Zjunk",
            "1969-12-31T23:59:59Z",
            "２026-11-21T10:00:00Z",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
