//! Destination naming: how SEND, SUBSCRIBE and host calls map to routing keys.
//!
//! User destinations follow Spring's convention. A session authenticated as `alice` that
//! subscribes to `/user/queue/x` is routed on `/user/alice/queue/x`; a SEND (or host
//! `send_to_user`) to `/user/alice/queue/x` reaches every such subscription of every session of
//! alice, and the MESSAGE shows `destination:/user/queue/x`.

use super::BrokerError;

/// Checks a destination or subscription pattern: not empty, and no NUL, CR or LF (which no
/// STOMP 1.0 peer could be sent, and which are never meaningful in a name).
pub fn check_name(destination: &str) -> Result<(), BrokerError> {
    if destination.is_empty() {
        return Err(BrokerError("destination must not be empty".into()));
    }
    if destination.contains(['\0', '\r', '\n']) {
        return Err(BrokerError(format!(
            "invalid destination {destination:?}: it must not contain NUL, CR or LF"
        )));
    }
    Ok(())
}

/// Checks a destination a client or the host sends to.
fn check_send(destination: &str) -> Result<(), BrokerError> {
    check_name(destination)?;
    if destination.contains('*') {
        return Err(BrokerError(format!(
            "wildcards are only allowed in subscriptions, not in the destination of a SEND: {destination}"
        )));
    }
    Ok(())
}

/// Checks a user name before it becomes part of routing keys.
pub fn check_user_name(user: &str) -> Result<(), BrokerError> {
    if user.is_empty() || user.contains(['/', '*']) || user.chars().any(char::is_control) {
        return Err(BrokerError(format!(
            "invalid user name {user:?}: it must be non-empty and contain no '/', '*' or control \
             characters"
        )));
    }
    Ok(())
}

/// Routing key and displayed destination of a SEND or host publish.
pub fn send_route(destination: &str, user_prefix: &str) -> Result<(String, String), BrokerError> {
    check_send(destination)?;
    let Some(rest) = destination.strip_prefix(user_prefix) else {
        return Ok((destination.to_string(), destination.to_string()));
    };
    match rest.split_once('/') {
        Some((user, tail)) if !user.is_empty() && !tail.is_empty() => {
            Ok((destination.to_string(), format!("{user_prefix}{tail}")))
        }
        _ => Err(BrokerError(format!(
            "a user destination needs a user name and a destination: {user_prefix}{{user}}/queue/..., got {destination}"
        ))),
    }
}

/// Routing key of a host `send_to_user(user, destination)`.
pub fn user_route(
    user: &str,
    destination: &str,
    user_prefix: &str,
) -> Result<(String, String), BrokerError> {
    check_user_name(user)?;
    check_send(destination)?;
    let tail = destination.trim_start_matches('/');
    if tail.is_empty() {
        return Err(BrokerError("destination must not be empty".into()));
    }
    Ok((
        format!("{user_prefix}{user}/{tail}"),
        format!("{user_prefix}{tail}"),
    ))
}

/// Routing key of a SUBSCRIBE by a session of `user`.
pub fn subscribe_route(
    destination: &str,
    user_prefix: &str,
    user: Option<&str>,
) -> Result<String, BrokerError> {
    check_name(destination)?;
    let Some(tail) = destination.strip_prefix(user_prefix) else {
        return Ok(destination.to_string());
    };
    let Some(user) = user else {
        return Err(BrokerError(format!(
            "{destination}: user destinations need an authenticated user (log in first)"
        )));
    };
    if tail.is_empty() {
        return Err(BrokerError("user destination is missing its name".into()));
    }
    Ok(format!("{user_prefix}{user}/{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_destinations_map_both_ways() {
        assert_eq!(
            subscribe_route("/user/queue/x", "/user/", Some("alice")).unwrap(),
            "/user/alice/queue/x"
        );
        assert_eq!(
            send_route("/user/alice/queue/x", "/user/").unwrap(),
            (
                "/user/alice/queue/x".to_string(),
                "/user/queue/x".to_string()
            )
        );
        assert_eq!(
            user_route("alice", "/queue/x", "/user/").unwrap(),
            (
                "/user/alice/queue/x".to_string(),
                "/user/queue/x".to_string()
            )
        );
        assert!(subscribe_route("/user/queue/x", "/user/", None).is_err());
        assert!(send_route("/user/alice", "/user/").is_err());
        assert!(user_route("a/b", "/queue/x", "/user/").is_err());
    }

    #[test]
    fn plain_destinations_pass_and_wildcard_sends_fail() {
        assert_eq!(
            send_route("/topic/a", "/user/").unwrap(),
            ("/topic/a".to_string(), "/topic/a".to_string())
        );
        assert!(send_route("/topic/*", "/user/").is_err());
        assert!(send_route("", "/user/").is_err());
        assert_eq!(
            subscribe_route("/topic/*", "/user/", None).unwrap(),
            "/topic/*"
        );
    }
}
