//! The committed C header equals the one cbindgen generates, compiles as C99 and C++17, and
//! every export in `src/ffi` runs inside the panic guard.

use std::path::{Path, PathBuf};
use std::process::Command;

const GENERATED: &str = env!("WSBROKER_GENERATED_HEADER");

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn committed() -> PathBuf {
    manifest_dir().join("include").join("wsbroker.h")
}

#[test]
fn committed_header_matches_generated() {
    let generated = std::fs::read_to_string(GENERATED)
        .unwrap_or_else(|e| panic!("reading the generated header {GENERATED}: {e}"));
    let committed_path = committed();
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    if generated != committed {
        let first_diff = generated
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| generated.lines().count().min(committed.lines().count()));
        panic!(
            "include/wsbroker.h is out of date (first difference at line {}).\n\
             Refresh it with:\n\n    cp {} {}\n",
            first_diff + 1,
            GENERATED,
            committed_path.display()
        );
    }
}

/// The number that follows the first `marker` in `text` (`what` names the place in a failure).
fn number_after(text: &str, marker: &str, what: &str) -> u32 {
    let rest = text
        .split_once(marker)
        .unwrap_or_else(|| panic!("{what}: no {marker:?}"))
        .1;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{what}: no number after {marker:?}"))
}

/// The C ABI version is written in four places that must agree: the header's first comment
/// line (cbindgen.toml), its `#define WSB_ABI_VERSION`, docs/using-from-c.md and what the
/// library's `wsb_abi_version()` returns.
#[test]
fn abi_version_is_the_same_everywhere() {
    let header = std::fs::read_to_string(committed()).unwrap();
    let first_line = header.lines().nth(1).unwrap_or_default();
    let docs = std::fs::read_to_string(manifest_dir().join("docs/using-from-c.md")).unwrap();
    let library = wsbroker::ffi::wsb_abi_version();
    assert_eq!(library, wsbroker::ffi::WSB_ABI_VERSION);
    for (what, stated) in [
        (
            "include/wsbroker.h, first comment line (cbindgen.toml `header`)",
            number_after(first_line, "(ABI version ", "the header's first line"),
        ),
        (
            "include/wsbroker.h, #define WSB_ABI_VERSION",
            number_after(&header, "#define WSB_ABI_VERSION ", "the header"),
        ),
        (
            "docs/using-from-c.md",
            number_after(&docs, "C ABI version ", "docs/using-from-c.md"),
        ),
    ] {
        assert_eq!(
            stated, library,
            "{what} says ABI version {stated}, wsb_abi_version() returns {library}"
        );
    }
}

