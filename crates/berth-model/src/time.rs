//! RFC 3339 timestamps in UTC, as Docker and runc write them, without a
//! date library: the only calendar arithmetic berth needs.

use std::time::{SystemTime, UNIX_EPOCH};

/// `secs.nanos` since the epoch as `2026-11-23T12:00:00.000000005Z`
/// (nanoseconds, as runc's state JSON has them).
pub fn rfc3339_nanos(secs: i64, nanos: u32) -> String {
    let (date, time) = split(secs);
    format!("{date}T{time}.{nanos:09}Z")
}

/// `secs` since the epoch as `2026-11-23T12:00:00Z`.
pub fn rfc3339_secs(secs: i64) -> String {
    let (date, time) = split(secs);
    format!("{date}T{time}Z")
}

/// Time since the epoch, now (zero on a clock set before 1970).
pub fn unix_now() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The current time with nanoseconds.
pub fn now_rfc3339_nanos() -> String {
    let d = unix_now();
    rfc3339_nanos(d.as_secs() as i64, d.subsec_nanos())
}

/// A Go duration (`1h2m3.5s`, `500ms`) in nanoseconds.
pub fn go_duration(v: &str) -> Result<i64, String> {
    let bad = || format!("invalid duration {v:?}: use a number with a unit (500ms, 30s, 1m, 1h)");
    let mut total = 0f64;
    let mut rest = v.trim();
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Ok(total as i64)
}

fn split(secs: i64) -> (String, String) {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", sod / 3600, sod % 3600 / 60, sod % 60),
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's civil-from-days algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        assert_eq!(go_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(go_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(go_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(go_duration("0").unwrap(), 0);
        assert!(go_duration("30").is_err());
        assert!(go_duration("").is_err());
        assert!(go_duration("5d").is_err());
    }

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_nanos(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(951_782_400, 5),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(rfc3339_secs(951_782_400 + 3661), "2000-02-29T01:01:01Z");
        assert_eq!(rfc3339_secs(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339_secs(1_798_761_599), "2026-12-31T23:59:59Z");
        assert_eq!(rfc3339_secs(-1), "1969-12-31T23:59:59Z");
    }
}
