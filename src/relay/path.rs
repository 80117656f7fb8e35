//! Request paths: `/<token>/<key>`, decoded exactly once and checked before any key is used.
//!
//! Keys reach S3 only through the presigner, which encodes them itself: decoding here once and
//! refusing what no sensible key contains (dot segments, empty segments, backslashes, control
//! characters, an encoded `/`) leaves no room for traversal or double-decoding tricks.

/// The longest key S3 accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// A request path split and decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayPath<'a> {
    /// The token segment, as sent (tokens are base64url: nothing to decode).
    pub token: &'a str,
    /// The decoded key; ends with `/` when the request names a folder, and is empty for the
    /// bucket's root (`/<token>/`).
    pub key: String,
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// No token segment at all.
    #[error("no link token in the path")]
    NoToken,
    /// A malformed or dangerous path.
    #[error("bad path: {0}")]
    Bad(&'static str),
}

/// Splits `/<token>/<key…>` and decodes the key's segments exactly once.
pub fn parse(path: &str) -> Result<RelayPath<'_>, PathError> {
    let rest = path
        .strip_prefix('/')
        .ok_or(PathError::Bad("it must start with /"))?;
    let (token, key_part) = match rest.split_once('/') {
        Some((t, k)) => (t, Some(k)),
        None => (rest, None),
    };
    if token.is_empty() {
        return Err(PathError::NoToken);
    }
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(PathError::Bad("the token has characters no token has"));
    }
    let Some(key_part) = key_part else {
        return Err(PathError::Bad("no key after the token"));
    };
    if key_part.is_empty() {
        // `/<token>/`: the bucket's root, which only a link to the whole bucket covers (the
        // token's MAC is over the scope, so any other link fails verification).
        return Ok(RelayPath {
            token,
            key: String::new(),
        });
    }
    let (body, folder) = match key_part.strip_suffix('/') {
        Some(b) => (b, true),
        None => (key_part, false),
    };
    let mut key = String::with_capacity(key_part.len());
    for raw in body.split('/') {
        let seg = decode_segment(raw)?;
        if seg.is_empty() {
            return Err(PathError::Bad("empty path segment"));
        }
        if seg == "." || seg == ".." {
            return Err(PathError::Bad("dot segments are not allowed"));
        }
        if seg.contains('/') {
            return Err(PathError::Bad("encoded slash"));
        }
        if seg.contains('\\') {
            return Err(PathError::Bad("backslash"));
        }
        if seg.chars().any(char::is_control) {
            return Err(PathError::Bad("control character"));
        }
        key.push_str(&seg);
        key.push('/');
    }
    if !folder {
        key.pop();
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(PathError::Bad("key longer than 1024 bytes"));
    }
    Ok(RelayPath { token, key })
}

/// Strict percent-decoding: `%` must start two hex digits, and the result must be UTF-8.
fn decode_segment(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .filter(|_| bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit())
                .ok_or(PathError::Bad("broken percent-encoding"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathError::Bad("not UTF-8"))
}

/// Encodes a key for a relay URL: each segment percent-encoded, `/` kept between them, so that
/// [`parse`] gives the key back exactly.
pub fn encode_key(key: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    key.split('/')
        .map(|s| percent_encoding::utf8_percent_encode(s, SET).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_once_and_refuses_tricks() {
        let p = parse("/TOKEN/a%20b/%C3%BC%2525.txt").unwrap();
        assert_eq!(p.token, "TOKEN");
        assert_eq!(p.key, "a b/ü%25.txt");
        assert_eq!(parse("/T/folder/").unwrap().key, "folder/");
        // The bucket's root: a link to the whole bucket.
        assert_eq!(parse("/T/").unwrap().key, "");
        for bad in [
            "/T/../x",
            "/T/a/%2e%2e/x",
            "/T/a/%2E%2e",
            "/T/./x",
            "/T/a//b",
            "/T/a%2fb",
            "/T/a%2Fb",
            "/T/a\\b",
            "/T/a%5cb",
            "/T/a%00b",
            "/T/a%0ab",
            "/T/a%7fb",
            "/T/a%zz",
            "/T/a%2",
            "/T/%ff",
            "/T",
            "T/x",
            "/T%41/x",
            "/T//",
        ] {
            assert!(parse(bad).is_err(), "{bad} was accepted: {:?}", parse(bad));
        }
        assert_eq!(parse("/"), Err(PathError::NoToken));
        assert_eq!(parse("//x"), Err(PathError::NoToken));
    }

    #[test]
    fn encoding_round_trips() {
        for key in [
            "with space.txt",
            "ünï/文件 名.txt",
            "plus+%20#?=&.txt",
            " lead ",
        ] {
            let url = format!("/T/{}", encode_key(key));
            assert_eq!(parse(&url).unwrap().key, key, "{url}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_paths_never_panic(path in ".{0,300}") {
            let _ = parse(&path);
        }

        #[test]
        fn decoded_keys_are_clean(path in "/[A-Za-z0-9_-]{1,5}/[a-z%./\\\\0-9A-F]{0,40}") {
            if let Ok(p) = parse(&path) {
                // The bucket's root (`/T/`) has no segments at all.
                prop_assume!(!p.key.is_empty());
                let body = p.key.strip_suffix('/').unwrap_or(&p.key);
                for seg in body.split('/') {
                    prop_assert!(!seg.is_empty() && seg != "." && seg != "..", "{:?}", p.key);
                }
                prop_assert!(!p.key.contains('\\') && !p.key.chars().any(char::is_control));
            }
        }

        #[test]
        fn safe_keys_round_trip(segs in proptest::collection::vec("[^/\\\\\\p{Cc}]{1,12}", 1..5)) {
            prop_assume!(segs.iter().all(|s| s != "." && s != ".."));
            let key = segs.join("/");
            let url = format!("/T/{}", encode_key(&key));
            prop_assert_eq!(parse(&url).unwrap().key, key);
        }
    }
}
