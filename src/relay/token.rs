//! Capability tokens: the first path segment of every relay URL.
//!
//! A token says what its holder may do (link id, bucket, scope, methods, expiry, limits) and
//! carries a truncated HMAC-SHA256 over all of that with the relay's secret. The scope itself
//! (the key, or the folder prefix) is *not* copied into the token: it is the rest of the URL
//! path, and the MAC covers it, so links stay short and a changed path fails verification.
//! For a prefix link the token only records how many bytes of the decoded path are the prefix.
//!
//! Layout (then base64url without padding):
//! `version:u8 | flags:u8 | expires:u32 (Unix seconds) | id:[u8; 6] | [prefix_len:u16]
//!  | [max_size:u64] | bucket_len:u8 | bucket | mac:[u8; 16]`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::Mac as _;
use subtle::ConstantTimeEq as _;

use super::secret::Secret;

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;
/// Bytes of a link id.
pub const ID_LEN: usize = 6;
/// The longest token [`Token::parse`] looks at: beyond that it is not one of ours.
const MAX_TOKEN_CHARS: usize = 512;

const F_GET: u8 = 1;
const F_PUT: u8 = 1 << 1;
const F_DELETE: u8 = 1 << 2;
const F_OVERWRITE: u8 = 1 << 3;
const F_PREFIX: u8 = 1 << 4;
const F_MAX_SIZE: u8 = 1 << 5;
const F_KNOWN: u8 = F_GET | F_PUT | F_DELETE | F_OVERWRITE | F_PREFIX | F_MAX_SIZE;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// What a link lets its holder do. Read-only (GET and HEAD) is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Methods {
    /// GET and HEAD.
    pub read: bool,
    /// PUT (create; replace only with `overwrite`).
    pub put: bool,
    /// DELETE.
    pub delete: bool,
}

impl Methods {
    /// GET and HEAD only.
    pub const READ: Methods = Methods {
        read: true,
        put: false,
        delete: false,
    };

    /// PUT only: an upload link.
    pub const UPLOAD: Methods = Methods {
        read: false,
        put: true,
        delete: false,
    };

    /// `GET, HEAD, PUT`… as an `Allow`-style list.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.read {
            v.extend(["GET", "HEAD"]);
        }
        if self.put {
            v.push("PUT");
        }
        if self.delete {
            v.push("DELETE");
        }
        v
    }
}

/// What a link covers: one key, or every key under a prefix (a folder link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Exactly this key.
    Key(String),
    /// Keys starting with this prefix (empty, or ending with `/`).
    Prefix(String),
}

/// Everything a token grants, in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Random link id, shown to the user and logged (never the token itself).
    pub id: [u8; ID_LEN],
    /// The bucket.
    pub bucket: String,
    /// The key or prefix.
    pub scope: Scope,
    /// Allowed methods.
    pub methods: Methods,
    /// PUT may replace an existing object.
    pub overwrite: bool,
    /// Largest body a PUT may send.
    pub max_size: Option<u64>,
    /// Unix seconds after which the link is refused.
    pub expires: u32,
}

/// Why a token or a grant was refused. Deliberately terse: a caller learns nothing that helps
/// forging.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of this relay, or altered, or for another path.
    #[error("invalid link")]
    Invalid,
    /// Past its expiry.
    #[error("this link has expired")]
    Expired,
}

/// Errors of minting a token from a grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// A bucket name longer than S3 allows.
    #[error("bucket name too long")]
    Bucket,
    /// A prefix that is not empty and does not end with `/`, or is too long.
    #[error("a folder link's prefix must end with `/` and be at most 1024 bytes")]
    Prefix,
    /// An expiry before 1970 or after 2106.
    #[error("the expiry is out of range")]
    Expiry,
}

impl Grant {
    /// A new grant with a random id.
    pub fn new(bucket: &str, scope: Scope, methods: Methods, expires_at: SystemTime) -> Self {
        let secs = expires_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Self {
            id: rand::random(),
            bucket: bucket.to_owned(),
            scope,
            methods,
            overwrite: false,
            max_size: None,
            expires: u32::try_from(secs).unwrap_or(u32::MAX),
        }
    }

    /// The link id as short text (8 characters).
    pub fn id_text(&self) -> String {
        id_text(&self.id)
    }

