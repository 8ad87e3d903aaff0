//! Per-destination message history: every message published to a destination that a
//! [`HistoryRule`] covers gets the next offset of that destination's stream (1, 2, 3 … with no
//! gaps) and the stream's epoch, and is retained (bounded in count and age) so that a client
//! that resubscribes with the last offset it saw gets everything it missed.
//!
//! The epoch names one unbroken sequence of offsets: it changes only when the stream lost data
//! (it was evicted, or its store was reset), so `(epoch, offset)` always identifies one
//! message. A resume is *recovered* when the client's epoch matches and nothing after its
//! offset fell out of retention; otherwise it gets what is retained and is told it is not.
//!
//! Sans-IO and called under the broker's lock, so that recording a publish and registering a
//! resuming subscription are ordered: a replay never misses or repeats a message at the seam.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::journal::RestoredStream;
use super::message::Message;
use super::pattern;

/// Header carrying a message's offset in its destination's stream.
pub const OFFSET_HEADER: &str = "x-offset";
/// Header carrying the stream's epoch.
pub const EPOCH_HEADER: &str = "x-epoch";
/// Header reporting whether a resume got every message it missed.
pub const RECOVERED_HEADER: &str = "x-recovered";

/// Which destinations keep a history, and how much.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryRule {
    /// Destination or pattern (`/topic/chat/**`); the first matching rule applies.
    pub pattern: String,
    /// Most messages retained per destination (at least 1).
    pub size: usize,
    /// Messages older than this are no longer retained; `None` keeps them until `size` pushes
    /// them out.
    pub ttl: Option<Duration>,
    /// A "last value" destination: every SUBSCRIBE first gets the newest retained message (a
    /// snapshot), not only those that ask with `x-last`.
    pub last_value: bool,
}

impl HistoryRule {
    /// A rule keeping the last `size` messages of the destinations matching `pattern`.
    pub fn new(pattern: impl Into<String>, size: usize) -> HistoryRule {
        HistoryRule {
            pattern: pattern.into(),
            size,
            ttl: None,
            last_value: false,
        }
    }

    /// Parses `PATTERN=SIZE[,TTL][,last]`: e.g. `/topic/chat/**=1000,10m` or
    /// `/topic/prices/*=1,last`. TTL units: `ms`, `s`, `m`, `h`, `d`.
    pub fn parse(text: &str) -> Result<HistoryRule, String> {
        let (pattern, rest) = text
            .rsplit_once('=')
            .ok_or_else(|| format!("history rule {text:?}: expected PATTERN=SIZE[,TTL][,last]"))?;
        let mut parts = rest.split(',').map(str::trim);
        let size = parts
            .next()
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or_else(|| format!("history rule {text:?}: SIZE must be a whole number"))?;
        let mut rule = HistoryRule::new(pattern.trim(), size);
        for part in parts {
            if part == "last" {
                rule.last_value = true;
            } else {
                rule.ttl = Some(parse_duration(part).ok_or_else(|| {
                    format!("history rule {text:?}: {part:?} is neither a TTL (10m, 30s, 500ms) nor 'last'")
                })?);
            }
        }
        rule.validate()?;
        Ok(rule)
    }

    /// Checks the rule on its own (the broker also checks it against the outbound limits).
    pub fn validate(&self) -> Result<(), String> {
        if !self.pattern.starts_with('/') {
            return Err(format!(
                "history pattern {:?} must start with '/'",
                self.pattern
            ));
        }
        if self.size == 0 {
            return Err(format!(
                "history size for {} must be at least 1",
                self.pattern
            ));
        }
        if self.ttl.is_some_and(|ttl| ttl.is_zero()) {
            return Err(format!("history TTL for {} must be above 0", self.pattern));
        }
        Ok(())
    }

    /// Whether this rule applies to `route`.
    pub(super) fn covers(&self, route: &str) -> bool {
        self.pattern == route || pattern::matches(&self.pattern, route)
    }
}

/// A TTL such as `500ms`, `30s`, `10m`, `2h`, `7d`.
fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(seconds)?))
}

/// What a resuming SUBSCRIBE asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResumeRequest {
    /// `x-since`: the last offset the client saw (0: from the start of what is retained).
    pub since: Option<u64>,
    /// `x-epoch`: the epoch that offset belongs to.
    pub epoch: Option<String>,
    /// `x-last`: the newest N retained messages first.
    pub last: Option<usize>,
}

