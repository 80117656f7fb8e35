//! What s3s-fs 0.14.1 leaves out of a listing's answer, which S3 clients count on for keys
//! that XML cannot carry (control characters): `encoding-type=url` (s3s-fs echoes it without
//! encoding a key, so a client decoding `a+b` read `a b`), and continuation tokens that are
//! not keys in the clear.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use s3s::dto::ListObjectsV2Output;

/// What `encoding-type=url` leaves as it is: unreserved characters and the folder separator.
const KEPT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The mark of a token made by [`token_of_key`].
const TOKEN_MARK: &str = "k.";

/// Percent-encodes the keys and prefixes of a listing, as S3 does when asked for
/// `encoding-type=url` (a space as `%20`, which every client decodes, never `+`).
pub(super) fn url_encode(out: &mut ListObjectsV2Output) {
    let encode = |s: &mut String| *s = utf8_percent_encode(s, KEPT).to_string();
    for object in out.contents.iter_mut().flatten() {
        object.key.as_mut().map(encode);
    }
    for folder in out.common_prefixes.iter_mut().flatten() {
        folder.prefix.as_mut().map(encode);
    }
    out.prefix.as_mut().map(encode);
    out.delimiter.as_mut().map(encode);
    out.start_after.as_mut().map(encode);
}

/// A continuation token for the listing that goes on after `key` (s3s-fs's tokens are keys,
/// which XML cannot carry when they hold control characters).
pub(super) fn token_of_key(key: &str) -> String {
    format!("{TOKEN_MARK}{}", utf8_percent_encode(key, NON_ALPHANUMERIC))
}

/// The key a token of [`token_of_key`] stands for; any other token as it is.
pub(super) fn key_of_token(token: &str) -> String {
    token
        .strip_prefix(TOKEN_MARK)
        .and_then(|t| percent_decode_str(t).decode_utf8().ok())
        .map_or_else(|| token.to_owned(), std::borrow::Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_any_key_in_plain_characters() {
        for key in ["plain/key.txt", "x\u{1b}[31m\r\n.txt", "a b+c%d/é/日本", ""] {
            let token = token_of_key(key);
            assert!(token.bytes().all(|b| b.is_ascii_graphic()), "{token:?}");
            assert_eq!(key_of_token(&token), key);
        }
        // A token from before (a key in the clear) still works.
        assert_eq!(key_of_token("docs/a.txt"), "docs/a.txt");
    }

    #[test]
    fn url_encoding_leaves_separators_and_encodes_the_rest() {
        let mut out = ListObjectsV2Output {
            contents: Some(vec![s3s::dto::Object {
                key: Some("dir/a b+c%d\u{1b}é.txt".into()),
                ..Default::default()
            }]),
            prefix: Some("dir/".into()),
            ..Default::default()
        };
        url_encode(&mut out);
        let key = out.contents.unwrap()[0].key.clone().unwrap();
        assert_eq!(key, "dir/a%20b%2Bc%25d%1B%C3%A9.txt");
        assert_eq!(out.prefix.as_deref(), Some("dir/"));
    }
}
