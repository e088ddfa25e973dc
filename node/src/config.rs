//! `taksa node --config FILE`: a TOML file of `taksa node`'s own flags, by their long names
//! (`data-dir = "/var/lib/taksa"`, `bootnode = ["…", "…"]`, `state-cache-mb = 512`). A flag on
//! the command line wins over its environment variable, which wins over the file, which wins
//! over the default. `taksa config default` prints every key with its help and default.
//!
//! The file becomes command-line arguments before clap parses them, so one parser checks every
//! value, whichever way it came, and the keys are exactly the flags: nothing to keep in sync.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context};
use clap::{Arg, ArgAction, CommandFactory};

use crate::cli::Cli;

/// The subcommand a config file configures.
const SUBCOMMAND: &str = "node";
/// The flag that names the file.
const CONFIG_FLAG: &str = "config";
/// The largest config file read.
const CONFIG_BYTES_MAX: u64 = 1024 * 1024;

/// `args` (the process's, program name first) with the values of `taksa node --config FILE`
/// inserted as flags, for those keys that neither the command line nor the environment sets.
/// Other commands pass through unchanged.
pub fn expand_args(args: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    expand(args, &|name| std::env::var_os(name).is_some())
}

/// [`expand_args`] with `env_set` telling which environment variables are set.
fn expand(args: Vec<OsString>, env_set: &dyn Fn(&str) -> bool) -> anyhow::Result<Vec<OsString>> {
    if args.get(1).and_then(|a| a.to_str()) != Some(SUBCOMMAND) {
        return Ok(args);
    }
    let Some(file) = config_path(&args) else { return Ok(args) };
    let table = read(&file)?;
    let command = Cli::command();
    let node = command.find_subcommand(SUBCOMMAND).context("the node subcommand is missing")?;
    let mut inserted: Vec<OsString> = Vec::new();
    for (key, value) in &table {
        let arg = node
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && key != CONFIG_FLAG)
            .with_context(|| {
                format!(
                    "{}: `{key}` is not a flag of `taksa node`; `taksa config default` lists every key",
                    file.display()
                )
            })?;
        let given = args
            .iter()
            .skip(2)
            .filter_map(|a| a.to_str())
            .any(|a| a.strip_prefix("--").is_some_and(|rest| rest == key || rest.starts_with(&format!("{key}="))));
        let from_env = arg.get_env().and_then(|e| e.to_str()).is_some_and(env_set);
        if given || from_env {
            continue;
        }
        inserted.extend(flags(&file, key, arg, value)?);
    }
    let mut out = args;
    out.splice(2..2, inserted);
    Ok(out)
}

/// The `--config` value among the node's arguments.
fn config_path(args: &[OsString]) -> Option<std::path::PathBuf> {
    let flag = format!("--{CONFIG_FLAG}");
    let mut it = args.iter().skip(2);
    while let Some(a) = it.next() {
        let text = a.to_str()?;
        if text == flag {
            return it.next().map(std::path::PathBuf::from);
        }
        if let Some(value) = text.strip_prefix(&format!("{flag}=")) {
            return Some(value.into());
        }
    }
    None
}

/// The file's table, refusing what is not a small TOML file.
fn read(file: &Path) -> anyhow::Result<toml::Table> {
    let meta = std::fs::metadata(file).with_context(|| format!("cannot read the config file {}", file.display()))?;
    if meta.len() > CONFIG_BYTES_MAX {
        bail!("{} is {} bytes; a config file is at most {CONFIG_BYTES_MAX}", file.display(), meta.len());
    }
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    text.parse::<toml::Table>().with_context(|| format!("{} is not valid TOML", file.display()))
}

/// The command-line arguments that give `arg` the value `value`.
fn flags(file: &Path, key: &str, arg: &Arg, value: &toml::Value) -> anyhow::Result<Vec<OsString>> {
    let flag = OsString::from(format!("--{key}"));
    let wrong = |what: &str| anyhow::anyhow!("{}: `{key}` {what}", file.display());
    match (arg.get_action(), value) {
        (ArgAction::SetTrue, toml::Value::Boolean(true)) => Ok(vec![flag]),
        (ArgAction::SetTrue, toml::Value::Boolean(false)) => Ok(Vec::new()),
        (ArgAction::SetTrue, _) => Err(wrong("is true or false")),
        (ArgAction::Append, toml::Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len() * 2);
            for item in items {
                out.push(flag.clone());
                out.push(scalar(item).ok_or_else(|| wrong("is a list of strings or numbers"))?.into());
            }
            Ok(out)
        }
        (_, value) => {
            let text = scalar(value).ok_or_else(|| wrong("is a string or a number"))?;
            Ok(vec![flag, text.into()])
        }
    }
}

/// A string, integer or float as its command-line text.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

/// `taksa config default`: every key of `taksa node`, with its help as comments; the two it
/// needs set, the others commented out at their defaults.
pub(crate) fn default_file() -> String {
    let command = Cli::command();
    let mut out = String::from(
        "# taksa node --config FILE: the flags of `taksa node`, by their long names.\n\
         # A flag on the command line wins over its environment variable, which wins over this file.\n",
    );
    let Some(node) = command.find_subcommand(SUBCOMMAND) else { return out };
    for arg in node.get_arguments() {
        let Some(key) = arg.get_long().filter(|k| *k != CONFIG_FLAG && *k != "help") else { continue };
        out.push('\n');
        let help = arg.get_long_help().or_else(|| arg.get_help()).map(ToString::to_string).unwrap_or_default();
        for line in help.lines() {
            for wrapped in wrap(line, COMMENT_WIDTH) {
                let _ = if wrapped.is_empty() { writeln!(out, "#") } else { writeln!(out, "# {wrapped}") };
            }
        }
        if let Some(env) = arg.get_env() {
            let _ = writeln!(out, "# (environment: {})", env.to_string_lossy());
        }
        let _ = writeln!(out, "{}", default_line(key, arg));
    }
    out
}

