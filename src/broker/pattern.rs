//! Destination patterns for subscriptions.
//!
//! The rule, matched against the whole destination string:
//! - `**` matches any run of characters, separators included (`/topic/**` matches `/topic/a/b.c`);
//! - `*` matches any run of characters that contains no separator (`/` or `.`), so it stands for
//!   one segment or part of one (`/topic/chat.*` matches `/topic/chat.room1`, not `/topic/chat.a.b`);
//! - every other character matches itself.
//!
//! A destination without `*` is an exact subscription and is looked up in a hash map; only
//! patterns are scanned on publish.

/// Separators that a single `*` does not cross.
fn is_separator(c: u8) -> bool {
    c == b'/' || c == b'.'
}

/// True when `destination` contains a wildcard and so must be matched as a pattern.
pub fn is_pattern(destination: &str) -> bool {
    destination.contains('*')
}

/// Matches `text` against `pattern` with the rule above. Iterative with backtracking points, so
/// hostile patterns cost O(len(pattern) × len(text)) at worst, never exponential time.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    // Backtracking state for the most recent `*` and `**`. A later star supersedes an earlier
    // one of the same kind; `**` state survives a failed `*` because it can absorb separators.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None; // (pattern index after '*', text index)
    let mut globstar: Option<(usize, usize)> = None; // (pattern index after '**', text index)
    loop {
        if pi < p.len() && p[pi] == b'*' {
            if pi + 1 < p.len() && p[pi + 1] == b'*' {
                let mut next = pi + 2;
                while next < p.len() && p[next] == b'*' {
                    next += 1;
                }
                globstar = Some((next, ti));
                star = None;
                pi = next;
            } else {
                star = Some((pi + 1, ti));
                pi += 1;
            }
            continue;
        }
        if ti < t.len() && pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
            continue;
        }
        if pi == p.len() && ti == t.len() {
            return true;
        }
        // Mismatch: let the innermost star absorb one more character if it may.
        if let Some((sp, st)) = star {
            if st < t.len() && !is_separator(t[st]) {
                star = Some((sp, st + 1));
                pi = sp;
                ti = st + 1;
                continue;
            }
            star = None;
        }
        if let Some((gp, gt)) = globstar
            && gt < t.len()
        {
            globstar = Some((gp, gt + 1));
            pi = gp;
            ti = gt + 1;
            continue;
        }
        return false;
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn exact() {
        assert!(matches("/topic/a", "/topic/a"));
        assert!(!matches("/topic/a", "/topic/ab"));
        assert!(!matches("/topic/ab", "/topic/a"));
    }

    #[test]
    fn single_star_stays_within_a_segment() {
        assert!(matches("/topic/*", "/topic/news"));
        assert!(matches("/topic/chat.*", "/topic/chat.room1"));
        assert!(!matches("/topic/chat.*", "/topic/chat.a.b"));
        assert!(!matches("/topic/*", "/topic/a/b"));
        assert!(matches("/topic/*/news", "/topic/eu/news"));
        assert!(!matches("/topic/*/news", "/topic/eu/x/news"));
        assert!(matches("/topic/price-*", "/topic/price-btc"));
        assert!(matches("/topic/*", "/topic/"));
    }

    #[test]
    fn double_star_crosses_segments() {
        assert!(matches("/topic/**", "/topic/a/b.c"));
        assert!(matches("/topic/**", "/topic/"));
        assert!(!matches("/topic/**", "/queue/a"));
        assert!(matches("/**/news", "/topic/eu/de/news"));
        assert!(matches("/topic/**/x.*", "/topic/a/b/x.y"));
        assert!(!matches("/topic/**/x.*", "/topic/a/b/x.y.z"));
        assert!(matches("**", "anything/at.all"));
    }

    /// Obviously-correct exponential reference matcher for the randomized comparison.
    fn reference(p: &[u8], t: &[u8]) -> bool {
        if p.is_empty() {
            return t.is_empty();
        }
        if p.starts_with(b"**") {
            let rest = &p[2..];
            return (0..=t.len()).any(|i| reference(rest, &t[i..]));
        }
        if p[0] == b'*' {
            let rest = &p[1..];
            let mut i = 0;
            loop {
                if reference(rest, &t[i..]) {
                    return true;
                }
                if i == t.len() || t[i] == b'/' || t[i] == b'.' {
                    return false;
                }
                i += 1;
            }
        }
        !t.is_empty() && p[0] == t[0] && reference(&p[1..], &t[1..])
    }

    #[test]
    fn agrees_with_reference_on_random_inputs() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = [b'a', b'b', b'/', b'.'];
        for _ in 0..20_000 {
            let plen = (next() % 7) as usize;
            let tlen = (next() % 8) as usize;
            let p: Vec<u8> = (0..plen)
                .map(|_| match next() % 6 {
                    0 | 1 => b'*',
                    n => alphabet[(n as usize) % 4],
                })
                .collect();
            let t: Vec<u8> = (0..tlen).map(|_| alphabet[(next() % 4) as usize]).collect();
            let (ps, ts) = (
                std::str::from_utf8(&p).unwrap(),
                std::str::from_utf8(&t).unwrap(),
            );
            assert_eq!(
                matches(ps, ts),
                reference(&p, &t),
                "pattern {ps:?} text {ts:?}"
            );
        }
    }

    #[test]
    fn hostile_patterns_finish_quickly() {
        let text = "a".repeat(2000);
        let pattern = format!("{}b", "*".to_string() + &"a*".repeat(500));
        assert!(!matches(&pattern, &text));
        let pattern = "**a**a**a**a**a**b";
        assert!(!matches(pattern, &text));
    }
}
