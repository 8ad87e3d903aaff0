//! Token (JWT) authentication and per-destination permissions.
//!
//! Sans-IO: [`Authenticator::verify`] is pure computation over a token, the configured keys
//! and the time the caller passes; reading a JWKS file and watching it for changes is the
//! server's job (`src/server`), which hands the bytes to [`Authenticator::load_jwks`]. The
//! session asks this module on CONNECT, on every SUBSCRIBE and SEND, and on a refresh; the
//! transport extracts tokens from upgrade requests with [`upgrade_token`].
//!
//! Built on `jsonwebtoken` (9.x, ring backend): maintained, it pins the accepted algorithms
//! through its `Validation` (and refuses a key of the wrong family for them, which stops
//! RS256→HS256 confusion), has no `none` algorithm at all, and reads HMAC secrets, RSA, EC
//! and Ed25519 PEM keys and JWKs.

mod config;
mod permissions;
mod verify;

pub use config::{
    AuthConfig, AuthKey, DEFAULT_REFRESH_DESTINATION, JWKS_RELOAD_INTERVAL, JwtAlgorithm,
};
pub use permissions::Permissions;
pub use verify::{AuthError, Authenticator, Grant};

/// Seconds since the Unix epoch, from the system clock (the time tokens are checked at).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A token carried by an upgrade (or SockJS) request, in this order: `Authorization: Bearer`,
/// the configured cookie, the configured query parameter. `headers` are (lowercased name,
/// value); `query_param` decodes one parameter of the query string.
pub fn upgrade_token(
    config: &AuthConfig,
    headers: &[(String, String)],
    query_param: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let bearer = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .find_map(|(_, v)| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
    if bearer.is_some() {
        return bearer;
    }
    if let Some(name) = &config.cookie {
        let cookie = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim_matches('"').to_string());
        if cookie.is_some() {
            return cookie;
        }
    }
    if config.query_param.is_empty() {
        return None;
    }
    query_param(&config.query_param).filter(|t| !t.is_empty())
}

/// What a raw WebSocket endpoint at `path` lets a client with `grant` (or an anonymous one) do:
/// connecting needs permission to subscribe to the path; `Ok(true)` when it may also send
/// (publish to the path). `Err` is the refusal text.
pub fn endpoint_access(
    config: &AuthConfig,
    grant: Option<&Grant>,
    path: &str,
) -> Result<bool, String> {
    let permissions = grant.map_or(&config.anonymous, |g| &g.permissions);
    if !permissions.may_subscribe(path) {
        let who = grant.map_or_else(
            || "anonymous clients".to_string(),
            |g| format!("user {}", g.subject),
        );
        return Err(format!(
            "permission denied: {who} may not subscribe to {path}"
        ));
    }
    Ok(permissions.may_publish(path))
}