    /// When the link stops working.
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::from(self.expires))
    }

    /// Whether the link has expired at `now`.
    pub fn expired(&self, now: SystemTime) -> bool {
        now >= self.expires_at()
    }

    /// The token for this grant, signed with `secret`.
    pub fn mint(&self, secret: &Secret) -> Result<String, MintError> {
        if self.bucket.is_empty() || self.bucket.len() > 255 {
            return Err(MintError::Bucket);
        }
        let mut flags = 0;
        let mut prefix_len = None;
        match &self.scope {
            Scope::Key(_) => {}
            Scope::Prefix(p) => {
                if !(p.is_empty() || p.ends_with('/')) || p.len() > 1024 {
                    return Err(MintError::Prefix);
                }
                flags |= F_PREFIX;
                prefix_len = Some(p.len() as u16);
            }
        }
        if self.methods.read {
            flags |= F_GET;
        }
        if self.methods.put {
            flags |= F_PUT;
        }
        if self.methods.delete {
            flags |= F_DELETE;
        }
        if self.overwrite {
            flags |= F_OVERWRITE;
        }
        if self.max_size.is_some() {
            flags |= F_MAX_SIZE;
        }
        let mut out = vec![VERSION, flags];
        out.extend(self.expires.to_be_bytes());
        out.extend(self.id);
        if let Some(n) = prefix_len {
            out.extend(n.to_be_bytes());
        }
        if let Some(m) = self.max_size {
            out.extend(m.to_be_bytes());
        }
        out.push(self.bucket.len() as u8);
        out.extend(self.bucket.as_bytes());
        let mac = mac(&secret.bytes(), &out, self.scope_text());
        out.extend(&mac[..MAC_LEN]);
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out))
    }

    fn scope_text(&self) -> &str {
        match &self.scope {
            Scope::Key(k) | Scope::Prefix(k) => k,
        }
    }
}

