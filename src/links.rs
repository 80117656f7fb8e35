//! Presigned links with an honest expiry.
//!
//! A SigV4 link signed with temporary credentials (SSO, STS, assumed roles) dies when those
//! credentials do, whatever `X-Amz-Expires` says. Each [`Link`] carries the time it really stops
//! working, min(now + requested, credentials' expiry), and says so when that is sooner than asked.

use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::s3::{PresignOp, Presigned, S3Client};

/// The longest lifetime SigV4 allows for a presigned URL.
pub const MAX_EXPIRY: Duration = crate::s3::MAX_LIFETIME;

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LinkMethod {
    /// Download the object.
    Get,
    /// Upload (create or replace) the object.
    Put,
}

/// A presigned URL and when it really stops working.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Link {
    /// The URL itself: a secret, never logged.
    pub url: String,
    /// GET or PUT.
    pub method: LinkMethod,
    /// The lifetime asked for.
    #[serde(serialize_with = "serialize_secs")]
    pub requested: Duration,
    /// When the link stops working.
    #[serde(serialize_with = "serialize_time")]
    pub expires_at: SystemTime,
    /// Whether the credentials' own expiry cut the link short.
    pub limited_by_credentials: bool,
}

impl Link {
    /// A sentence for the user when the link dies sooner than asked.
    pub fn warning(&self) -> Option<String> {
        self.limited_by_credentials.then(|| {
            format!(
                "this link stops working at {} ({} from now), sooner than the {} asked for, because the credentials that signed it expire then",
                format_time(self.expires_at),
                format_duration(self.expires_at.duration_since(SystemTime::now()).unwrap_or_default()),
                format_duration(self.requested),
            )
        })
    }
}

/// When a link signed at `signed_at` for `requested` really stops working, and whether the
/// signing credentials cut it short: min(signed_at + requested, `credentials_expiry`). The one
/// rule for every link s3share signs, and for the app's "works until" before it signs.
pub fn honest_expiry(
    signed_at: SystemTime,
    requested: Duration,
    credentials_expiry: Option<SystemTime>,
) -> (SystemTime, bool) {
    let asked = signed_at + requested;
    match credentials_expiry {
        Some(end) if end < asked => (end, true),
        _ => (asked, false),
    }
}

/// Parses a link lifetime: `90` (seconds), `15m`, `1h`, `1d`, `7days`, `1h 30m`.
pub fn parse_expiry(text: &str) -> Result<Duration> {
    let text = text.trim();
    let d = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(text).map_err(|e| {
            Error::Config(format!(
                "cannot read the expiry {text:?} ({e}); write e.g. 15m, 1h, 1d or 7d"
            ))
        })?,
    };
    crate::s3::check_lifetime(d)?;
    Ok(d)
}

/// `Content-Disposition` that makes browsers save the download as `name`, unicode included
/// (RFC 6266: an ASCII fallback plus the UTF-8 `filename*`).
pub fn content_disposition(name: &str) -> String {
    disposition("attachment", name)
}

/// [`content_disposition`], but `inline`: browsers still show what they can (images, PDFs),
/// and whatever saves the file (a browser's "Save as", `wget --content-disposition`,
/// `curl -OJ`) names it `name`.
pub fn inline_content_disposition(name: &str) -> String {
    disposition("inline", name)
}