impl ResumeRequest {
    /// True when the SUBSCRIBE asked for nothing from the history.
    pub fn is_empty(&self) -> bool {
        self.since.is_none() && self.last.is_none()
    }
}

/// A stream's position: its epoch and the last offset it assigned (0 before the first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamPosition {
    /// The epoch.
    pub epoch: Arc<str>,
    /// The last offset assigned.
    pub offset: u64,
}

/// What a subscribe on a history destination gets first.
#[derive(Debug, Default)]
pub struct Replay {
    /// Retained messages to deliver before live ones, oldest first.
    pub messages: Vec<Arc<Message>>,
    /// For a resume (`x-since`): whether it is complete.
    pub recovered: Option<bool>,
    /// The stream's position when the subscription started.
    pub position: Option<StreamPosition>,
}

impl Replay {
    fn unkept(request: &ResumeRequest) -> Replay {
        Replay {
            recovered: request.since.map(|_| false),
            ..Replay::default()
        }
    }
}

/// Retained messages read by the host.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// The stream's position (epoch and last offset).
    pub position: StreamPosition,
    /// Messages after the asked offset, oldest first, with their offsets.
    pub messages: Vec<(u64, Arc<Message>)>,
    /// False when messages after the asked offset are no longer retained.
    pub complete: bool,
}

struct Entry {
    offset: u64,
    at: Instant,
    message: Arc<Message>,
}

struct Stream {
    epoch: Arc<str>,
    /// Last offset assigned.
    last: u64,
    /// Last offset clients may see: `last` in memory; with a durable store, the last one
    /// committed (entries after it wait for their commit).
    released: u64,
    entries: VecDeque<Entry>,
    rule: usize,
    /// Last publish or read, for evicting the least used stream past `max_streams`.
    touched: Instant,
}

impl Stream {
    fn expire(&mut self, ttl: Option<Duration>, now: Instant) {
        if let Some(ttl) = ttl {
            while self
                .entries
                .front()
                .is_some_and(|e| now.saturating_duration_since(e.at) > ttl)
            {
                self.entries.pop_front();
            }
        }
    }

    /// The position clients may know: the last released offset.
    fn position(&self) -> StreamPosition {
        StreamPosition {
            epoch: self.epoch.clone(),
            offset: self.released,
        }
    }

    /// The released entries (those clients may see), oldest first.
    fn visible(&self) -> std::collections::vec_deque::Iter<'_, Entry> {
        let end = self.entries.partition_point(|e| e.offset <= self.released);
        self.entries.range(..end)
    }

    /// Released messages after `since`, and whether that is all of them.
    fn after(&self, since: u64) -> (impl Iterator<Item = &Entry>, bool) {
        let first = self.entries.front().map_or(self.last + 1, |e| e.offset);
        let complete = since + 1 >= first;
        let skip = self.entries.partition_point(|e| e.offset <= since);
        let end = self.entries.partition_point(|e| e.offset <= self.released);
        (self.entries.range(skip..end.max(skip)), complete)
    }
}

/// Where [`Streams::record`] put a message.
#[derive(Debug)]
pub struct Recorded {
    /// The message with its position headers.
    pub message: Arc<Message>,
    /// The stream's epoch.
    pub epoch: Arc<str>,
    /// Its offset.
    pub offset: u64,
    /// First offset still retained after it was added.
    pub keep_from: u64,
}

/// The history of every destination a rule covers.
pub struct Streams {
    rules: Vec<HistoryRule>,
    max_streams: usize,
    streams: HashMap<String, Stream>,
    /// With a durable store: streams forgotten since the broker last asked (it journals them).
    evicted: Option<Vec<String>>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("rules", &self.rules)
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

/// A fresh epoch: unpredictable enough that a restarted in-memory broker never reuses one.
fn new_epoch() -> Arc<str> {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", hasher.finish()).into()
}

impl Streams {
    /// Streams for `rules`, at most `max_streams` of them (the least recently used goes first;
    /// its next message starts a new epoch).
    pub fn new(rules: Vec<HistoryRule>, max_streams: usize) -> Streams {
        Streams {
            rules,
            max_streams: max_streams.max(1),
            streams: HashMap::new(),
            evicted: None,
        }
    }

    /// A durable store keeps the streams: evictions are reported by [`Streams::take_evicted`].
    pub fn set_journaled(&mut self) {
        self.evicted.get_or_insert_with(Vec::new);
    }

