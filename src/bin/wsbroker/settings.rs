//! Where each setting of the `wsbroker` command comes from: a flag, else a `WSBROKER_*`
//! environment variable, else the `--config` TOML file, else the library's default.
//!
//! Every flag is a key: the file says `tcp-listen = "127.0.0.1:61615"` (or `tcp_listen`) and
//! the environment `WSBROKER_TCP_LISTEN=127.0.0.1:61615`. Clap parses everything in the end:
//! settings from the environment and the file become flags placed before the real ones, so a
//! value from any source is checked exactly as a flag is — and only for settings no flag gave.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

/// Prefix of the environment variables (`WSBROKER_LISTEN`, `WSBROKER_RELAY_PASSCODE`, …).
pub const ENV_PREFIX: &str = "WSBROKER_";

/// Settings that must not be shown: `--print-config` masks them.
/// (An engine URL may hold a password.)
const SECRETS: &[&str] = &[
    "relay-passcode",
    "relay-system-passcode",
    "cluster-redis",
    "cluster-nats",
];

/// Settings that choose the other sources or act at once; never keys of the file.
const NOT_KEYS: &[&str] = &["config", "print-config", "help", "version"];

/// Where one setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(String),
    File,
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => write!(f, "flag"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::File => write!(f, "file"),
            Source::Default => write!(f, "default"),
        }
    }
}

/// The command line with the environment's and the file's settings in front, and where each
/// setting came from (by long name).
#[derive(Debug)]
pub struct Layered {
    pub argv: Vec<OsString>,
    pub sources: BTreeMap<String, Source>,
}

/// The environment variable of a long flag name: `tcp-listen` → `WSBROKER_TCP_LISTEN`.
pub fn env_name(long: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        long.replace('-', "_").to_ascii_uppercase()
    )
}

fn is_switch(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue)
}

fn is_list(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

/// Every setting of `command` (flattened groups included) that a file or variable may set.
fn settings(command: &Command) -> Vec<(String, Arg)> {
    command
        .get_arguments()
        .filter_map(|arg| Some((arg.get_long()?.to_string(), arg.clone())))
        .filter(|(long, _)| !NOT_KEYS.contains(&long.as_str()))
        .collect()
}

/// Layers `env` and the config file under `argv` (the flags). `env` looks a variable up; the
/// file is `--config FILE`, else `WSBROKER_CONFIG`.
pub fn layer(
    command: &Command,
    argv: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Layered, String> {
    // What the flags alone say (errors are reported by the real parse at the end). Even with
    // errors ignored, --help and --version end the parse: the real one prints them.
    let Ok(flags) = command
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(&argv)
    else {
        return Ok(Layered {
            argv,
            sources: BTreeMap::new(),
        });
    };
    let config_path = flags
        .get_raw("config")
        .and_then(|mut v| v.next().map(OsString::from))
        .or_else(|| env(&env_name("config")).map(OsString::from));
    let file = match &config_path {
        Some(path) => read_file(Path::new(path))?,
        None => toml::Table::new(),
    };
    let known = settings(command);
    let mut file_values: BTreeMap<String, &toml::Value> = BTreeMap::new();
    for (key, value) in &file {
        let long = key.replace('_', "-");
        if !known.iter().any(|(l, _)| *l == long) {
            return Err(format!(
                "{}: unknown key '{key}' (the keys are the flags' long names, e.g. \
                 listen = \"127.0.0.1:61614\"; see --help)",
                config_path.as_deref().unwrap_or_default().to_string_lossy()
            ));
        }
        file_values.insert(long, value);
    }
    let mut front: Vec<OsString> = Vec::new();
    let mut sources = BTreeMap::new();
    for (long, arg) in &known {
        let on_command_line = arg_on_command_line(&flags, arg);
        let source = if on_command_line {
            Source::Flag
        } else if let Some(value) = env(&env_name(long)) {
            push_env(&mut front, long, arg, &value)?;
            Source::Env(env_name(long))
        } else if let Some(value) = file_values.get(long) {
            push_file(&mut front, long, arg, value)?;
            Source::File
        } else {
            Source::Default
        };
        sources.insert(long.clone(), source);
    }
    let mut layered = Vec::with_capacity(argv.len() + front.len());
    let mut rest = argv.into_iter();
    layered.extend(rest.next()); // the program name stays first
    layered.extend(front);
    layered.extend(rest);
    Ok(Layered {
        argv: layered,
        sources,
    })
}

fn arg_on_command_line(flags: &ArgMatches, arg: &Arg) -> bool {
    flags
        .try_contains_id(arg.get_id().as_str())
        .unwrap_or(false)
        && flags.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
}

fn read_file(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    text.parse::<toml::Table>()
        .map_err(|e| format!("config file {}: {e}", path.display()))
}

fn push_env(front: &mut Vec<OsString>, long: &str, arg: &Arg, value: &str) -> Result<(), String> {
    let name = env_name(long);
    if is_switch(arg) {
        match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => front.push(format!("--{long}").into()),
            "0" | "false" | "no" | "off" | "" => {}
            other => return Err(format!("{name}={other}: expected true or false")),
        }
    } else if is_list(arg) {
        // Lists are separated by whitespace (history rules and patterns contain commas).
        for item in value.split_whitespace() {
            front.push(format!("--{long}={item}").into());
        }
    } else {
        front.push(format!("--{long}={value}").into());
    }
    Ok(())
}

fn scalar(long: &str, value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!(
            "config key '{long}': expected a string, number or boolean, got a {}",
            other.type_str()
        )),
    }
}