fn disposition(kind: &str, name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

impl S3Client {
    /// A link that downloads `key`; with `download_name`, browsers save it under that name.
    pub async fn link_get(
        &self,
        bucket: &str,
        key: &str,
        expires_in: Duration,
        download_name: Option<&str>,
    ) -> Result<Link> {
        let op = PresignOp::Get {
            filename: download_name.map(str::to_owned),
            inline: false,
        };
        let signed = self.presign(bucket, key, op, expires_in).await?;
        Ok(Link::new(signed, LinkMethod::Get, expires_in))
    }

    /// A link that uploads to `key` with a plain `PUT` (e.g. `curl -T file URL`).
    pub async fn link_put(&self, bucket: &str, key: &str, expires_in: Duration) -> Result<Link> {
        let op = PresignOp::Put {
            content_md5: None,
            if_none_match: false,
            content_type: None,
            content_length: None,
        };
        let signed = self.presign(bucket, key, op, expires_in).await?;
        Ok(Link::new(signed, LinkMethod::Put, expires_in))
    }
}

impl Link {
    fn new(signed: Presigned, method: LinkMethod, requested: Duration) -> Self {
        Link {
            url: signed.url,
            method,
            requested,
            expires_at: signed.expires_at,
            limited_by_credentials: signed.limited_by_credentials,
        }
    }
}

/// A moment in the user's local time with its zone: `2026-11-25 15:03 (UTC+01:00)`, or
/// `2026-11-25 14:03 UTC` where local time is UTC. For messages, where the zone matters.
pub fn format_time(t: SystemTime) -> String {
    let local = chrono::DateTime::<chrono::Local>::from(t);
    if local.offset().local_minus_utc() == 0 {
        local.format("%Y-%m-%d %H:%M UTC").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M (UTC%:z)").to_string()
    }
}

/// A moment in local time, without the zone: `2026-11-25 15:03`. For tables and listings.
pub fn format_time_short(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(t)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// `1h 30m`, `7d`, `45s`: short and rounded to what a person cares about (to the hour when
/// days are shown, the minute when hours are, else the second: a link of 7 days, a moment
/// after it was signed, is "7d", not "6d 23h").
pub fn format_duration(d: Duration) -> String {
    let s = (d + Duration::from_millis(500)).as_secs();
    let unit = match s {
        86_400.. => 3600,
        3600.. => 60,
        _ => 1,
    };
    let s = (s + unit / 2) / unit * unit;
    let (days, hours, mins, secs) = (s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60);
    let parts: Vec<String> = [(days, "d"), (hours, "h"), (mins, "m"), (secs, "s")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .take(2)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

fn serialize_secs<S: serde::Serializer>(
    d: &Duration,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

fn serialize_time<S: serde::Serializer>(
    t: &SystemTime,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339(*t))
}

/// `2026-11-25T14:03:07.250Z`: for machine-readable output.
pub fn format_rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_that_end_sooner_cut_the_expiry() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = Duration::from_secs(3600);
        assert_eq!(honest_expiry(t, hour, None), (t + hour, false));
        assert_eq!(
            honest_expiry(t, hour, Some(t + 2 * hour)),
            (t + hour, false)
        );
        assert_eq!(honest_expiry(t, hour, Some(t + hour)), (t + hour, false));
        let soon = t + Duration::from_secs(60);
        assert_eq!(honest_expiry(t, hour, Some(soon)), (soon, true));
    }

    #[test]
    fn expiry_parsing_and_limits() {
        assert_eq!(parse_expiry("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_expiry("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_expiry("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_expiry("7d").unwrap(), MAX_EXPIRY);
        let err = parse_expiry("8d").unwrap_err().to_string();
        assert!(err.contains("at most 7 days"), "{err}");
        assert!(parse_expiry("0").is_err());
        assert!(
            parse_expiry("soon")
                .unwrap_err()
                .to_string()
                .contains("15m")
        );
    }

    #[test]
    fn disposition_keeps_unicode_and_quotes_safe() {
        let d = content_disposition("résumé \"final\".pdf");
        assert!(
            d.starts_with("attachment; filename=\"r_sum_ _final_.pdf\""),
            "{d}"
        );
        assert!(
            d.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%2Epdf"),
            "{d}"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(
            format_duration(Duration::from_secs(3600 + 1800 + 5)),
            "1h 30m"
        );
        assert_eq!(format_duration(MAX_EXPIRY), "7d");
        assert_eq!(format_duration(Duration::from_secs(0)), "0s");
        // What is left of a link a moment after it was signed.
        let less_a_moment = |s: u64| Duration::from_millis(s * 1000 - 20);
        assert_eq!(format_duration(less_a_moment(MAX_EXPIRY.as_secs())), "7d");
        assert_eq!(format_duration(less_a_moment(3600)), "1h");
        assert_eq!(format_duration(less_a_moment(90)), "1m 30s");
        assert_eq!(
            format_duration(Duration::from_secs(2 * 86400 + 5 * 3600 + 1799)),
            "2d 5h"
        );
    }
}
