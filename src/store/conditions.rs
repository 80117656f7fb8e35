//! The conditional headers of a GET or HEAD, which s3s-fs 0.14.1 ignores: `If-Match`,
//! `If-Unmodified-Since`, `If-None-Match`, `If-Modified-Since` and `If-Range`. Without them a
//! download resumed with `If-Match` (the CLI's guard against splicing two versions of an
//! object) or a browser's `If-Range` got the bytes of whatever the object had become.

use s3s::dto::{ETag, ETagCondition, Timestamp, TimestampFormat};

/// What the conditions say about one object.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Answer as asked.
    Proceed,
    /// `412 Precondition Failed`.
    Failed,
    /// `304 Not Modified`.
    NotModified,
}

/// The conditions of one request, in the order RFC 9110 (13.2.2) evaluates them.
pub(super) struct Conditions {
    pub if_match: Option<ETagCondition>,
    pub if_unmodified_since: Option<Timestamp>,
    pub if_none_match: Option<ETagCondition>,
    pub if_modified_since: Option<Timestamp>,
}

impl Conditions {
    /// The verdict for an object with this `etag`, last modified at `modified`.
    pub fn verdict(&self, etag: Option<&ETag>, modified: Option<&Timestamp>) -> Verdict {
        let modified = modified.map(seconds);
        if let Some(condition) = &self.if_match {
            if !matches(condition, etag, ETag::strong_cmp) {
                return Verdict::Failed;
            }
        } else if let (Some(since), Some(modified)) = (&self.if_unmodified_since, modified)
            && modified > seconds(since)
        {
            return Verdict::Failed;
        }
        if let Some(condition) = &self.if_none_match {
            if matches(condition, etag, ETag::weak_cmp) {
                return Verdict::NotModified;
            }
        } else if let (Some(since), Some(modified)) = (&self.if_modified_since, modified)
            && modified <= seconds(since)
        {
            return Verdict::NotModified;
        }
        Verdict::Proceed
    }
}

/// Whether a `Range` still applies under `If-Range` (its value as sent): only to the very
/// object the validator names, a strong ETag or a date it has not been modified since. A
/// header that is neither is not trusted: the whole object is sent.
pub(super) fn range_applies(
    if_range: &str,
    etag: Option<&ETag>,
    modified: Option<&Timestamp>,
) -> bool {
    let if_range = if_range.trim();
    if if_range.starts_with('"') {
        return ETag::parse_http_header(if_range.as_bytes())
            .is_ok_and(|wanted| etag.is_some_and(|e| e.strong_cmp(&wanted)));
    }
    if if_range.starts_with("W/") {
        return false;
    }
    match (
        Timestamp::parse(TimestampFormat::HttpDate, if_range),
        modified,
    ) {
        (Ok(date), Some(modified)) => seconds(modified) <= seconds(&date),
        _ => false,
    }
}

fn matches(condition: &ETagCondition, etag: Option<&ETag>, cmp: fn(&ETag, &ETag) -> bool) -> bool {
    match condition {
        ETagCondition::Any => true,
        ETagCondition::ETag(wanted) => etag.is_some_and(|e| cmp(e, wanted)),
    }
}

/// HTTP dates have whole seconds; an object's time is compared at that precision.
fn seconds(t: &Timestamp) -> i64 {
    // s3s hands out its time only formatted (the `time` crate is not ours to name).
    let mut text = Vec::new();
    match t.format(TimestampFormat::EpochSeconds, &mut text) {
        Ok(()) => std::str::from_utf8(&text)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .map_or(0, |s| s.floor() as i64),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn at(t: SystemTime) -> Timestamp {
        Timestamp::from(t)
    }

    fn strong(s: &str) -> ETag {
        ETag::Strong(s.to_owned())
    }

    #[test]
    fn preconditions_follow_rfc_9110() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let earlier = || Some(at(now - Duration::from_secs(60)));
        let later = || Some(at(now + Duration::from_secs(60)));
        let other = || Some(ETagCondition::ETag(strong("def")));
        let same = || Some(ETagCondition::ETag(strong("abc")));
        let none = || Conditions {
            if_match: None,
            if_unmodified_since: None,
            if_none_match: None,
            if_modified_since: None,
        };
        let verdict = |c: Conditions| c.verdict(Some(&strong("abc")), Some(&at(now)));
        use Verdict::*;
        assert_eq!(verdict(none()), Proceed);
        assert_eq!(
            verdict(Conditions {
                if_match: other(),
                ..none()
            }),
            Failed
        );
        assert_eq!(
            verdict(Conditions {
                if_match: same(),
                ..none()
            }),
            Proceed
        );
        let any = Some(ETagCondition::Any);
        assert_eq!(
            verdict(Conditions {
                if_match: any,
                ..none()
            }),
            Proceed
        );
        // If-Match decides alone when present (S3 answers 200 for a true If-Match and a false
        // If-Unmodified-Since).
        let both = Conditions {
            if_match: same(),
            if_unmodified_since: earlier(),
            ..none()
        };
        assert_eq!(verdict(both), Proceed);
        assert_eq!(
            verdict(Conditions {
                if_unmodified_since: earlier(),
                ..none()
            }),
            Failed
        );
        assert_eq!(
            verdict(Conditions {
                if_unmodified_since: later(),
                ..none()
            }),
            Proceed
        );
        assert_eq!(
            verdict(Conditions {
                if_none_match: same(),
                ..none()
            }),
            NotModified
        );
        assert_eq!(
            verdict(Conditions {
                if_none_match: other(),
                ..none()
            }),
            Proceed
        );
        assert_eq!(
            verdict(Conditions {
                if_modified_since: later(),
                ..none()
            }),
            NotModified
        );
        assert_eq!(
            verdict(Conditions {
                if_modified_since: earlier(),
                ..none()
            }),
            Proceed
        );
        // The same second is not a modification (HTTP dates have whole seconds).
        let within = at(now + Duration::from_millis(400));
        let since_now = Conditions {
            if_modified_since: Some(at(now)),
            ..none()
        };
        assert_eq!(
            since_now.verdict(Some(&strong("abc")), Some(&within)),
            NotModified
        );
        // No object time: the date conditions cannot fail it.
        let undated = Conditions {
            if_unmodified_since: earlier(),
            ..none()
        };
        assert_eq!(undated.verdict(Some(&strong("abc")), None), Proceed);
    }

    #[test]
    fn a_range_applies_only_to_the_object_if_range_names() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let etag = strong("abc");
        let modified = at(now);
        assert!(range_applies("\"abc\"", Some(&etag), Some(&modified)));
        assert!(!range_applies("\"def\"", Some(&etag), Some(&modified)));
        assert!(!range_applies("W/\"abc\"", Some(&etag), Some(&modified)));
        assert!(range_applies(
            "Tue, 14 Nov 2023 22:13:20 GMT",
            Some(&etag),
            Some(&modified)
        ));
        assert!(range_applies(
            "Tue, 14 Nov 2023 22:14:00 GMT",
            Some(&etag),
            Some(&modified)
        ));
        assert!(!range_applies(
            "Tue, 14 Nov 2023 22:13:19 GMT",
            Some(&etag),
            Some(&modified)
        ));
        assert!(!range_applies("yesterday", Some(&etag), Some(&modified)));
    }
}
