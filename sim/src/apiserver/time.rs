//! RFC 3339 timestamps as Kubernetes writes them (`2026-11-21T07:43:00Z`), without a date crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `time` as `YYYY-MM-DDTHH:MM:SSZ` in UTC (seconds precision, as metav1.Time serialises).
/// Times before 1970 are clamped to the epoch.
pub fn rfc3339(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let days = (seconds / 86_400) as i64;
    let of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        (of_day / 60) % 60,
        of_day % 60
    )
}

/// `timestamp` (as [`rfc3339`] writes it) plus `seconds`; an unreadable one counts from the epoch.
pub fn plus_seconds(timestamp: &str, seconds: i64) -> String {
    let base = parse(timestamp).unwrap_or(0);
    let at = u64::try_from(base.saturating_add(seconds)).unwrap_or(0);
    rfc3339(UNIX_EPOCH + Duration::from_secs(at))
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SSZ`, as [`rfc3339`] writes it.
fn parse(timestamp: &str) -> Option<i64> {
    let bytes = timestamp.as_bytes();
    if bytes.len() != 20 || bytes[19] != b'Z' {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        let digits = timestamp.get(from..to)?;
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    // Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_seconds_across_days_and_years() {
        assert_eq!(
            plus_seconds("2026-12-31T23:59:50Z", 15),
            "2027-01-01T00:00:05Z"
        );
        assert_eq!(
            plus_seconds("2000-02-28T12:00:00Z", 86_400),
            "2000-02-29T12:00:00Z"
        );
        let t = UNIX_EPOCH + Duration::from_secs(1_795_248_180);
        assert_eq!(plus_seconds(&rfc3339(t), 0), rfc3339(t));
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_248_180);
        assert_eq!(rfc3339(t), "2026-11-21T08:03:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }
}
