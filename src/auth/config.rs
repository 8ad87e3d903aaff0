//! Token authentication settings: keys, pinned algorithms, claim checks, token sources and
//! the permissions of sessions without a token.

use std::path::PathBuf;
use std::time::Duration;

use super::permissions::Permissions;

/// A JWS algorithm a token may be signed with. `none` does not exist here: unsigned tokens are
/// always refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

impl JwtAlgorithm {
    /// Every algorithm, in the order above.
    pub const ALL: [JwtAlgorithm; 12] = [
        JwtAlgorithm::HS256,
        JwtAlgorithm::HS384,
        JwtAlgorithm::HS512,
        JwtAlgorithm::RS256,
        JwtAlgorithm::RS384,
        JwtAlgorithm::RS512,
        JwtAlgorithm::PS256,
        JwtAlgorithm::PS384,
        JwtAlgorithm::PS512,
        JwtAlgorithm::ES256,
        JwtAlgorithm::ES384,
        JwtAlgorithm::EdDSA,
    ];

    /// The name of the algorithm in a JWT header (`HS256`, ..., `EdDSA`).
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::HS256 => "HS256",
            JwtAlgorithm::HS384 => "HS384",
            JwtAlgorithm::HS512 => "HS512",
            JwtAlgorithm::RS256 => "RS256",
            JwtAlgorithm::RS384 => "RS384",
            JwtAlgorithm::RS512 => "RS512",
            JwtAlgorithm::PS256 => "PS256",
            JwtAlgorithm::PS384 => "PS384",
            JwtAlgorithm::PS512 => "PS512",
            JwtAlgorithm::ES256 => "ES256",
            JwtAlgorithm::ES384 => "ES384",
            JwtAlgorithm::EdDSA => "EdDSA",
        }
    }

    /// Parses a header name (case-insensitive); `None` for unknown names and for `none`.
    pub fn parse(name: &str) -> Option<JwtAlgorithm> {
        JwtAlgorithm::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether the algorithm is an HMAC (shared secret) one.
    pub fn is_hmac(self) -> bool {
        matches!(
            self,
            JwtAlgorithm::HS256 | JwtAlgorithm::HS384 | JwtAlgorithm::HS512
        )
    }
}

/// Where the keys that verify tokens come from.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthKey {
    /// A shared HMAC secret (the raw bytes).
    HmacSecret(Vec<u8>),
    /// One public key in PEM: RSA (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`), EC P-256 /
    /// P-384 or Ed25519 (`BEGIN PUBLIC KEY`).
    PublicKeyPem(Vec<u8>),
    /// A JWKS file (`{"keys": [...]}`), read when the server starts and again whenever its
    /// modification time or size changes (checked every [`JWKS_RELOAD_INTERVAL`]). A token
    /// names its key with `kid`; without a `kid`, a set of exactly one key is used.
    JwksFile(PathBuf),
}

/// How often a JWKS file is checked for changes.
pub const JWKS_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthKey::HmacSecret(secret) => write!(f, "HmacSecret(<{} bytes>)", secret.len()),
            AuthKey::PublicKeyPem(pem) => write!(f, "PublicKeyPem(<{} bytes>)", pem.len()),
            AuthKey::JwksFile(path) => f.debug_tuple("JwksFile").field(path).finish(),
        }
    }
}

