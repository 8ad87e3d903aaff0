//! The endpoint a client connects to, parsed from its URL (pure).

/// A parsed client URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// WebSocket (`ws`, `wss`) or STOMP over TCP (`stomp`, `tcp`, `stomp+ssl`, `stomps`).
    pub websocket: bool,
    /// TLS (`wss`, `stomp+ssl`, `stomps`).
    pub tls: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port (default 80 / 443 for WebSocket; required for STOMP).
    pub port: u16,
    /// WebSocket request target: path and query (default `/`).
    pub target: String,
}

impl Endpoint {
    /// Parses `scheme://host[:port][/path][?query]`.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or("expected scheme://host[:port][/path]")?;
        let (websocket, tls) = match scheme.to_ascii_lowercase().as_str() {
            "ws" => (true, false),
            "wss" => (true, true),
            "stomp" | "tcp" => (false, false),
            "stomp+ssl" | "stomps" | "ssl" => (false, true),
            other => {
                return Err(format!(
                    "unknown scheme {other:?} (ws, wss, stomp, tcp, stomp+ssl, stomps)"
                ));
            }
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        if authority.contains('@') {
            return Err("user info in the URL is not supported: set login and passcode".into());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or("unclosed '[' in the host")?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err("no host".into());
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("bad port {p:?}"))?,
            None if websocket => {
                if tls {
                    443
                } else {
                    80
                }
            }
            None => return Err("STOMP over TCP needs a port".into()),
        };
        if !websocket && !target.is_empty() && target != "/" {
            return Err("STOMP over TCP takes no path".into());
        }
        let target = match target {
            "" => "/".to_string(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_string(),
        };
        if target.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err("control characters or spaces in the path".into());
        }
        Ok(Endpoint {
            websocket,
            tls,
            host: host.to_string(),
            port,
            target,
        })
    }

    /// The `Host` header of the upgrade request: the host, with the port unless it is the
    /// scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// `host:port` for connecting (brackets around IPv6).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_ports_and_targets() {
        let e = Endpoint::parse("ws://127.0.0.1:15674/ws").unwrap();
        assert_eq!(
            (
                e.websocket,
                e.tls,
                e.host.as_str(),
                e.port,
                e.target.as_str()
            ),
            (true, false, "127.0.0.1", 15674, "/ws")
        );
        assert_eq!(e.host_header(), "127.0.0.1:15674");
        let e = Endpoint::parse("wss://example.com?token=a").unwrap();
        assert_eq!((e.port, e.target.as_str()), (443, "/?token=a"));
        assert_eq!(e.host_header(), "example.com");
        let e = Endpoint::parse("stomp://localhost:61613").unwrap();
        assert_eq!((e.websocket, e.tls, e.port), (false, false, 61613));
        assert!(Endpoint::parse("stomp+ssl://h:1").unwrap().tls);
        let e = Endpoint::parse("ws://[::1]:8080/x").unwrap();
        assert_eq!(e.host, "::1");
        assert_eq!(e.address(), "[::1]:8080");
        assert_eq!(e.host_header(), "[::1]:8080");
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, needle) in [
            ("127.0.0.1:1", "scheme"),
            ("http://h/", "unknown scheme"),
            ("stomp://h", "needs a port"),
            ("ws://h:0/", "bad port"),
            ("ws://h:x/", "bad port"),
            ("ws://:80/", "no host"),
            ("stomp://h:1/path", "no path"),
            ("ws://u:p@h/", "user info"),
            ("ws://h/a b", "spaces"),
        ] {
            let err = Endpoint::parse(url).unwrap_err();
            assert!(err.contains(needle), "{url}: {err}");
        }
    }
}