/// The width of the default file's comments.
const COMMENT_WIDTH: usize = 96;

/// `text` cut at spaces into lines of at most `width` characters (a longer word stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().filter(|l| l.is_empty() || l.len() + 1 + word.len() <= width);
        match line {
            Some(l) => {
                if !l.is_empty() {
                    l.push(' ');
                }
                l.push_str(word);
            }
            None => lines.push(word.to_owned()),
        }
    }
    lines
}

/// A key's line: set to an example when required, else commented out at its default.
fn default_line(key: &str, arg: &Arg) -> String {
    if arg.is_required_set() {
        let example = match key {
            "genesis" => "genesis.json",
            "data-dir" => "/var/lib/taksa",
            _ => "",
        };
        return format!("{key} = \"{example}\"");
    }
    let value = match arg.get_action() {
        ArgAction::SetTrue => "false".to_owned(),
        ArgAction::Append => "[]".to_owned(),
        _ => match arg.get_default_values().first().and_then(|v| v.to_str()) {
            Some(v) if v.parse::<i64>().is_ok() => v.to_owned(),
            Some(v) => format!("\"{v}\""),
            // No default: the node decides (the help says what it does).
            None => return format!("# {key} = "),
        },
    };
    format!("# {key} = {value}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn strings(list: &[OsString]) -> Vec<String> {
        list.iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    fn write(dir: &Path, text: &str) -> String {
        let path = dir.join("node.toml");
        std::fs::write(&path, text).expect("write");
        path.to_string_lossy().into_owned()
    }

    const FILE: &str = "genesis = \"g.json\"\ndata-dir = \"/d\"\nbootnode = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n\
                        state-cache-mb = 64\nlog-json = true\nrpc-addr = \"127.0.0.1:9000\"\n";

    #[test]
    fn the_file_fills_in_what_neither_flags_nor_the_environment_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(dir.path(), FILE);
        let given = args(&["taksa", "node", "--config", &file, "--state-cache-mb", "128"]);
        let env_sets_rpc = |name: &str| name == "TAKSA_RPC_ADDR";
        let out = strings(&expand(given, &env_sets_rpc).expect("expands"));
        let joined = out.join(" ");
        assert!(joined.contains("--genesis g.json") && joined.contains("--data-dir /d"), "{joined}");
        assert!(joined.contains("--bootnode 127.0.0.1:1 --bootnode 127.0.0.1:2"), "{joined}");
        assert!(joined.contains("--log-json"), "{joined}");
        assert_eq!(out.iter().filter(|a| *a == "--state-cache-mb").count(), 1, "the flag wins: {joined}");
        assert!(joined.ends_with("--state-cache-mb 128"), "{joined}");
        assert!(!joined.contains("--rpc-addr"), "the environment wins over the file: {joined}");
        // And clap takes the result.
        let parsed = Cli::try_parse_from(out);
        assert!(parsed.is_ok(), "{parsed:?}");
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused_with_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(dir.path(), "data_dir = \"/d\"\n");
        let err = expand(args(&["taksa", "node", "--config", &file]), &|_| false).expect_err("unknown key");
        assert!(err.to_string().contains("`data_dir` is not a flag") && err.to_string().contains("config default"));
        let file = write(dir.path(), "log-json = \"yes\"\n");
        let err = expand(args(&["taksa", "node", "--config", &file]), &|_| false).expect_err("not a boolean");
        assert!(err.to_string().contains("true or false"), "{err}");
        let file = write(dir.path(), "not toml [");
        assert!(expand(args(&["taksa", "node", "--config", &file]), &|_| false).is_err());
        let missing = args(&["taksa", "node", "--config", "/nonexistent/taksa.toml"]);
        assert!(expand(missing, &|_| false).is_err());
    }

    #[test]
    fn other_commands_and_nodes_without_a_file_pass_through() {
        let plain = args(&["taksa", "dev", "--config", "x.toml"]);
        assert_eq!(expand(plain.clone(), &|_| false).expect("unchanged"), plain);
        let node = args(&["taksa", "node", "--genesis", "g.json", "--data-dir", "/d"]);
        assert_eq!(expand(node.clone(), &|_| false).expect("unchanged"), node);
    }

    #[test]
    fn the_default_file_lists_every_flag_and_is_a_working_config_once_uncommented() {
        let text = default_file();
        let command = Cli::command();
        let node = command.find_subcommand(SUBCOMMAND).expect("node");
        for arg in node.get_arguments() {
            if let Some(key) = arg.get_long().filter(|k| *k != CONFIG_FLAG && *k != "help") {
                assert!(text.contains(&format!("{key} = ")), "the default file lacks {key}");
            }
        }
        // Every commented key with a value, uncommented, is still accepted.
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.contains(" = ") && !rest.ends_with("= ") => rest,
                _ if l.starts_with('#') => "",
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(uncommented.parse::<toml::Table>().is_ok(), "{uncommented}");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(dir.path(), &uncommented);
        let out = expand(args(&["taksa", "node", "--config", &file]), &|_| false).expect("expands");
        let parsed = Cli::try_parse_from(&out);
        assert!(parsed.is_ok(), "{:?}: {parsed:?}", strings(&out));
    }
}
