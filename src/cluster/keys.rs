//! How interests become engine subscriptions: Redis channels and glob patterns, NATS subjects
//! and wildcards.
//!
//! An engine pattern may match more than the wsbroker pattern it stands for (a NATS token
//! wildcard for `chat.*`, a Redis `*` that crosses `/`): the receiving node matches every
//! publication against its own patterns before it delivers, so a wider engine pattern only
//! costs traffic, never a wrong delivery. It never matches less.

use crate::broker::{Interest, pattern};

/// One engine subscription: a channel or subject (`pattern: false`), or a pattern of them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EngineKey {
    /// A pattern subscription (Redis PSUBSCRIBE, a NATS wildcard subject).
    pub pattern: bool,
    /// The channel, subject or pattern.
    pub name: String,
}

/// The engine subscription that serves `interest`, in the engine's naming.
pub type Naming = fn(prefix: &str, interest: &Interest) -> EngineKey;

/// Redis: the channel of a destination is `{prefix}:{route}`; a pattern becomes a glob in
/// which every run of `*` is `*` and the glob's own special characters are escaped.
pub fn redis(prefix: &str, interest: &Interest) -> EngineKey {
    match interest {
        Interest::Exact(route) => EngineKey {
            pattern: false,
            name: redis_channel(prefix, route),
        },
        Interest::Pattern(text) => {
            let mut name = format!("{prefix}:");
            let mut star = false;
            for c in text.chars() {
                if c == '*' {
                    if !star {
                        name.push('*');
                    }
                    star = true;
                    continue;
                }
                star = false;
                if matches!(c, '?' | '[' | ']' | '\\' | '^') {
                    name.push('\\');
                }
                name.push(c);
            }
            EngineKey {
                pattern: true,
                name,
            }
        }
    }
}

/// The Redis channel publications to `route` go to.
pub fn redis_channel(prefix: &str, route: &str) -> String {
    format!("{prefix}:{route}")
}

/// NATS: the subject of a destination is the prefix, then one token per `/`-separated part of
/// the route, escaped so that any route makes a valid, distinct subject; in a pattern, a part
/// with `**` becomes `>` (and ends it), a part with `*` becomes `*`.
pub fn nats(prefix: &str, interest: &Interest) -> EngineKey {
    match interest {
        Interest::Exact(route) => EngineKey {
            pattern: false,
            name: nats_subject(prefix, route),
        },
        Interest::Pattern(text) => {
            let mut name = prefix.to_string();
            for part in text.split('/') {
                name.push('.');
                if part.contains("**") {
                    name.push('>');
                    break;
                }
                if pattern::is_pattern(part) {
                    name.push('*');
                } else {
                    push_token(&mut name, part);
                }
            }
            EngineKey {
                pattern: true,
                name,
            }
        }
    }
}

/// The NATS subject publications to `route` go to.
pub fn nats_subject(prefix: &str, route: &str) -> String {
    let mut name = String::with_capacity(prefix.len() + route.len() + 8);
    name.push_str(prefix);
    for part in route.split('/') {
        name.push('.');
        push_token(&mut name, part);
    }
    name
}

/// A route part as a subject token: letters, digits and `-` stay, every other byte is `_XX`
/// (hex), an empty part is `_`.
fn push_token(out: &mut String, part: &str) {
    if part.is_empty() {
        out.push('_');
        return;
    }
    for b in part.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            out.push('_');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(route: &str) -> Interest {
        Interest::Exact(route.into())
    }
    fn pattern(text: &str) -> Interest {
        Interest::Pattern(text.into())
    }

    #[test]
    fn redis_channels_and_globs() {
        assert_eq!(redis("wsb", &exact("/topic/a.b")).name, "wsb:/topic/a.b");
        let key = redis("wsb", &pattern("/topic/**"));
        assert!(key.pattern);
        assert_eq!(key.name, "wsb:/topic/*");
        assert_eq!(
            redis("wsb", &pattern("/t/[x]?/*.*")).name,
            r"wsb:/t/\[x\]\?/*.*"
        );
    }

    #[test]
    fn nats_subjects_are_valid_and_distinct() {
        assert_eq!(nats("wsb", &exact("/topic/a.b")).name, "wsb._.topic.a_2Eb");
        assert_eq!(nats("wsb", &exact("/topic/a/b")).name, "wsb._.topic.a.b");
        assert_eq!(nats("wsb", &exact("/x//y z")).name, "wsb._.x._.y_20z");
        assert_eq!(nats("wsb", &exact("/t/*")).name, "wsb._.t._2A");
        assert_eq!(nats("wsb", &exact("/t/>")).name, "wsb._.t._3E");
        for route in ["/topic/a.b", "/x//y z", "/user/al_ice/queue/é"] {
            let subject = nats_subject("wsb", route);
            assert!(
                subject.split('.').all(|t| !t.is_empty()
                    && t.bytes().all(|b| b.is_ascii_graphic())
                    && t != "*"
                    && t != ">"),
                "{subject}"
            );
        }
    }

    #[test]
    fn nats_wildcards_match_at_least_what_the_pattern_matches() {
        assert_eq!(nats("wsb", &pattern("/topic/**")).name, "wsb._.topic.>");
        assert_eq!(
            nats("wsb", &pattern("/topic/chat.*/x")).name,
            "wsb._.topic.*.x"
        );
        assert_eq!(nats("wsb", &pattern("/a/b**/c")).name, "wsb._.a.>");
        // A matched route's subject matches the wildcard, token by token.
        let cases = [
            ("/topic/**", "/topic/a/b.c"),
            ("/topic/chat.*/x", "/topic/chat.room1/x"),
            ("/topic/*", "/topic/"),
            ("/a/b**/c", "/a/bzz/q/c"),
        ];
        for (p, route) in cases {
            assert!(crate::broker::pattern::matches(p, route));
            let wildcard = nats("wsb", &pattern(p)).name;
            let subject = nats_subject("wsb", route);
            assert!(
                subject_matches(&wildcard, &subject),
                "{wildcard} vs {subject}"
            );
        }
    }

    /// NATS's own matching rule, for the test.
    fn subject_matches(wildcard: &str, subject: &str) -> bool {
        let (w, s): (Vec<&str>, Vec<&str>) =
            (wildcard.split('.').collect(), subject.split('.').collect());
        for (i, token) in w.iter().enumerate() {
            match *token {
                ">" => return s.len() > i,
                "*" if i < s.len() => {}
                t if i < s.len() && s[i] == t => {}
                _ => return false,
            }
        }
        w.len() == s.len()
    }
}