/// Whether a CONNECT `passcode` has the shape of a JWT (three base64url parts), so that it is
/// taken as a token; any other passcode is left to the host's connect hook.
pub fn looks_like_jwt(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn hmac(secret: &str) -> AuthConfig {
        AuthConfig::new(AuthKey::HmacSecret(secret.as_bytes().to_vec()))
    }

    fn hs256(claims: &serde_json::Value, secret: &str) -> String {
        encode(
            &Header::default(),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn verify(config: &AuthConfig, token: &str) -> Result<Grant, AuthError> {
        Authenticator::new(config, None)
            .unwrap()
            .verify(token, NOW, &config.token_defaults)
    }

    #[test]
    fn a_valid_token_grants_its_subject_and_claimed_permissions() {
        let config = hmac("s3cret");
        let token = hs256(
            &json!({"sub": "alice", "exp": NOW + 60, "wsb": {"sub": ["/topic/a.*"], "pub": []}}),
            "s3cret",
        );
        let grant = verify(&config, &token).unwrap();
        assert_eq!(grant.subject, "alice");
        assert_eq!(grant.expires_at, NOW + 60);
        assert_eq!(grant.valid_until, NOW + 60 + 30);
        assert!(grant.permissions.may_subscribe("/topic/a.b"));
        assert!(!grant.permissions.may_publish("/topic/a.b"));
        // Flat claim names work too; no claims at all → the configured defaults.
        let flat = hs256(
            &json!({"sub": "bob", "exp": NOW + 60, "wsb.pub": ["/queue/x"]}),
            "s3cret",
        );
        let grant = verify(&config, &flat).unwrap();
        assert!(grant.permissions.may_publish("/queue/x"));
        assert!(!grant.permissions.may_subscribe("/queue/x"));
        let plain = hs256(&json!({"sub": "carol", "exp": NOW + 60}), "s3cret");
        assert_eq!(
            verify(&config, &plain).unwrap().permissions,
            Permissions::all()
        );
    }

    #[test]
    fn time_claims_honour_the_leeway() {
        let config = hmac("k");
        let at = |exp: u64, nbf: Option<u64>| {
            let mut c = json!({"sub": "a", "exp": exp});
            if let Some(nbf) = nbf {
                c["nbf"] = json!(nbf);
            }
            verify(&config, &hs256(&c, "k"))
        };
        assert!(at(NOW - 10, None).is_ok(), "within the 30 s leeway");
        assert_eq!(at(NOW - 30, None).unwrap_err(), AuthError::Expired);
        assert!(at(NOW + 60, Some(NOW + 20)).is_ok());
        assert_eq!(
            at(NOW + 600, Some(NOW + 31)).unwrap_err(),
            AuthError::NotYetValid
        );
        let no_exp = hs256(&json!({"sub": "a"}), "k");
        assert_eq!(
            verify(&config, &no_exp).unwrap_err(),
            AuthError::Claim("exp".into())
        );
        let no_sub = hs256(&json!({"exp": NOW + 5}), "k");
        assert_eq!(
            verify(&config, &no_sub).unwrap_err(),
            AuthError::Claim("sub".into())
        );
    }

    #[test]
    fn issuer_audience_signature_size_and_alg_none() {
        let mut config = hmac("k");
        config.issuer = Some("https://issuer".into());
        config.audience = Some("wsb".into());
        let good =
            json!({"sub": "a", "exp": NOW + 60, "iss": "https://issuer", "aud": ["x", "wsb"]});
        assert!(verify(&config, &hs256(&good, "k")).is_ok());
        let mut wrong = good.clone();
        wrong["iss"] = json!("other");
        assert_eq!(
            verify(&config, &hs256(&wrong, "k")).unwrap_err(),
            AuthError::Issuer
        );
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("iss");
        assert_eq!(
            verify(&config, &hs256(&missing, "k")).unwrap_err(),
            AuthError::Issuer
        );
        let mut aud = good.clone();
        aud["aud"] = json!("other");
        assert_eq!(
            verify(&config, &hs256(&aud, "k")).unwrap_err(),
            AuthError::Audience
        );
        assert_eq!(
            verify(&config, &hs256(&good, "other-key")).unwrap_err(),
            AuthError::Signature
        );

        // alg none: a header the crate cannot even represent.
        use base64::Engine as _;
        let b64 = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let none = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT"})),
            b64(&good)
        );
        assert_eq!(
            verify(&config, &none).unwrap_err(),
            AuthError::Algorithm("none".into())
        );
        // HS512 with the right secret: not pinned, refused.
        let hs512 = encode(
            &Header::new(jsonwebtoken::Algorithm::HS512),
            &good,
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert_eq!(
            verify(&config, &hs512).unwrap_err(),
            AuthError::Algorithm("HS512".into())
        );

        config.max_token_size = 64;
        assert!(matches!(
            verify(&config, &hs256(&good, "k")),
            Err(AuthError::TooLarge(_))
        ));
        assert_eq!(verify(&hmac("k"), "a.b").unwrap_err(), AuthError::Malformed);
        assert_eq!(
            verify(&hmac("k"), "!!.??.xx").unwrap_err(),
            AuthError::Malformed
        );
    }

    #[test]
    fn an_rsa_public_key_used_as_an_hmac_secret_is_refused() {
        let public = include_bytes!("../../tests/fixtures/jwt/rsa_public.pem");
        let config = AuthConfig::new(AuthKey::PublicKeyPem(public.to_vec()));
        // The classic confusion: sign HS256 with the public key's PEM as the secret.
        let forged = encode(
            &Header::default(),
            &json!({"sub": "mallory", "exp": NOW + 60}),
            &EncodingKey::from_secret(public),
        )
        .unwrap();
        assert_eq!(
            verify(&config, &forged).unwrap_err(),
            AuthError::Algorithm("HS256".into())
        );
        let private = include_bytes!("../../tests/fixtures/jwt/rsa_private.pem");
        let genuine = encode(
            &Header::new(jsonwebtoken::Algorithm::RS256),
            &json!({"sub": "alice", "exp": NOW + 60}),
            &EncodingKey::from_rsa_pem(private).unwrap(),
        )
        .unwrap();
        assert_eq!(verify(&config, &genuine).unwrap().subject, "alice");
        // Configuring an HMAC algorithm for an RSA key is a configuration error.
        let mut bad = config.clone();
        bad.algorithms = vec![JwtAlgorithm::HS256];
        assert!(bad.validate().unwrap_err().contains("HS256"));
    }

    #[test]
    fn jwks_keys_are_chosen_by_kid_and_reloaded() {
        let config = AuthConfig::new(AuthKey::JwksFile("unused".into()));
        use base64::Engine as _;
        let k = |secret: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let set = |kid: &str, secret: &str| {
            json!({"keys": [{"kty": "oct", "kid": kid, "alg": "HS256", "k": k(secret)}]})
                .to_string()
        };
        let auth = Authenticator::new(&config, Some(set("one", "first").as_bytes())).unwrap();
        let token = |kid: &str, secret: &str| {
            let header = Header {
                kid: Some(kid.into()),
                ..Header::default()
            };
            encode(
                &header,
                &json!({"sub": "a", "exp": NOW + 60}),
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .unwrap()
        };
        let defaults = Permissions::all();
        assert!(auth.verify(&token("one", "first"), NOW, &defaults).is_ok());
        assert_eq!(
            auth.verify(&token("two", "second"), NOW, &defaults)
                .unwrap_err(),
            AuthError::UnknownKey("two".into())
        );
        assert_eq!(
            auth.load_jwks(&config, set("two", "second").as_bytes())
                .unwrap(),
            1
        );
        assert!(auth.verify(&token("two", "second"), NOW, &defaults).is_ok());
        assert!(
            auth.verify(&token("one", "first"), NOW, &defaults).is_err(),
            "rotated out"
        );
        assert!(auth.load_jwks(&config, b"not json").is_err());
        assert!(
            auth.verify(&token("two", "second"), NOW, &defaults).is_ok(),
            "kept on error"
        );
    }

    #[test]
    fn tokens_are_found_in_header_cookie_and_query() {
        let mut config = hmac("k");
        config.cookie = Some("jwt".into());
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(n, v)| ((*n).into(), (*v).into()))
                .collect()
        };
        let none = |_: &str| None;
        assert_eq!(
            upgrade_token(&config, &h(&[("authorization", "Bearer abc")]), none).as_deref(),
            Some("abc")
        );
        assert_eq!(
            upgrade_token(&config, &h(&[("cookie", "a=1; jwt=def")]), none).as_deref(),
            Some("def")
        );
        let query = |name: &str| (name == "access_token").then(|| "ghi".to_string());
        assert_eq!(upgrade_token(&config, &[], query).as_deref(), Some("ghi"));
        assert_eq!(
            upgrade_token(&config, &h(&[("authorization", "Basic x")]), none),
            None
        );
        assert!(looks_like_jwt("aGk.eyJ9.c2ln"));
        assert!(!looks_like_jwt("password"));
        assert!(!looks_like_jwt("a.b"));
    }
}
