//! Which endpoint an upgrade request is for, read from its request line before the full
//! handshake is validated (the endpoint decides the handshake settings).

/// The path (without query) of the request line at the start of `buf`, once that line is
/// complete; `None` while it is incomplete or when it is not an HTTP request line. Accepts
/// origin-form (`/chat?x=1`) and absolute-form (`http://host/chat`) targets.
pub fn request_path(buf: &[u8]) -> Option<&str> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&buf[..end]).ok()?;
    let mut parts = line.split(' ');
    let (_method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if !version.starts_with("HTTP/") || parts.next().is_some() {
        return None;
    }
    let target = match target.split_once("://") {
        Some((scheme, rest)) if !scheme.is_empty() && !scheme.contains('/') => {
            rest.find('/').map_or("/", |slash| &rest[slash..])
        }
        _ => target,
    };
    Some(target.split_once('?').map_or(target, |(path, _)| path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_and_absolute_forms() {
        assert_eq!(
            request_path(b"GET /raw HTTP/1.1\r\nHost: x\r\n"),
            Some("/raw")
        );
        assert_eq!(request_path(b"GET /raw?a=1&b HTTP/1.1\r\n"), Some("/raw"));
        assert_eq!(
            request_path(b"GET http://example.com:80/raw/x?q HTTP/1.1\r\n"),
            Some("/raw/x")
        );
        assert_eq!(
            request_path(b"GET http://example.com HTTP/1.1\r\n"),
            Some("/")
        );
    }

    #[test]
    fn incomplete_or_garbage_lines() {
        assert_eq!(
            request_path(b"GET /raw HTTP/1.1"),
            None,
            "line not finished"
        );
        assert_eq!(request_path(b""), None);
        assert_eq!(request_path(b"GET /raw\r\n"), None, "no version");
        assert_eq!(
            request_path(b"GET /a b HTTP/1.1\r\n"),
            None,
            "too many parts"
        );
        assert_eq!(request_path(b"GET /raw SMTP\r\n"), None);
        assert_eq!(request_path(b"\xff\xfe /x HTTP/1.1\r\n"), None, "not UTF-8");
    }
}