/// The first of `candidates` that runs (`--version`), if any.
fn find_compiler(candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .find(|cc| {
            Command::new(cc)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(std::string::ToString::to_string)
}

fn compile(compiler: &str, flags: &[&str], source_name: &str, source: &str) {
    let dir = std::env::temp_dir().join(format!(
        "wsbroker-header-{}-{source_name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(source_name);
    std::fs::write(&src, source).unwrap();
    let obj = dir.join(format!("{source_name}.o"));
    let include = manifest_dir().join("include");
    let output = Command::new(compiler)
        .args(flags)
        .arg("-I")
        .arg(&include)
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .unwrap_or_else(|e| panic!("running {compiler}: {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{compiler} {flags:?} failed on wsbroker.h:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Uses every type and a few functions, and checks the shared struct layouts at compile time.
const USE_HEADER: &str = r#"
#include "wsbroker.h"
#include "wsbroker.h" /* twice: the include guard */

#define CHECK(name, cond) typedef char check_##name[(cond) ? 1 : -1]
CHECK(header_size, sizeof(wsb_header) == 4 * sizeof(void *));
CHECK(stats_size, sizeof(wsb_stats) == 17 * 8);
CHECK(event_size, sizeof(wsb_event) == 40 + 18 * sizeof(void *));
CHECK(abi, WSB_ABI_VERSION == 5);
CHECK(cluster_stats_size, sizeof(wsb_cluster_stats) == 6 * 8);
CHECK(codes, WSB_OK == 0 && WSB_ERR_NULL_ARGUMENT == 100 && WSB_ERR_INVALID_CONFIG == 103
      && WSB_ERR_CALLED_FROM_CALLBACK == 203 && WSB_ERR_BACKPRESSURE == 302 && WSB_ERR_PANIC == 900);
CHECK(events, WSB_EVENT_CONNECT == 1 && WSB_EVENT_OVERFLOW == 6 && WSB_TRANSPORT_TCP == 2
      && WSB_EVENT_MESSAGES_DROPPED == 7 && WSB_EVENT_RAW_OPEN == 8 && WSB_EVENT_RAW_CLOSE == 10
      && WSB_EVENT_BROKER_UNAVAILABLE == 12 && WSB_EVENT_BACKPLANE_AVAILABLE == 13
      && WSB_EVENT_BACKPLANE_UNAVAILABLE == 14 && WSB_RAW_ECHO == 2);

static void on_event(void *user_data, const wsb_event *event) { (void)user_data; (void)event; }
static int32_t on_app(void *user_data, const wsb_event *event, char *buf, size_t cap) {
    (void)user_data; (void)event; (void)buf; (void)cap; return 0;
}
static void on_drop(void *user_data) { (void)user_data; }
static void on_log(void *user_data, int32_t level, const char *target, const char *message) {
    (void)user_data; (void)level; (void)target; (void)message;
}

int use_header(void);
int use_header(void) {
    wsb_config *config = NULL;
    wsb_server *server = NULL;
    wsb_event events[4];
    size_t n = 0;
    uint64_t id = 0;
    wsb_stats stats;
    wsb_result rc = wsb_config_new(&config);
    wsb_event_callback ecb = on_event;
    wsb_app_callback acb = on_app;
    wsb_drop_callback dcb = on_drop;
    wsb_log_callback lcb = on_log;
    wsb_wake_callback wcb = on_drop;
    (void)wsb_set_log_callback(lcb, NULL, WSB_LOG_INFO);
    (void)wsb_config_set_wake_callback(config, wcb, NULL, dcb);
    (void)wsb_config_set_delivery_mode(config, WSB_DELIVERY_POLL);
    rc = wsb_server_new(config, &server);
    wsb_config_free(config);
    (void)wsb_server_subscribe(server, "/topic/a", 8, ecb, NULL, dcb, &id);
    (void)wsb_server_handle_app(server, "/app/a", 6, acb, NULL, NULL);
    (void)wsb_server_poll(server, events, 4, &n);
    (void)wsb_server_stats(server, &stats);
    (void)wsb_result_str((int32_t)rc);
    (void)wsb_server_free(server);
    return (int)wsb_abi_version() + (int)events[0].kind + (int)stats.connections;
}
"#;

#[test]
fn header_compiles_as_c99() {
    let Some(cc) = find_compiler(&["cc", "gcc", "clang"]) else {
        eprintln!("NOTICE: no C compiler found (cc, gcc, clang); skipping the C99 header check");
        return;
    };
    compile(
        &cc,
        &["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"],
        "use_header.c",
        USE_HEADER,
    );
}

#[test]
fn header_compiles_as_cpp17() {
    let Some(cxx) = find_compiler(&["c++", "g++", "clang++"]) else {
        eprintln!("NOTICE: no C++ compiler found (c++, g++, clang++); skipping the C++ check");
        return;
    };
    let source = USE_HEADER.replace("wsb_event events[4];", "wsb_event events[4] = {};");
    compile(
        &cxx,
        &["-std=c++17", "-Wall", "-Wextra", "-Werror"],
        "use_header.cpp",
        &source,
    );
}

/// Every `extern "C" fn` in src/ffi has `#[unsafe(no_mangle)]` and runs its body in
/// `ffi_guard!`, so no panic can unwind into C.
#[test]
fn every_export_is_guarded() {
    let dir = manifest_dir().join("src").join("ffi");
    let mut exports = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            exports += check_file(&path);
        }
    }
    assert!(exports >= 45, "found only {exports} exports in src/ffi");
}

fn check_file(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut count = 0;
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if !(trimmed.starts_with("pub extern \"C\" fn")
            || trimmed.starts_with("pub unsafe extern \"C\" fn"))
        {
            continue;
        }
        count += 1;
        let name = trimmed
            .split("fn ")
            .nth(1)
            .unwrap_or("")
            .split('(')
            .next()
            .unwrap_or("");
        assert!(
            lines[..i]
                .iter()
                .rev()
                .take_while(
                    |l| l.trim_start().starts_with("#[") || l.trim_start().starts_with("///")
                )
                .any(|l| l.trim() == "#[unsafe(no_mangle)]"),
            "{}: {name} lacks #[unsafe(no_mangle)]",
            path.display()
        );
        let body_start = lines[i..]
            .iter()
            .position(|l| l.ends_with('{') && !l.trim_start().starts_with("//"))
            .map(|p| i + p + 1)
            .unwrap_or_else(|| panic!("{}: no body for {name}", path.display()));
        assert!(
            lines[body_start].trim_start().starts_with("ffi_guard!("),
            "{}: the body of {name} must start with ffi_guard!( (found {:?})",
            path.display(),
            lines[body_start]
        );
    }
    count
}