/// Token (JWT) authentication and permissions. Off unless `ServerConfig::auth` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthConfig {
    /// The verification key(s).
    pub key: AuthKey,
    /// Algorithms a token may be signed with; its `alg` header must be one of them and of the
    /// key's kind. Empty (the default) means one inferred from the key: `HS256` for a secret,
    /// `RS256` / `ES256` (P-256) / `ES384` (P-384) / `EdDSA` for a PEM key by its type, and for
    /// a JWKS each key's own `alg` (or, without one, `RS256`, `ES256` or `EdDSA` by its type).
    pub algorithms: Vec<JwtAlgorithm>,
    /// Required `iss` claim; not checked when `None` (the default).
    pub issuer: Option<String>,
    /// Required `aud` claim (one of the token's audiences); when `None` (the default), a token
    /// that has an `aud` claim is refused (RFC 7519 §4.1.3).
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`. Default 30 s.
    pub leeway: Duration,
    /// Refuse clients that bring no token (at the upgrade or in CONNECT). Default `false`:
    /// such clients connect anonymously with `anonymous` permissions.
    pub required: bool,
    /// Cookie carrying the token on WebSocket and SockJS requests; `None` (the default) reads
    /// no cookie.
    pub cookie: Option<String>,
    /// Query parameter carrying the token on upgrade and SockJS requests; empty reads none.
    /// Default `access_token`.
    pub query_param: String,
    /// Largest token accepted, in bytes; longer ones are refused before any decoding.
    /// Default 8 KiB.
    pub max_token_size: usize,
    /// Permissions of a token without `wsb` claims. Default: everything (`**`).
    pub token_defaults: Permissions,
    /// Permissions of sessions without a token (when `required` is off). Default: nothing.
    pub anonymous: Permissions,
    /// Destination a client SENDs a new token to (in a `token` header or as the body) to
    /// refresh its session without reconnecting. Default `/wsb/refresh`.
    pub refresh_destination: String,
    /// Private destinations (patterns): a SUBSCRIBE to one needs a subscription token (an
    /// `x-sub-token` header: a JWT whose `sub` is the session's user and whose `wsb.dest` is
    /// the destination), whatever the session's permissions; its expiry ends that
    /// subscription only. A wildcard SUBSCRIBE that could match one is refused. Default none.
    pub private: Vec<String>,
}

/// The default refresh destination.
pub const DEFAULT_REFRESH_DESTINATION: &str = "/wsb/refresh";

impl AuthConfig {
    /// Token authentication with `key` and every other setting at its default.
    pub fn new(key: AuthKey) -> AuthConfig {
        AuthConfig {
            key,
            algorithms: Vec::new(),
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(30),
            required: false,
            cookie: None,
            query_param: "access_token".into(),
            max_token_size: 8 * 1024,
            token_defaults: Permissions::all(),
            anonymous: Permissions::default(),
            refresh_destination: DEFAULT_REFRESH_DESTINATION.into(),
            private: Vec::new(),
        }
    }

    /// Whether `destination` (as the client wrote it) is private.
    pub fn is_private(&self, destination: &str) -> bool {
        self.private
            .iter()
            .any(|p| p == destination || crate::broker::pattern::matches(p, destination))
    }

    /// Whether the wildcard subscription `pattern` could match a private destination: its
    /// literal part and a private pattern's literal part are prefixes of one another
    /// (conservative: a pattern that might reach a private destination is refused).
    pub fn may_reach_private(&self, pattern: &str) -> bool {
        let literal = |p: &str| p.split('*').next().unwrap_or_default().to_string();
        let mine = literal(pattern);
        self.private.iter().any(|p| {
            let theirs = literal(p);
            theirs.starts_with(&mine) || mine.starts_with(&theirs)
        })
    }

    /// Checks the settings (and parses a secret or PEM key); the error names what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_token_size == 0 {
            return Err("auth max_token_size must be greater than 0".into());
        }
        if !self.refresh_destination.starts_with('/') {
            return Err("auth refresh_destination must start with '/'".into());
        }
        if let Some(p) = self.private.iter().find(|p| !p.starts_with('/')) {
            return Err(format!(
                "private destination pattern {p:?} must start with '/'"
            ));
        }
        if let AuthKey::HmacSecret(secret) = &self.key
            && secret.is_empty()
        {
            return Err("the JWT HMAC secret is empty".into());
        }
        if !matches!(self.key, AuthKey::JwksFile(_)) {
            super::verify::Authenticator::new(self, None)?;
        }
        Ok(())
    }
}
