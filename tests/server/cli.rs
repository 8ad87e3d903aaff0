//! The standalone binary as an operator runs it: its log on a pipe.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn no_colour_codes_when_stderr_is_not_a_terminal() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsbroker"))
        .args(["--listen", "127.0.0.1:0", "--log", "trace"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wsbroker");
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log);
        log
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .split("ws://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no ws:// address in {line:?}"))
        .to_string();
    // A request that gets logged (a plain HTTP GET of a missing page).
    let mut tcp = TcpStream::connect(&addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let _ = tcp.read_to_end(&mut Vec::new());
    std::thread::sleep(Duration::from_millis(200));
    let _ = child.kill();
    let _ = child.wait();
    let log = errors.join().unwrap();
    // The level is there, and without the colour codes a terminal would get.
    assert!(log.contains(" INFO "), "no log lines: {log:?}");
    assert!(!log.contains('\u{1b}'), "ESC in {log:?}");
}

#[test]
fn help_and_version_go_to_stdout_and_exit_0() {
    for (flag, expect) in [("--help", "--data-dir <DIR>"), ("--version", "wsbroker ")] {
        let out = Command::new(env!("CARGO_BIN_EXE_wsbroker"))
            .arg(flag)
            .output()
            .expect("run wsbroker");
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(expect), "{flag}: {stdout:?}");
        assert!(out.stderr.is_empty(), "{flag}: nothing on stderr");
    }
}

#[test]
fn a_bad_log_level_exits_2_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_wsbroker"))
        .args(["--listen", "127.0.0.1:0", "--log", "verbose"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run wsbroker");
    assert_eq!(out.status.code(), Some(2));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("invalid --log value 'verbose'") && message.contains("is not a level"),
        "{message:?}"
    );
}

#[test]
fn json_log_lines_parse_as_json() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsbroker"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wsbroker");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let _ = child.kill();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let _ = child.wait();
    let lines: Vec<&str> = log.lines().collect();
    assert!(!lines.is_empty(), "no log lines");
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert!(value.get("level").is_some(), "{line}");
    }
}

