//! Token verification: pure computation over the token, the keys and the time given.

use std::collections::HashMap;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::RwLock;
use serde_json::Value;

use super::config::{AuthConfig, AuthKey, JwtAlgorithm};
use super::permissions::Permissions;

/// What a verified token grants a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The token's `sub`: the session's user.
    pub subject: String,
    /// The token's `exp` (seconds since the Unix epoch).
    pub expires_at: u64,
    /// `exp` plus the leeway: from this second on the token no longer counts.
    pub valid_until: u64,
    /// What the session may subscribe and publish to.
    pub permissions: Permissions,
    /// A subscription token's `wsb.dest`: the one destination it opens.
    pub destination: Option<String>,
}

/// Why a token was refused. The text is sent to the client (it names no key material).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Longer than `max_token_size`.
    #[error("token too large ({0} bytes)")]
    TooLarge(usize),
    /// Not three base64url parts with a JSON header and claims.
    #[error("malformed token")]
    Malformed,
    /// The `alg` header is `none`, unknown, or not one the server accepts for the key.
    #[error("token algorithm not accepted (alg {0})")]
    Algorithm(String),
    /// No key with the token's `kid` (or no `kid` with several keys).
    #[error("no key for the token (kid {0})")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("invalid token signature")]
    Signature,
    /// `exp` passed (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    #[error("token not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("wrong token issuer")]
    Issuer,
    /// `aud` does not name the configured audience.
    #[error("wrong token audience")]
    Audience,
    /// A required claim is missing or has the wrong type.
    #[error("invalid token claim {0}")]
    Claim(String),
}

struct Entry {
    key: DecodingKey,
    validation: Validation,
}

#[derive(Default)]
struct Keys {
    /// By `kid`; a key without one is stored under "".
    by_kid: HashMap<String, Entry>,
}

/// Verifies tokens against the configured keys (a JWKS may be replaced while it runs).
pub struct Authenticator {
    keys: RwLock<Keys>,
    leeway: u64,
    max_token_size: usize,
    jwks: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("keys", &self.keys.read().by_kid.len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

fn family(alg: JwtAlgorithm) -> Family {
    use JwtAlgorithm as A;
    match alg {
        A::HS256 | A::HS384 | A::HS512 => Family::Hmac,
        A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512 => Family::Rsa,
        A::ES256 | A::ES384 => Family::Ec,
        A::EdDSA => Family::Ed,
    }
}

fn to_jwt(alg: JwtAlgorithm) -> Algorithm {
    use JwtAlgorithm as A;
    match alg {
        A::HS256 => Algorithm::HS256,
        A::HS384 => Algorithm::HS384,
        A::HS512 => Algorithm::HS512,
        A::RS256 => Algorithm::RS256,
        A::RS384 => Algorithm::RS384,
        A::RS512 => Algorithm::RS512,
        A::PS256 => Algorithm::PS256,
        A::PS384 => Algorithm::PS384,
        A::PS512 => Algorithm::PS512,
        A::ES256 => Algorithm::ES256,
        A::ES384 => Algorithm::ES384,
        A::EdDSA => Algorithm::EdDSA,
    }
}

/// The configured algorithms that fit a key of `family`, or `default` when none are
/// configured; an error names a configured algorithm that does not fit.
fn algorithms_for(
    config: &AuthConfig,
    family_of_key: Family,
    default: JwtAlgorithm,
) -> Result<Vec<JwtAlgorithm>, String> {
    if config.algorithms.is_empty() {
        return Ok(vec![default]);
    }
    if let Some(bad) = config
        .algorithms
        .iter()
        .find(|a| family(**a) != family_of_key)
    {
        return Err(format!(
            "JWT algorithm {} does not fit the configured {family_of_key:?} key",
            bad.as_str()
        ));
    }
    Ok(config.algorithms.clone())
}

fn validation(config: &AuthConfig, algorithms: &[JwtAlgorithm]) -> Validation {
    let mut v = Validation::new(to_jwt(algorithms[0]));
    v.algorithms = algorithms.iter().copied().map(to_jwt).collect();
    // exp and nbf are checked against the time the caller gives (see `verify`).
    v.validate_exp = false;
    v.validate_nbf = false;
    v.leeway = 0;
    let mut required = vec!["exp", "sub"];
    if let Some(issuer) = &config.issuer {
        v.set_issuer(&[issuer]);
        required.push("iss");
    }
    if let Some(audience) = &config.audience {
        v.set_audience(&[audience]);
        required.push("aud");
    }
    v.set_required_spec_claims(&required);
    v
}

impl Authenticator {
    /// An authenticator for `config`. A JWKS key set starts from `jwks` (the file's bytes),
    /// or empty (every token refused) until [`Authenticator::load_jwks`].
    pub fn new(config: &AuthConfig, jwks: Option<&[u8]>) -> Result<Authenticator, String> {
        let mut keys = Keys::default();
        match &config.key {
            AuthKey::HmacSecret(secret) => {
                let algs = algorithms_for(config, Family::Hmac, JwtAlgorithm::HS256)?;
                keys.by_kid.insert(
                    String::new(),
                    Entry {
                        key: DecodingKey::from_secret(secret),
                        validation: validation(config, &algs),
                    },
                );
            }
            AuthKey::PublicKeyPem(pem) => {
                let (key, fam, default) = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
                    (key, Family::Rsa, JwtAlgorithm::RS256)
                } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
                    let default = if is_p384(pem) {
                        JwtAlgorithm::ES384
                    } else {
                        JwtAlgorithm::ES256
                    };
                    (key, Family::Ec, default)
                } else if let Ok(key) = DecodingKey::from_ed_pem(pem) {
                    (key, Family::Ed, JwtAlgorithm::EdDSA)
                } else {
                    return Err(
                        "the JWT public key is not an RSA, EC or Ed25519 public key in PEM".into(),
                    );
                };
                let algs = algorithms_for(config, fam, default)?;
                keys.by_kid.insert(
                    String::new(),
                    Entry {
                        key,
                        validation: validation(config, &algs),
                    },
                );
            }
            AuthKey::JwksFile(_) => {
                if let Some(bytes) = jwks {
                    keys = parse_jwks(config, bytes)?;
                }
            }
        }
        Ok(Authenticator {
            keys: RwLock::new(keys),
            leeway: config.leeway.as_secs(),
            max_token_size: config.max_token_size,
            jwks: matches!(config.key, AuthKey::JwksFile(_)),
        })
    }

