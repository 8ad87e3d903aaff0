//! Which destinations a session may subscribe to and publish to: lists of destination
//! patterns, written with the broker's pattern rule (`*` one segment, `**` anything).

use crate::broker::pattern;

/// Destination patterns a session may use. An empty list allows nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Patterns a SUBSCRIBE destination must match.
    pub subscribe: Vec<String>,
    /// Patterns a SEND destination must match.
    pub publish: Vec<String>,
}

impl Permissions {
    /// Everything allowed (`**` for both).
    pub fn all() -> Permissions {
        Permissions {
            subscribe: vec!["**".into()],
            publish: vec!["**".into()],
        }
    }

    /// Whether a SUBSCRIBE to `destination` is allowed.
    pub fn may_subscribe(&self, destination: &str) -> bool {
        allowed(&self.subscribe, destination)
    }

    /// Whether a SEND to `destination` is allowed.
    pub fn may_publish(&self, destination: &str) -> bool {
        allowed(&self.publish, destination)
    }
}

/// A plain destination is allowed when a pattern matches it. A wildcard destination (a
/// pattern subscription) is allowed only when a permission is that same pattern, or is
/// `PREFIX**` and the destination starts with `PREFIX`: a pattern that could match more than
/// a permission allows is never let through (`/topic/*` does not allow `/topic/**`).
pub fn allowed(patterns: &[String], destination: &str) -> bool {
    if !pattern::is_pattern(destination) {
        return patterns.iter().any(|p| pattern::matches(p, destination));
    }
    patterns.iter().any(|p| {
        p == destination
            || p.strip_suffix("**")
                .is_some_and(|prefix| !prefix.contains('*') && destination.starts_with(prefix))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn plain_destinations_match_patterns() {
        let p = list(&["/topic/chat.*", "/queue/jobs", "/user/**"]);
        assert!(allowed(&p, "/topic/chat.room1"));
        assert!(!allowed(&p, "/topic/chat.a.b"));
        assert!(allowed(&p, "/queue/jobs"));
        assert!(!allowed(&p, "/queue/jobs2"));
        assert!(allowed(&p, "/user/queue/replies"));
        assert!(!allowed(&[], "/queue/jobs"), "an empty list allows nothing");
    }

    #[test]
    fn wildcard_subscriptions_need_a_covering_permission() {
        let p = list(&["/topic/*", "/prices/**"]);
        assert!(
            !allowed(&p, "/topic/**"),
            "a single star does not cover a double one"
        );
        assert!(allowed(&p, "/topic/*"), "the same pattern");
        assert!(allowed(&p, "/prices/**"));
        assert!(allowed(&p, "/prices/eu.*"));
        assert!(!allowed(&p, "/pr*"));
        assert!(allowed(&list(&["**"]), "/any/**"));
    }
}