/// Starts the binary with `args` and `env`, returns the child and its first stdout lines (the
/// listening addresses, up to and including the one containing `until`).
#[allow(
    clippy::zombie_processes,
    reason = "the child is returned: the caller kills and waits for it"
)]
fn start_until(
    args: &[&str],
    env: &[(&str, &str)],
    until: &str,
) -> (std::process::Child, Vec<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsbroker"));
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start wsbroker");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wsbroker ended before printing {until:?}; it printed {lines:?}");
        }
        let done = line.contains(until);
        lines.push(line.trim_end().to_string());
        if done {
            return (child, lines);
        }
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wsb-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn settings_come_from_flags_then_env_then_the_config_file() {
    let dir = temp_dir("layers");
    let file = dir.join("wsbroker.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\npath = \"/from-file\"\ntcp_listen = \"127.0.0.1:0\"\n\
         raw-echo = [\"/echo-a\", \"/echo-b\"]\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();
    // The file alone: its path, its TCP listener and both raw endpoints.
    let (mut child, lines) = start_until(&["--config", config], &[], "wsbroker listening tcp");
    let _ = child.kill();
    let _ = child.wait();
    let text = lines.join("\n");
    assert!(text.contains("/from-file"), "{text}");
    assert!(
        text.contains("/echo-a (echo)") && text.contains("/echo-b (echo)"),
        "{text}"
    );
    // The environment beats the file (also naming the file), a flag beats the environment.
    let env = [("WSBROKER_CONFIG", config), ("WSBROKER_PATH", "/from-env")];
    let (mut child, lines) = start_until(&[], &env, "wsbroker listening tcp");
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines[0].ends_with("/from-env"), "{lines:?}");
    let (mut child, lines) = start_until(&["--path", "/from-flag"], &env, "wsbroker listening tcp");
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines[0].ends_with("/from-flag"), "{lines:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn print_config_shows_sources_and_masks_secrets() {
    let dir = temp_dir("print");
    let secret = dir.join("passcode");
    std::fs::write(&secret, "file-secret\n").unwrap();
    let file = dir.join("wsbroker.toml");
    std::fs::write(
        &file,
        format!(
            "relay = \"127.0.0.1:61613\"\nrelay-passcode-file = {:?}\nheartbeat = 2500\n",
            secret.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wsbroker"))
        .args(["--config", file.to_str().unwrap(), "--print-config"])
        .env("WSBROKER_RELAY_SYSTEM_PASSCODE", "env-secret")
        .output()
        .expect("run wsbroker");
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("heartbeat = 2500  # file"), "{printed}");
    assert!(
        printed
            .contains("relay-system-passcode = \"********\"  # env WSBROKER_RELAY_SYSTEM_PASSCODE"),
        "{printed}"
    );
    assert!(
        !printed.contains("env-secret") && !printed.contains("file-secret"),
        "{printed}"
    );
    // What it prints is itself a config file the binary accepts.
    let again = dir.join("printed.toml");
    std::fs::write(&again, printed.as_bytes()).unwrap();
    let reread = Command::new(env!("CARGO_BIN_EXE_wsbroker"))
        .args(["--config", again.to_str().unwrap(), "--print-config"])
        .output()
        .expect("run wsbroker");
    assert_eq!(
        reread.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&reread.stderr)
    );
    assert!(String::from_utf8_lossy(&reread.stdout).contains("heartbeat = 2500  # file"));
    // A misspelt key is an error that names it.
    std::fs::write(&again, "hartbeat = 5\n").unwrap();
    let bad = Command::new(env!("CARGO_BIN_EXE_wsbroker"))
        .args(["--config", again.to_str().unwrap()])
        .output()
        .expect("run wsbroker");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown key 'hartbeat'"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rust_log_debug_reaches_stderr() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsbroker"))
        .args(["--listen", "127.0.0.1:0", "--tcp-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wsbroker");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut addr = None;
    for line in stdout.by_ref().lines() {
        let line = line.unwrap();
        if let Some(tcp) = line.strip_prefix("wsbroker listening tcp ") {
            addr = Some(tcp.trim().to_string());
            break;
        }
    }
    let addr = addr.expect("no tcp listener line");
    // A refused frame (a SEND without a destination) is logged at debug level.
    let mut tcp = TcpStream::connect(&addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"CONNECT\naccept-version:1.2\n\n\0SEND\n\nx\0")
        .unwrap();
    let _ = tcp.read_to_end(&mut Vec::new());
    // Read the log until that line shows up; the process is killed after 10 s at the latest,
    // which ends the read.
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let killer = std::thread::spawn(move || {
        if finished.recv_timeout(Duration::from_secs(10)).is_err() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    });
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let found = stderr
        .lines()
        .map_while(Result::ok)
        .find(|line| line.contains("DEBUG") && line.contains("refusing frame"));
    let _ = done.send(());
    killer.join().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(found.is_some(), "no DEBUG line with RUST_LOG=debug");
}

#[test]
fn the_example_config_file_is_accepted() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/wsbroker.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_wsbroker"))
        .args(["--config", example, "--print-config"])
        .output()
        .expect("run wsbroker");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("tcp-listen = \"127.0.0.1:61615\"  # file"),
        "{printed}"
    );
}

/// SIGTERM the moment the listening lines are out (what scripts and test fixtures do) is a
/// graceful stop with exit code 0: the handler is in place before the lines are printed.
#[test]
fn sigterm_right_after_the_listening_lines_is_a_clean_stop() {
    for _ in 0..10 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wsbroker"))
            .args(["--listen", "127.0.0.1:0", "--log", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wsbroker");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with("wsbroker listening"), "{line:?}");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        // Bounded: a broker that ignored the signal is killed and fails the test.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let exit = loop {
            if let Some(exit) = child.try_wait().unwrap() {
                break exit;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("wsbroker did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(exit.code(), Some(0), "{exit:?}");
    }
}