/// A link id as text.
pub fn id_text(id: &[u8; ID_LEN]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

fn mac(key: &[u8; 32], body: &[u8], scope: &str) -> [u8; 32] {
    let mut m =
        <HmacSha256 as hmac::KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(body);
    // The scope follows the fixed part, length-prefixed so no two (body, scope) pairs collide.
    m.update(&(scope.len() as u64).to_be_bytes());
    m.update(scope.as_bytes());
    m.finalize().into_bytes().into()
}

/// A token parsed but not yet verified: its fields cannot be trusted until
/// [`Token::verify`] has checked the MAC against the requested key.
#[derive(Debug, Clone)]
pub struct Token {
    body: Vec<u8>,
    mac: [u8; MAC_LEN],
    flags: u8,
    expires: u32,
    id: [u8; ID_LEN],
    prefix_len: Option<usize>,
    max_size: Option<u64>,
    bucket: String,
}

impl Token {
    /// Parses a token's text; any input at all yields `Err(Invalid)` rather than a panic.
    pub fn parse(text: &str) -> Result<Token, TokenError> {
        if text.is_empty() || text.len() > MAX_TOKEN_CHARS {
            return Err(TokenError::Invalid);
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| TokenError::Invalid)?;
        let (body, mac) = raw
            .split_at_checked(raw.len().checked_sub(MAC_LEN).ok_or(TokenError::Invalid)?)
            .ok_or(TokenError::Invalid)?;
        let mut r = Reader(body);
        if r.take(1)?[0] != VERSION {
            return Err(TokenError::Invalid);
        }
        let flags = r.take(1)?[0];
        if flags & !F_KNOWN != 0 {
            return Err(TokenError::Invalid);
        }
        let expires = u32::from_be_bytes(r.take(4)?.try_into().expect("4 bytes"));
        let id: [u8; ID_LEN] = r.take(ID_LEN)?.try_into().expect("id bytes");
        let prefix_len = if flags & F_PREFIX != 0 {
            Some(usize::from(u16::from_be_bytes(
                r.take(2)?.try_into().expect("2 bytes"),
            )))
        } else {
            None
        };
        let max_size = if flags & F_MAX_SIZE != 0 {
            Some(u64::from_be_bytes(r.take(8)?.try_into().expect("8 bytes")))
        } else {
            None
        };
        let blen = usize::from(r.take(1)?[0]);
        let bucket = std::str::from_utf8(r.take(blen)?)
            .map_err(|_| TokenError::Invalid)?
            .to_owned();
        if !r.0.is_empty() || bucket.is_empty() {
            return Err(TokenError::Invalid);
        }
        Ok(Token {
            body: body.to_vec(),
            mac: mac.try_into().expect("MAC_LEN bytes"),
            flags,
            expires,
            id,
            prefix_len,
            max_size,
            bucket,
        })
    }

    /// The link id, for the access log: it identifies a link without granting anything.
    pub fn id_text(&self) -> String {
        id_text(&self.id)
    }

    /// Checks the MAC for a request on `key` (the decoded path after the token) and the expiry
    /// at `now`; on success, what the token grants. The MAC is compared in constant time, with
    /// the current secret and then with earlier secrets still in their grace period at `now`.
    pub fn verify(&self, secret: &Secret, key: &str, now: SystemTime) -> Result<Grant, TokenError> {
        let scope = match self.prefix_len {
            None => Scope::Key(key.to_owned()),
            Some(n) => {
                // The prefix is the first n bytes of the key; a shorter key or a cut inside a
                // character can only be a forgery or a path outside the folder.
                let prefix = key.get(..n).ok_or(TokenError::Invalid)?;
                Scope::Prefix(prefix.to_owned())
            }
        };
        let text = match &scope {
            Scope::Key(k) | Scope::Prefix(k) => k.as_str(),
        };
        // The current secret first; after a rotation, earlier ones still in their grace period.
        let valid = secret.any_key(now, |key| {
            let expected = mac(key, &self.body, text);
            bool::from(expected[..MAC_LEN].ct_eq(&self.mac))
        });
        if !valid {
            return Err(TokenError::Invalid);
        }
        let grant = Grant {
            id: self.id,
            bucket: self.bucket.clone(),
            scope,
            methods: Methods {
                read: self.flags & F_GET != 0,
                put: self.flags & F_PUT != 0,
                delete: self.flags & F_DELETE != 0,
            },
            overwrite: self.flags & F_OVERWRITE != 0,
            max_size: self.max_size,
            expires: self.expires,
        };
        if grant.expired(now) {
            return Err(TokenError::Expired);
        }
        Ok(grant)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TokenError> {
        let (head, tail) = self.0.split_at_checked(n).ok_or(TokenError::Invalid)?;
        self.0 = tail;
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secret(b: u8) -> Secret {
        Secret::from_bytes([b; 32])
    }

    fn later() -> SystemTime {
        SystemTime::now() + Duration::from_secs(3600)
    }

    #[test]
    fn key_token_round_trip_and_scope() {
        let s = secret(1);
        let g = Grant::new(
            "bkt",
            Scope::Key("a b/c.txt".into()),
            Methods::READ,
            later(),
        );
        let t = g.mint(&s).unwrap();
        assert!(t.len() < 60, "short: {t}");
        let parsed = Token::parse(&t).unwrap();
        let back = parsed.verify(&s, "a b/c.txt", SystemTime::now()).unwrap();
        assert_eq!(back, g);
        assert_eq!(
            parsed.verify(&s, "a b/c.txt2", SystemTime::now()),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            parsed.verify(&secret(2), "a b/c.txt", SystemTime::now()),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            parsed.verify(&s, "a b/c.txt", g.expires_at()),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn prefix_token_covers_only_its_folder() {
        let s = secret(3);
        let mut g = Grant::new(
            "bkt",
            Scope::Prefix("drop/".into()),
            Methods::UPLOAD,
            later(),
        );
        g.max_size = Some(1000);
        let t = Token::parse(&g.mint(&s).unwrap()).unwrap();
        let now = SystemTime::now();
        let got = t.verify(&s, "drop/x/y.bin", now).unwrap();
        assert_eq!(got.scope, Scope::Prefix("drop/".into()));
        assert_eq!(got.max_size, Some(1000));
        assert!(got.methods.put && !got.methods.read);
        for outside in ["drops", "drop", "dro", "other/x", "", "drap/x"] {
            assert_eq!(
                t.verify(&s, outside, now),
                Err(TokenError::Invalid),
                "{outside}"
            );
        }
        assert_eq!(
            Grant::new(
                "b",
                Scope::Prefix("no-slash".into()),
                Methods::READ,
                later()
            )
            .mint(&s),
            Err(MintError::Prefix)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            let s = secret(9);
            if let Ok(t) = Token::parse(&text) {
                let _ = t.verify(&s, &text, SystemTime::now());
                let _ = t.id_text();
            }
        }

        #[test]
        fn arbitrary_bytes_never_verify(bytes in proptest::collection::vec(any::<u8>(), 0..120), key in ".{0,40}") {
            let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
            if let Ok(t) = Token::parse(&text) {
                prop_assert!(t.verify(&secret(9), &key, UNIX_EPOCH).is_err());
            }
        }

        #[test]
        fn only_its_secret_verifies(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), key in "[a-z/ ]{1,30}") {
            prop_assume!(a != b);
            let g = Grant::new("bucket", Scope::Key(key.clone()), Methods::READ, later());
            let t = Token::parse(&g.mint(&Secret::from_bytes(a)).unwrap()).unwrap();
            prop_assert!(t.verify(&Secret::from_bytes(a), &key, SystemTime::now()).is_ok());
            prop_assert_eq!(t.verify(&Secret::from_bytes(b), &key, SystemTime::now()), Err(TokenError::Invalid));
        }

        #[test]
        fn any_bit_flip_fails(bit in 0usize..2048, prefix in any::<bool>(), max in proptest::option::of(any::<u64>())) {
            let s = secret(5);
            let scope = if prefix { Scope::Prefix("f/".into()) } else { Scope::Key("f/k".into()) };
            let mut g = Grant::new("bucket", scope, Methods { read: true, put: true, delete: false }, later());
            g.max_size = max;
            let token = g.mint(&s).unwrap();
            let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token).unwrap();
            let bit = bit % (raw.len() * 8);
            raw[bit / 8] ^= 1 << (bit % 8);
            let flipped = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw);
            if let Ok(t) = Token::parse(&flipped) {
                prop_assert!(t.verify(&s, "f/k", SystemTime::now()).is_err());
            }
        }
    }
}