    /// Replaces the JWKS key set with the one in `bytes`; how many keys it holds. On an error
    /// the old set stays.
    pub fn load_jwks(&self, config: &AuthConfig, bytes: &[u8]) -> Result<usize, String> {
        let keys = parse_jwks(config, bytes)?;
        let n = keys.by_kid.len();
        *self.keys.write() = keys;
        Ok(n)
    }

    /// Verifies `token` at `now` (seconds since the Unix epoch): signature with a pinned
    /// algorithm, `exp` and `nbf` (with the leeway), `iss`, `aud`, `sub`; then reads the
    /// permissions (`wsb.sub` / `wsb.pub`, else `defaults`).
    pub fn verify(
        &self,
        token: &str,
        now: u64,
        defaults: &Permissions,
    ) -> Result<Grant, AuthError> {
        let token = token.trim();
        if token.len() > self.max_token_size {
            return Err(AuthError::TooLarge(token.len()));
        }
        if token.split('.').count() != 3 {
            return Err(AuthError::Malformed);
        }
        let keys = self.keys.read();
        let entry = if self.jwks {
            let header = jsonwebtoken::decode_header(token).map_err(|e| header_error(token, &e))?;
            let kid = header.kid.unwrap_or_default();
            match keys.by_kid.get(&kid) {
                Some(entry) => entry,
                None if kid.is_empty() && keys.by_kid.len() == 1 => {
                    keys.by_kid.values().next().expect("one key")
                }
                None => return Err(AuthError::UnknownKey(kid)),
            }
        } else {
            keys.by_kid.get("").expect("one key")
        };
        let data = jsonwebtoken::decode::<Value>(token, &entry.key, &entry.validation)
            .map_err(|e| decode_error(token, &e))?;
        drop(keys);
        let claims = data.claims;
        let number = |name: &str| -> Result<Option<u64>, AuthError> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                    .map(Some)
                    .ok_or_else(|| AuthError::Claim(name.into())),
            }
        };
        let exp = number("exp")?.ok_or_else(|| AuthError::Claim("exp".into()))?;
        if now >= exp.saturating_add(self.leeway) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = number("nbf")?
            && nbf > now.saturating_add(self.leeway)
        {
            return Err(AuthError::NotYetValid);
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthError::Claim("sub".into()))?
            .to_string();
        let destination = match claims
            .get("wsb")
            .and_then(|w| w.get("dest"))
            .or_else(|| claims.get("wsb.dest"))
        {
            None => None,
            Some(v) => Some(
                v.as_str()
                    .filter(|d| !d.is_empty())
                    .ok_or_else(|| AuthError::Claim("wsb.dest".into()))?
                    .to_string(),
            ),
        };
        Ok(Grant {
            subject,
            expires_at: exp,
            valid_until: exp.saturating_add(self.leeway),
            permissions: permissions(&claims, defaults)?,
            destination,
        })
    }
}

