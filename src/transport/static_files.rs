//! Static files from a directory (`--static DIR`), resolved safely: no `..` segments, and the
//! resolved file (after symlinks) must lie inside the directory.

use std::path::{Path, PathBuf};

/// A file found for a request path.
pub(crate) struct StaticFile {
    pub path: PathBuf,
    pub content_type: &'static str,
}

/// Resolves `request_path` (percent-encoded, without query) under `root` (canonical).
/// Directories resolve to their `index.html`. `None` means 404.
pub(crate) fn resolve(root: &Path, request_path: &str) -> Option<StaticFile> {
    let decoded = percent_decode(request_path)?;
    let mut path = root.to_path_buf();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => return None,
            s if s.contains('\\') || s.contains('\0') => return None,
            s => path.push(s),
        }
    }
    let mut path = path.canonicalize().ok()?;
    if !path.starts_with(root) {
        return None; // a symlink out of the directory
    }
    if path.is_dir() {
        path = path.join("index.html").canonicalize().ok()?;
        if !path.starts_with(root) {
            return None;
        }
    }
    if !path.is_file() {
        return None;
    }
    let content_type = content_type(&path);
    Some(StaticFile { path, content_type })
}

/// Content type by extension.
pub(crate) fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("html" | "htm") => "text/html; charset=UTF-8",
        Some("js" | "mjs") => "application/javascript; charset=UTF-8",
        Some("css") => "text/css; charset=UTF-8",
        Some("json" | "map") => "application/json; charset=UTF-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=UTF-8",
        _ => "application/octet-stream",
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_inside_the_root_only() {
        let dir = std::env::temp_dir().join(format!("wsb-static-{}", std::process::id()));
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), "i").unwrap();
        std::fs::write(root.join("sub/app.js"), "a").unwrap();
        std::fs::write(dir.join("secret.txt"), "s").unwrap();
        #[cfg(unix)]
        let _ = std::os::unix::fs::symlink(dir.join("secret.txt"), root.join("link.txt"));
        let root = root.canonicalize().unwrap();
        assert_eq!(
            resolve(&root, "/").unwrap().content_type,
            "text/html; charset=UTF-8"
        );
        assert!(
            resolve(&root, "/sub/app.js")
                .unwrap()
                .path
                .ends_with("sub/app.js")
        );
        assert!(resolve(&root, "/sub/%61pp.js").is_some());
        assert!(resolve(&root, "/../secret.txt").is_none());
        assert!(resolve(&root, "/sub/%2e%2e/%2e%2e/secret.txt").is_none());
        assert!(resolve(&root, "/link.txt").is_none(), "symlink escape");
        assert!(resolve(&root, "/sub").is_none(), "no index.html there");
        assert!(resolve(&root, "/missing").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
