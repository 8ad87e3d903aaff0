//! The layering rules, checked against the sources: which module may import which, and where
//! IO may happen. A `use crate::...` that breaks them fails this test (run by `cargo test`).

use std::collections::BTreeSet;
use std::path::Path;

/// Each module (a top-level file or folder of `src/`) and the modules it may import. The
/// codecs import nothing; the broker only the codecs; nothing below the transport imports
/// `config` (the whole `ServerConfig`), `transport`, `server` or `ffi`.
const ALLOWED: &[(&str, &[&str])] = &[
    ("ws", &[]),
    ("stomp", &[]),
    ("sockjs", &[]),
    ("error", &[]),
    ("executor", &[]),
    ("broker", &["executor", "stomp", "ws"]),
    ("auth", &["broker"]),
    ("relay", &["broker", "error", "stomp", "ws"]),
    ("raw", &["broker", "error", "ws"]),
    // The durable store writes what the broker journals; it knows nothing above it.
    ("store", &["broker"]),
    // Cluster mode links the broker to Redis or NATS; it reuses the relay's backoff.
    ("cluster", &["broker", "relay"]),
    // `hooks` names `host::Publisher` (the handle given to app handlers) and `host` holds the
    // engine: the one cycle, of types only (engine → events → hooks → host → engine).
    ("hooks", &["broker", "executor", "host", "ws"]),
    ("host", &["broker", "engine", "error", "stomp"]),
    ("events", &["broker", "error", "executor", "hooks", "raw"]),
    (
        "session",
        &[
            "auth", "broker", "engine", "events", "hooks", "host", "relay", "stomp", "ws",
        ],
    ),
    (
        "engine",
        &[
            "auth", "broker", "cluster", "config", "error", "events", "executor", "hooks", "raw",
            "relay", "session", "stomp", "ws",
        ],
    ),
    (
        "config",
        &[
            "auth", "broker", "cluster", "error", "relay", "session", "stomp", "store", "ws",
        ],
    ),
    // The client sits beside the server, on the codecs; it reuses the relay's backoff and
    // heart-beat negotiation, the event queue and the transport's PEM loading.
    (
        "client",
        &[
            "broker",
            "error",
            "events",
            "relay",
            "stomp",
            "transport",
            "ws",
        ],
    ),
];

/// Where tasks may be spawned and sockets opened: the transports, relay links, the server,
/// the client's IO task, the store's writer thread (files, no sockets), and the standalone
/// binary (`src/bin`, the outermost edge).
const IO_MODULES: &[&str] = &[
    "transport",
    "relay",
    "server",
    "client",
    "store",
    "cluster",
    "bin",
];
const IO_MARKERS: &[&str] = &[
    "tokio::spawn",
    "TcpStream",
    "TcpListener",
    "std::thread::spawn",
];

/// A source file without its unit-test module (which may use anything).
fn code_of(text: &str) -> &str {
    text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text)
}

/// The crate-level modules a source file imports (`crate::name`), test modules and comments
/// left out.
fn imports(text: &str) -> BTreeSet<String> {
    let code = code_of(text);
    let mut found = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "tests") {
                continue; // socket-free test suites
            }
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let module = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_string())
            .expect("a module");
        let text = std::fs::read_to_string(file).expect("readable source");
        if let Some((_, allowed)) = ALLOWED.iter().find(|(name, _)| *name == module) {
            checked += 1;
            for import in imports(&text) {
                if import != module && !allowed.contains(&import.as_str()) {
                    violations.push(format!("{} imports crate::{import}", relative.display()));
                }
            }
        }
        if !IO_MODULES.contains(&module.as_str()) && module != "layering" {
            for marker in IO_MARKERS {
                if code_of(&text).contains(marker) {
                    violations.push(format!("{} does IO ({marker})", relative.display()));
                }
            }
        }
    }
    assert!(
        checked > 30,
        "only {checked} files checked: is src/ where it was?"
    );
    assert!(
        violations.is_empty(),
        "layering rules broken (see src/layering.rs):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_import_scanner_sees_through_formatting() {
    let found = imports(
        "use crate::broker::{Message, stats};\n// crate::transport in a comment\nlet x = crate::ws::codes::NORMAL;\n#[cfg(test)]\nmod tests { use crate::server; }",
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["broker", "ws"],
        "comments and test modules do not count"
    );
}