/// `wsb.sub` / `wsb.pub`: members of a `wsb` object, or top-level claims with those names.
fn permissions(claims: &Value, defaults: &Permissions) -> Result<Permissions, AuthError> {
    let nested = claims.get("wsb");
    let list = |name: &str| -> Result<Option<Vec<String>>, AuthError> {
        let flat = format!("wsb.{name}");
        let Some(value) = nested
            .and_then(|w| w.get(name))
            .or_else(|| claims.get(&flat))
        else {
            return Ok(None);
        };
        let bad = || AuthError::Claim(flat.clone());
        let items = value.as_array().ok_or_else(bad)?;
        items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    };
    let (subscribe, publish) = (list("sub")?, list("pub")?);
    if subscribe.is_none() && publish.is_none() {
        return Ok(defaults.clone());
    }
    Ok(Permissions {
        subscribe: subscribe.unwrap_or_default(),
        publish: publish.unwrap_or_default(),
    })
}

/// The header's `alg` as written, for error messages (`none`, `HS256`, ...).
fn alg_of(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| v.get("alg").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "missing".into())
        .chars()
        .take(16)
        .collect()
}

fn header_error(token: &str, e: &jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        ErrorKind::Json(_) if alg_of(token) != "missing" => AuthError::Algorithm(alg_of(token)),
        _ => AuthError::Malformed,
    }
}

fn decode_error(token: &str, e: &jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        ErrorKind::InvalidSignature => AuthError::Signature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            AuthError::Algorithm(alg_of(token))
        }
        ErrorKind::Json(_) => header_error(token, e),
        ErrorKind::InvalidIssuer => AuthError::Issuer,
        ErrorKind::InvalidAudience => AuthError::Audience,
        ErrorKind::MissingRequiredClaim(name) => match name.as_str() {
            "iss" => AuthError::Issuer,
            "aud" => AuthError::Audience,
            other => AuthError::Claim(other.into()),
        },
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        // A key that cannot verify this token (wrong curve, bad encoding) is a bad signature.
        ErrorKind::Crypto(_) | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) => {
            AuthError::Signature
        }
        _ => AuthError::Malformed,
    }
}

/// Whether a PEM EC public key is on P-384 (its curve OID, 1.3.132.0.34, in the DER).
fn is_p384(pem: &[u8]) -> bool {
    use base64::Engine as _;
    let text = String::from_utf8_lossy(pem);
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body.trim()) else {
        return false;
    };
    let oid = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
    der.windows(oid.len()).any(|w| w == oid)
}

fn parse_jwks(config: &AuthConfig, bytes: &[u8]) -> Result<Keys, String> {
    let set: JwkSet =
        serde_json::from_slice(bytes).map_err(|e| format!("the JWKS is not valid: {e}"))?;
    let mut keys = Keys::default();
    for jwk in &set.keys {
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let (fam, default) = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => (Family::Rsa, JwtAlgorithm::RS256),
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P384 => (Family::Ec, JwtAlgorithm::ES384),
                EllipticCurve::P256 => (Family::Ec, JwtAlgorithm::ES256),
                _ => {
                    tracing::warn!(kid, "JWKS key on an unsupported curve skipped");
                    continue;
                }
            },
            AlgorithmParameters::OctetKeyPair(_) => (Family::Ed, JwtAlgorithm::EdDSA),
            AlgorithmParameters::OctetKey(_) => (Family::Hmac, JwtAlgorithm::HS256),
        };
        let declared = jwk
            .common
            .key_algorithm
            .and_then(|a| JwtAlgorithm::parse(&format!("{a:?}")));
        let mut algs: Vec<JwtAlgorithm> = if config.algorithms.is_empty() {
            vec![declared.unwrap_or(default)]
        } else {
            config.algorithms.clone()
        };
        algs.retain(|a| family(*a) == fam && declared.is_none_or(|d| d == *a));
        if algs.is_empty() {
            tracing::warn!(
                kid,
                "JWKS key fits none of the configured algorithms: skipped"
            );
            continue;
        }
        let key = match DecodingKey::from_jwk(jwk) {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!(kid, error = %e, "JWKS key skipped");
                continue;
            }
        };
        keys.by_kid.insert(
            kid,
            Entry {
                key,
                validation: validation(config, &algs),
            },
        );
    }
    Ok(keys)
}
