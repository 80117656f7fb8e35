//! `s3://bucket/key` locations as written on the command line, and keys as printed for a person.

use crate::error::{Error, Result};

/// A bucket and a key (or key prefix) within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket name.
    pub bucket: String,
    /// The key, or a prefix when it ends with `/`; empty for the whole bucket.
    pub key: String,
}

impl S3Location {
    /// Parses `s3://bucket/key`; the key is taken verbatim (spaces, `%`, `+`, `#`, `?` included),
    /// since S3 keys are not URLs and must be signed exactly once.
    pub fn parse(text: &str) -> Result<Self> {
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| Error::BadLocation(text.to_owned()))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::BadLocation(text.to_owned()));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }

    /// Whether the key names a folder (empty or ending with `/`).
    pub fn is_prefix(&self) -> bool {
        self.key.is_empty() || self.key.ends_with('/')
    }

    /// The last path segment of the key: the file name a download gets.
    pub fn file_name(&self) -> &str {
        self.key
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("")
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

impl std::str::FromStr for S3Location {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// A key (or a file's path) as printed for a person: control characters written as escapes
/// (`\n`, `\r`, `\t`, `\x1b`…). Keys come from anyone who can write to the bucket; printed as
/// they are, an escape sequence in one would drive the reader's terminal (colours, the title,
/// a line rewritten) and a newline would pass for two entries. `--json` gives them exactly.
pub fn shown(name: &str) -> std::borrow::Cow<'_, str> {
    escaped(name, false)
}

/// A message as printed for a person: as [`shown`], but its own line breaks and tabs kept.
pub fn shown_message(message: &str) -> std::borrow::Cow<'_, str> {
    escaped(message, true)
}

fn escaped(text: &str, keep_layout: bool) -> std::borrow::Cow<'_, str> {
    let escape = |c: char| c.is_control() && !(keep_layout && matches!(c, '\n' | '\t'));
    if !text.chars().any(escape) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !escape(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_printed_with_their_control_characters_escaped() {
        assert_eq!(shown("plain/é 日本+%.txt"), "plain/é 日本+%.txt");
        assert_eq!(shown("x\u{1b}[31m\r\n\t\u{7}"), "x\\x1b[31m\\r\\n\\t\\x07");
        assert_eq!(shown("c1\u{9b}"), "c1\\x9b");
        assert_eq!(shown_message("two\nlines\u{1b}[2J"), "two\nlines\\x1b[2J");
    }

    #[test]
    fn parses_keys_verbatim() {
        let l = S3Location::parse("s3://b/a b/%20+#?x").unwrap();
        assert_eq!(l.bucket, "b");
        assert_eq!(l.key, "a b/%20+#?x");
        assert_eq!(l.file_name(), "%20+#?x");
        assert!(!l.is_prefix());
        assert!(S3Location::parse("s3://b").unwrap().is_prefix());
        assert!(S3Location::parse("s3://b/dir/").unwrap().is_prefix());
        assert!(S3Location::parse("b/key").is_err());
        assert!(S3Location::parse("s3:///key").is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text: no panic, and whatever parses prints back to something that parses the same.
        #[test]
        fn parsing_never_panics_and_round_trips(text in "(s3://)?\\PC{0,40}") {
            if let Ok(l) = S3Location::parse(&text) {
                prop_assert!(!l.bucket.is_empty() && !l.bucket.contains('/'));
                prop_assert_eq!(S3Location::parse(&l.to_string()).unwrap(), l);
            }
        }

        /// Keys are kept verbatim, however awkward (spaces, `%`, `+`, `#`, `?`, `//`, unicode).
        #[test]
        fn keys_survive_verbatim(bucket in "[a-z0-9][a-z0-9.-]{0,20}", key in "\\PC{0,40}") {
            let text = format!("s3://{bucket}/{key}");
            let l = S3Location::parse(&text).unwrap();
            prop_assert_eq!(&l.bucket, &bucket);
            prop_assert_eq!(&l.key, &key);
            prop_assert_eq!(l.to_string(), text);
            let _ = l.file_name();
        }
    }
}
