//! Redis Sentinel discovery for the Redis engine: `redis+sentinel://[[user]:password@]
//! host:port[,host:port...]/SERVICE[/DB]` names the sentinels and the monitored master's
//! service name; each connection attempt asks the sentinels for the current master, so after
//! a failover the link reconnects to the promoted replica. The password and db apply to the
//! master (sentinels are asked without credentials). Both are reached over plain TCP.

use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Client, RedisConnectionInfo};

/// The URL scheme of a sentinel set.
pub(super) const SCHEME: &str = "redis+sentinel://";

/// A parsed `redis+sentinel://` URL.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct SentinelUrl {
    sentinels: Vec<String>,
    service: String,
    username: Option<String>,
    password: Option<String>,
    db: i64,
}

impl SentinelUrl {
    /// Parses `url` (which starts with [`SCHEME`]); the error says what is wrong, without
    /// the password.
    pub(super) fn parse(url: &str) -> Result<SentinelUrl, String> {
        let rest = url
            .strip_prefix(SCHEME)
            .ok_or_else(|| format!("a sentinel URL starts with {SCHEME}"))?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((auth, rest)) => (Some(auth), rest),
            None => (None, rest),
        };
        let (hosts, path) = rest.split_once('/').ok_or(
            "a sentinel URL needs the master's service name: redis+sentinel://HOST:PORT/SERVICE",
        )?;
        let sentinels: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| {
                if h.contains(':') {
                    h.to_string()
                } else {
                    format!("{h}:26379")
                }
            })
            .collect();
        if sentinels.is_empty() {
            return Err("a sentinel URL names no sentinel".into());
        }
        let mut parts = path.split('/').filter(|p| !p.is_empty());
        let service = parts
            .next()
            .ok_or("a sentinel URL needs the master's service name after the hosts")?
            .to_string();
        let db = match parts.next() {
            Some(db) => db
                .parse()
                .map_err(|_| format!("sentinel URL: database {db:?} is not a number"))?,
            None => 0,
        };
        let (username, password) = match auth {
            None => (None, None),
            Some(auth) => match auth.split_once(':') {
                Some((user, password)) => (
                    (!user.is_empty()).then(|| user.to_string()),
                    Some(password.to_string()),
                ),
                None => (Some(auth.to_string()), None),
            },
        };
        Ok(SentinelUrl {
            sentinels,
            service,
            username,
            password,
            db,
        })
    }

    /// Asks the sentinels for the current master; a client for it.
    pub(super) async fn master(&self) -> redis::RedisResult<Client> {
        let mut info = RedisConnectionInfo::default().set_db(self.db);
        if let Some(user) = &self.username {
            info = info.set_username(user);
        }
        if let Some(password) = &self.password {
            info = info.set_password(password);
        }
        let node = SentinelNodeConnectionInfo::default().set_redis_connection_info(info);
        let sentinels: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("redis://{s}/"))
            .collect();
        let mut client = SentinelClient::build(
            sentinels,
            self.service.clone(),
            Some(node),
            SentinelServerType::Master,
        )?;
        client.async_get_client().await
    }
}

#[cfg(test)]
mod tests {
    use super::SentinelUrl;

    #[test]
    fn sentinel_urls_name_sentinels_service_credentials_and_db() {
        let url =
            SentinelUrl::parse("redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2/mymaster/2").unwrap();
        assert_eq!(url.sentinels, ["10.0.0.1:26379", "10.0.0.2:26379"]);
        assert_eq!(url.service, "mymaster");
        assert_eq!(
            (url.username, url.password.as_deref(), url.db),
            (None, Some("pw"), 2)
        );
        let plain = SentinelUrl::parse("redis+sentinel://s:5000/cache").unwrap();
        assert_eq!((plain.password, plain.db), (None, 0));
        for bad in [
            "redis+sentinel://s:5000",
            "redis+sentinel:///svc",
            "redis+sentinel://s/svc/x",
        ] {
            let why = SentinelUrl::parse(bad).unwrap_err();
            assert!(!why.is_empty(), "{bad}");
        }
        let secret = SentinelUrl::parse("redis+sentinel://u:secret@s").unwrap_err();
        assert!(!secret.contains("secret"), "{secret}");
    }
}