    /// Streams forgotten since the last call (only with [`Streams::set_journaled`]).
    pub fn take_evicted(&mut self) -> Vec<String> {
        self.evicted
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Puts back a stream read from a durable store, all of it released: entries past the
    /// rule's size or TTL (the rules may have changed) are left out. False when no rule
    /// covers it any more.
    pub fn restore(&mut self, stored: RestoredStream, now: Instant, now_ms: u64) -> bool {
        let Some(rule) = self.rules.iter().position(|r| r.covers(&stored.route)) else {
            return false;
        };
        let (size, ttl) = (self.rules[rule].size, self.rules[rule].ttl);
        let mut entries: VecDeque<Entry> = stored
            .entries
            .into_iter()
            .filter_map(|(offset, at_ms, message)| {
                let age = Duration::from_millis(now_ms.saturating_sub(at_ms));
                if ttl.is_some_and(|ttl| age > ttl) {
                    return None;
                }
                let at = now.checked_sub(age).unwrap_or(now);
                Some(Entry {
                    offset,
                    at,
                    message,
                })
            })
            .collect();
        while entries.len() > size {
            entries.pop_front();
        }
        self.streams.insert(
            stored.route,
            Stream {
                epoch: stored.epoch.into(),
                last: stored.last,
                released: stored.last,
                entries,
                rule,
                touched: now,
            },
        );
        true
    }

    /// Lets clients see the entries of `route` up to `offset` (its commit arrived), unless
    /// the stream was replaced meanwhile (another epoch).
    pub fn release(&mut self, route: &str, epoch: &str, offset: u64) {
        if let Some(stream) = self.streams.get_mut(route)
            && *stream.epoch == *epoch
        {
            stream.released = stream.released.max(offset);
        }
    }

    /// True when no destination keeps history.
    pub fn is_off(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule for `route`, if one covers it.
    pub fn rule_for(&self, route: &str) -> Option<&HistoryRule> {
        self.rules.iter().find(|r| r.covers(route))
    }

    /// Destinations with a stream, and how many messages each retains.
    pub fn sizes(&self) -> Vec<(String, usize)> {
        self.streams
            .iter()
            .map(|(route, s)| (route.clone(), s.entries.len()))
            .collect()
    }

    /// The stream of `route` (made when a rule covers it) with its rule, expired to `now`.
    fn stream_and_rule(
        &mut self,
        route: &str,
        now: Instant,
    ) -> Option<(&mut Stream, &HistoryRule)> {
        if !self.streams.contains_key(route) {
            let rule = self.rules.iter().position(|r| r.covers(route))?;
            if self.streams.len() >= self.max_streams {
                self.evict_least_used();
            }
            self.streams.insert(
                route.to_string(),
                Stream {
                    epoch: new_epoch(),
                    last: 0,
                    released: 0,
                    entries: VecDeque::new(),
                    rule,
                    touched: now,
                },
            );
        }
        let stream = self.streams.get_mut(route)?;
        let rule = &self.rules[stream.rule];
        stream.touched = now;
        stream.expire(rule.ttl, now);
        Some((stream, rule))
    }

    fn stream(&mut self, route: &str, now: Instant) -> Option<&mut Stream> {
        self.stream_and_rule(route, now).map(|(stream, _)| stream)
    }

    /// Forgets every stream (their next messages start new epochs); returns their routes.
    pub fn forget_all(&mut self) -> Vec<String> {
        let routes: Vec<String> = self.streams.drain().map(|(route, _)| route).collect();
        if let Some(evicted) = &mut self.evicted {
            evicted.extend(routes.iter().cloned());
        }
        routes
    }

    fn evict_least_used(&mut self) {
        if let Some(route) = self
            .streams
            .iter()
            .min_by_key(|(_, s)| s.touched)
            .map(|(route, _)| route.clone())
        {
            tracing::warn!(
                destination = route,
                "history: too many destinations, the least used one is forgotten"
            );
            self.streams.remove(&route);
            if let Some(evicted) = &mut self.evicted {
                evicted.push(route);
            }
        }
    }

    /// Records a publish to `route`: when a rule covers it, the message gets the stream's next
    /// offset and its epoch (as `x-offset` / `x-epoch` headers, replacing any the sender set)
    /// and is retained; the message to deliver is returned. `None` when no rule covers `route`.
    /// A `durable` record stays invisible to replays until [`Streams::release`]d.
    pub fn record(
        &mut self,
        route: &str,
        message: &Message,
        now: Instant,
        durable: bool,
    ) -> Option<Recorded> {
        if self.is_off() {
            return None;
        }
        // One lookup: the rule comes with the stream (no rule scan for a known destination).
        let (stream, rule) = self.stream_and_rule(route, now)?;
        let size = rule.size;
        stream.last += 1;
        let offset = stream.last;
        if !durable {
            stream.released = offset;
        }
        let positioned = Arc::new(message.with_position(offset, &stream.epoch));
        stream.entries.push_back(Entry {
            offset,
            at: now,
            message: positioned.clone(),
        });
        while stream.entries.len() > size {
            stream.entries.pop_front();
        }
        Some(Recorded {
            message: positioned,
            epoch: stream.epoch.clone(),
            offset,
            keep_from: stream.entries.front().map_or(offset, |e| e.offset),
        })
    }

    /// What a new subscription to `route` gets first (nothing when no rule covers it). A
    /// resume (`x-since`) gets every retained message after its offset (all retained ones when
    /// its epoch is not the stream's) and whether that is complete; `x-last` the newest N; a
    /// last-value destination the newest one. At most `max_messages` are returned (the newest);
    /// dropping any makes the resume incomplete.
    pub fn replay(
        &mut self,
        route: &str,
        request: &ResumeRequest,
        max_messages: usize,
        now: Instant,
    ) -> Replay {
        if self.is_off() {
            return Replay::unkept(request);
        }
        let last_value = match self.rule_for(route) {
            Some(rule) => rule.last_value,
            // A resume where nothing is kept: whatever was missed is lost.
            None => return Replay::unkept(request),
        };
        let Some(stream) = self.stream(route, now) else {
            return Replay::default();
        };
        let position = Some(stream.position());
        let (mut messages, mut recovered): (Vec<Arc<Message>>, Option<bool>) =
            if let Some(since) = request.since {
                let same_epoch = request.epoch.as_deref().is_none_or(|e| *e == *stream.epoch);
                let since = if same_epoch { since } else { 0 };
                let (entries, complete) = stream.after(since);
                let messages = entries.map(|e| e.message.clone()).collect();
                // An offset from the future (another epoch the client did not name) is no resume.
                let plausible = since <= stream.released;
                (messages, Some(same_epoch && complete && plausible))
            } else if let Some(n) = request.last {
                let skip = stream.visible().len().saturating_sub(n);
                (
                    stream
                        .visible()
                        .skip(skip)
                        .map(|e| e.message.clone())
                        .collect(),
                    None,
                )
            } else if last_value {
                (
                    stream
                        .visible()
                        .next_back()
                        .map(|e| e.message.clone())
                        .into_iter()
                        .collect(),
                    None,
                )
            } else {
                (Vec::new(), None)
            };
        if messages.len() > max_messages {
            messages.drain(..messages.len() - max_messages);
            if recovered.is_some() {
                recovered = Some(false);
            }
        }
        Replay {
            messages,
            recovered,
            position,
        }
    }

    /// The retained messages of `route` after `since`, at most `limit` (the oldest first);
    /// `None` when no rule covers `route`.
    pub fn read(
        &mut self,
        route: &str,
        since: u64,
        limit: usize,
        now: Instant,
    ) -> Option<HistoryPage> {
        let stream = self.stream(route, now)?;
        let (entries, complete) = stream.after(since);
        let messages = entries
            .take(limit)
            .map(|e| (e.offset, e.message.clone()))
            .collect();
        Some(HistoryPage {
            position: stream.position(),
            messages,
            complete,
        })
    }

    /// The position of `route`'s stream; `None` when no rule covers it.
    #[cfg(test)]
    pub fn position(&mut self, route: &str, now: Instant) -> Option<StreamPosition> {
        self.stream(route, now).map(|s| s.position())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn message(body: &'static str) -> Message {
        Message::new(
            0,
            "/topic/chat",
            vec![("x-offset".into(), "999".into())],
            Bytes::from_static(body.as_bytes()),
            None,
        )
    }

    fn offsets(messages: &[Arc<Message>]) -> Vec<u64> {
        messages
            .iter()
            .map(|m| m.header(OFFSET_HEADER).unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn rules_parse_with_ttl_and_last_value() {
        let rule = HistoryRule::parse("/topic/chat/**=1000,10m").unwrap();
        assert_eq!(rule.pattern, "/topic/chat/**");
        assert_eq!(rule.size, 1000);
        assert_eq!(rule.ttl, Some(Duration::from_secs(600)));
        assert!(!rule.last_value);
        let rule = HistoryRule::parse("/topic/prices/*=1,last").unwrap();
        assert!(rule.last_value && rule.ttl.is_none());
        assert_eq!(
            HistoryRule::parse("/a=5,500ms").unwrap().ttl,
            Some(Duration::from_millis(500))
        );
        for bad in ["/a", "/a=x", "/a=0", "/a=5,10y", "a=5", "/a=5,0s"] {
            assert!(HistoryRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn offsets_have_no_gaps_and_forged_positions_are_replaced() {
        let mut streams = Streams::new(vec![HistoryRule::new("/topic/**", 3)], 10);
        let now = Instant::now();
        let recorded: Vec<Arc<Message>> = (0..5)
            .map(|_| {
                streams
                    .record("/topic/chat", &message("m"), now, false)
                    .unwrap()
                    .message
            })
            .collect();
        assert_eq!(offsets(&recorded), [1, 2, 3, 4, 5]);
        let epoch = recorded[0].header(EPOCH_HEADER).unwrap().to_string();
        assert!(
            recorded
                .iter()
                .all(|m| m.header(EPOCH_HEADER) == Some(&*epoch))
        );
        assert_eq!(
            recorded[0]
                .headers()
                .iter()
                .filter(|(n, _)| n == OFFSET_HEADER)
                .count(),
            1
        );
        assert!(
            streams
                .record("/queue/x", &message("m"), now, false)
                .is_none()
        );
        let resume = ResumeRequest {
            since: Some(3),
            ..ResumeRequest::default()
        };
        assert_eq!(
            streams.replay("/other", &resume, 10, now).recovered,
            Some(false),
            "nothing kept: not recovered"
        );
        // Retention: the last 3.
        let page = streams.read("/topic/chat", 0, 10, now).unwrap();
        assert_eq!(
            page.messages.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        assert!(!page.complete, "1 and 2 are gone");
        assert!(streams.read("/topic/chat", 2, 10, now).unwrap().complete);
    }

    #[test]
    fn resume_reports_whether_it_recovered() {
        let mut streams = Streams::new(vec![HistoryRule::new("/topic/chat", 3)], 10);
        let now = Instant::now();
        for _ in 0..5 {
            streams.record("/topic/chat", &message("m"), now, false);
        }
        let epoch = streams
            .position("/topic/chat", now)
            .unwrap()
            .epoch
            .to_string();
        let resume = |since, epoch: Option<&str>| ResumeRequest {
            since: Some(since),
            epoch: epoch.map(str::to_string),
            last: None,
        };
        let mut at = |since, epoch| streams.replay("/topic/chat", &resume(since, epoch), 100, now);
        let r = at(3, Some(&epoch));
        assert_eq!(
            (offsets(&r.messages), r.recovered),
            (vec![4, 5], Some(true))
        );
        let r = at(5, Some(&epoch));
        assert_eq!((offsets(&r.messages), r.recovered), (vec![], Some(true)));
        let r = at(1, Some(&epoch));
        assert_eq!(
            (offsets(&r.messages), r.recovered),
            (vec![3, 4, 5], Some(false))
        );
        let r = at(4, Some("another"));
        assert_eq!(
            (offsets(&r.messages), r.recovered),
            (vec![3, 4, 5], Some(false))
        );
        let r = at(9, Some(&epoch));
        assert_eq!(r.recovered, Some(false), "an offset from the future");
        let r = streams.replay("/topic/chat", &resume(0, None), 2, now);
        assert_eq!(
            (offsets(&r.messages), r.recovered),
            (vec![4, 5], Some(false)),
            "capped"
        );
    }

    #[test]
    fn last_n_last_value_and_ttl() {
        let rules = vec![
            HistoryRule {
                ttl: Some(Duration::from_secs(10)),
                ..HistoryRule::new("/topic/chat", 100)
            },
            HistoryRule {
                last_value: true,
                ..HistoryRule::new("/topic/price", 1)
            },
        ];
        let mut streams = Streams::new(rules, 10);
        let t0 = Instant::now();
        for _ in 0..4 {
            streams.record("/topic/chat", &message("m"), t0, false);
            streams.record("/topic/price", &message("p"), t0, false);
        }
        let last2 = ResumeRequest {
            last: Some(2),
            ..ResumeRequest::default()
        };
        let r = streams.replay("/topic/chat", &last2, 100, t0);
        assert_eq!((offsets(&r.messages), r.recovered), (vec![3, 4], None));
        let plain = ResumeRequest::default();
        assert!(
            streams
                .replay("/topic/chat", &plain, 100, t0)
                .messages
                .is_empty()
        );
        assert_eq!(
            offsets(&streams.replay("/topic/price", &plain, 100, t0).messages),
            [4]
        );
        // After the TTL nothing is retained, but offsets go on.
        let later = t0 + Duration::from_secs(11);
        assert!(
            streams
                .replay("/topic/chat", &last2, 100, later)
                .messages
                .is_empty()
        );
        let next = streams
            .record("/topic/chat", &message("m"), later, false)
            .unwrap()
            .message;
        assert_eq!(offsets(&[next]), [5]);
    }

    #[test]
    fn evicting_a_stream_starts_a_new_epoch() {
        let mut streams = Streams::new(vec![HistoryRule::new("/topic/*", 10)], 2);
        let t = Instant::now();
        streams.record("/topic/a", &message("m"), t, false);
        let first = streams.position("/topic/a", t).unwrap();
        streams.record(
            "/topic/b",
            &message("m"),
            t + Duration::from_millis(1),
            false,
        );
        streams.record(
            "/topic/c",
            &message("m"),
            t + Duration::from_millis(2),
            false,
        );
        let again = streams
            .position("/topic/a", t + Duration::from_millis(3))
            .unwrap();
        assert_ne!(first.epoch, again.epoch);
        assert_eq!(again.offset, 0);
    }

    #[test]
    fn durable_records_stay_unseen_until_released() {
        let mut streams = Streams::new(vec![HistoryRule::new("/topic/*", 10)], 10);
        streams.set_journaled();
        let t = Instant::now();
        let first = streams.record("/topic/a", &message("m"), t, true).unwrap();
        streams.record("/topic/a", &message("m"), t, true).unwrap();
        let from_start = ResumeRequest {
            since: Some(0),
            epoch: Some(first.epoch.to_string()),
            last: None,
        };
        let replay = streams.replay("/topic/a", &from_start, 10, t);
        assert!(replay.messages.is_empty());
        assert_eq!(replay.position.unwrap().offset, 0);
        streams.release("/topic/a", &first.epoch, 1);
        let replay = streams.replay("/topic/a", &from_start, 10, t);
        assert_eq!(offsets(&replay.messages), [1]);
        assert_eq!(replay.recovered, Some(true));
        let beyond = ResumeRequest {
            since: Some(2),
            ..from_start.clone()
        };
        assert_eq!(
            streams.replay("/topic/a", &beyond, 10, t).recovered,
            Some(false),
            "nobody can have seen an unreleased offset"
        );
        streams.release("/topic/a", "another epoch", 2);
        assert_eq!(streams.position("/topic/a", t).unwrap().offset, 1);
    }

    #[test]
    fn restored_streams_keep_epoch_and_offsets_within_the_rule() {
        let mut streams = Streams::new(vec![HistoryRule::parse("/topic/*=2,10s").unwrap()], 10);
        let t = Instant::now();
        let m = |o: u64| Arc::new(message("m").with_position(o, "e1"));
        let stored = RestoredStream {
            route: "/topic/a".into(),
            epoch: "e1".into(),
            last: 7,
            entries: vec![
                (4, 0, m(4)),
                (5, 95_000, m(5)),
                (6, 99_000, m(6)),
                (7, 99_500, m(7)),
            ],
        };
        assert!(streams.restore(stored, t, 100_000));
        let all = ResumeRequest {
            since: Some(4),
            epoch: Some("e1".into()),
            last: None,
        };
        let replay = streams.replay("/topic/a", &all, 10, t);
        assert_eq!(
            offsets(&replay.messages),
            [6, 7],
            "size 2: offset 5 left out"
        );
        assert_eq!(replay.recovered, Some(false));
        let next = streams.record("/topic/a", &message("m"), t, false).unwrap();
        assert_eq!((next.offset, &*next.epoch), (8, "e1"));
        let uncovered = RestoredStream {
            route: "/queue/x".into(),
            epoch: "e".into(),
            last: 1,
            entries: Vec::new(),
        };
        assert!(!streams.restore(uncovered, t, 0));
    }
}