fn push_file(
    front: &mut Vec<OsString>,
    long: &str,
    arg: &Arg,
    value: &toml::Value,
) -> Result<(), String> {
    if is_switch(arg) {
        return match value {
            toml::Value::Boolean(true) => {
                front.push(format!("--{long}").into());
                Ok(())
            }
            toml::Value::Boolean(false) => Ok(()),
            _ => Err(format!("config key '{long}': expected true or false")),
        };
    }
    match value {
        toml::Value::Array(items) if is_list(arg) => {
            for item in items {
                front.push(format!("--{long}={}", scalar(long, item)?).into());
            }
        }
        toml::Value::Array(_) => {
            return Err(format!("config key '{long}' takes one value, not a list"));
        }
        other => front.push(format!("--{long}={}", scalar(long, other)?).into()),
    }
    Ok(())
}

/// The effective configuration as TOML, one key a line with its source; secrets masked.
pub fn render(
    command: &Command,
    matches: &ArgMatches,
    sources: &BTreeMap<String, Source>,
) -> String {
    let mut out =
        String::from("# wsbroker effective configuration (flag > env > file > default)\n");
    for (long, arg) in settings(command) {
        let id = arg.get_id().as_str();
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let source = sources.get(&long).cloned().unwrap_or(Source::Default);
        let shown = if values.is_empty() {
            if is_switch(&arg) {
                "false".to_string()
            } else {
                out.push_str(&format!("# {long} = (not set)\n"));
                continue;
            }
        } else if SECRETS.contains(&long.as_str()) && source != Source::Default {
            "\"********\"".to_string()
        } else if is_list(&arg) {
            let items: Vec<String> = values.iter().map(|v| toml_value(v)).collect();
            format!("[{}]", items.join(", "))
        } else {
            toml_value(&values[0])
        };
        // Defaults are shown commented out, so that the output is itself a config file that
        // sets only what was set.
        let comment = if source == Source::Default { "# " } else { "" };
        out.push_str(&format!("{comment}{long} = {shown}  # {source}\n"));
    }
    out
}

/// A flag's text as a TOML value: numbers and booleans bare, everything else a string.
fn toml_value(text: &str) -> String {
    if text.parse::<i64>().is_ok() || text == "true" || text == "false" {
        text.to_string()
    } else {
        // A JSON string is a valid TOML basic string.
        serde_json::to_string(text).unwrap_or_default()
    }
}

/// A secret read from a file: its bytes without one trailing newline (`\n` or `\r\n`).
pub fn read_secret(path: &Path) -> Result<Vec<u8>, String> {
    let mut secret =
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if secret.last() == Some(&b'\n') {
        secret.pop();
        if secret.last() == Some(&b'\r') {
            secret.pop();
        }
    }
    Ok(secret)
}

/// A passcode: from `file` when one is named, else `inline`.
pub fn passcode(inline: &str, file: Option<&Path>) -> Result<String, String> {
    let Some(path) = file else {
        return Ok(inline.to_string());
    };
    String::from_utf8(read_secret(path)?)
        .map_err(|_| format!("the passcode in {} is not UTF-8", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Demo {
        #[arg(long, default_value = "a")]
        name: String,
        #[arg(long, default_value_t = 1)]
        count: u32,
        #[arg(long)]
        item: Vec<String>,
        #[arg(long)]
        quiet: bool,
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    }

    fn layered(
        argv: &[&str],
        env: &[(&str, &str)],
        file: Option<&str>,
    ) -> Result<(Demo, Layered), String> {
        let dir = std::env::temp_dir().join(format!("wsb-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("{n}.toml"));
        let mut argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        argv.insert(0, "demo".into());
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
            argv.push("--config".into());
            argv.push(path.clone().into());
        }
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let layered = layer(&Demo::command(), argv, &lookup)?;
        let demo = Demo::try_parse_from(&layered.argv).map_err(|e| e.to_string())?;
        Ok((demo, layered))
    }

    use clap::CommandFactory;

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let file = "name = \"file\"\ncount = 3\nitem = [\"x\", \"y\"]\nquiet = true\n";
        let (d, l) = layered(&[], &[], Some(file)).unwrap();
        assert_eq!(
            (d.name.as_str(), d.count, d.item.len(), d.quiet),
            ("file", 3, 2, true)
        );
        assert_eq!(l.sources["name"], Source::File);
        let (d, l) = layered(
            &[],
            &[("WSBROKER_NAME", "env"), ("WSBROKER_ITEM", "p q r")],
            Some(file),
        )
        .unwrap();
        assert_eq!((d.name.as_str(), d.count, d.item.len()), ("env", 3, 3));
        assert_eq!(l.sources["name"], Source::Env("WSBROKER_NAME".into()));
        let (d, l) = layered(&["--name", "flag"], &[("WSBROKER_NAME", "env")], Some(file)).unwrap();
        assert_eq!(d.name, "flag");
        assert_eq!(l.sources["name"], Source::Flag);
        let (d, l) = layered(&[], &[], None).unwrap();
        assert_eq!((d.name.as_str(), d.count), ("a", 1));
        assert_eq!(l.sources["count"], Source::Default);
    }

    #[test]
    fn bad_keys_and_values_are_errors() {
        let unknown = layered(&[], &[], Some("nmae = \"x\"\n")).unwrap_err();
        assert!(unknown.contains("unknown key 'nmae'"), "{unknown}");
        let list = layered(&[], &[], Some("name = [\"x\"]\n")).unwrap_err();
        assert!(list.contains("takes one value"), "{list}");
        let number = layered(&[], &[], Some("count = \"many\"\n")).unwrap_err();
        assert!(number.contains("many"), "{number}");
        let switch = layered(&[], &[("WSBROKER_QUIET", "maybe")], None).unwrap_err();
        assert!(switch.contains("expected true or false"), "{switch}");
        let syntax = layered(&[], &[], Some("name = \n")).unwrap_err();
        assert!(syntax.contains("config file"), "{syntax}");
    }
}
