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
