//! Where secrets come from: a password file, the `TAKSA_PASSWORD` environment variable, piped
//! standard input, or a hidden prompt on the terminal, in that order.

use std::io::{IsTerminal as _, Read as _};
use std::path::Path;

use anyhow::{bail, Context as _};
use zeroize::Zeroizing;

/// The environment variable that may hold the keystore password.
pub(crate) const PASSWORD_ENV: &str = "TAKSA_PASSWORD";
/// The largest password file or piped mnemonic read, in bytes.
const SECRET_INPUT_BYTES_MAX: u64 = 4096;

/// Whether a password unlocks an existing key or protects a new one (asked twice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Decrypt an existing key file.
    Unlock,
    /// Encrypt a new key file.
    Create,
}

/// A hidden terminal prompt: shows the text, returns what was typed.
pub(crate) type Prompt<'a> = &'a mut dyn FnMut(&str) -> std::io::Result<String>;

/// Reads the password for key `what`: the first line of `file`, else `$TAKSA_PASSWORD`, else a
/// hidden prompt (twice when creating). Fails with how to pass one when none is available.
pub(crate) fn password(file: Option<&Path>, purpose: Purpose, what: &str) -> anyhow::Result<Zeroizing<String>> {
    let env = std::env::var(PASSWORD_ENV).ok().map(Zeroizing::new);
    let mut tty = |text: &str| rpassword::prompt_password(text);
    let prompt: Option<Prompt<'_>> = if terminal_available() { Some(&mut tty) } else { None };
    resolve_password(file, env, prompt, purpose, what)
}

/// [`password`] with its inputs passed in, so tests need no terminal and no environment.
pub(crate) fn resolve_password(
    file: Option<&Path>,
    env: Option<Zeroizing<String>>,
    prompt: Option<Prompt<'_>>,
    purpose: Purpose,
    what: &str,
) -> anyhow::Result<Zeroizing<String>> {
    if let Some(file) = file {
        let text = read_bounded_file(file).with_context(|| format!("reading password file {}", file.display()))?;
        let first = Zeroizing::new(text.lines().next().unwrap_or("").to_owned());
        if first.is_empty() {
            bail!("password file {} is empty: its first line is the password", file.display());
        }
        return Ok(first);
    }
    if let Some(env) = env {
        if env.is_empty() {
            bail!("{PASSWORD_ENV} is set but empty");
        }
        return Ok(env);
    }
    let Some(prompt) = prompt else {
        bail!(
            "no password for {what} and no terminal to ask on: pass --password-file FILE (first line is the \
             password) or set {PASSWORD_ENV}"
        );
    };
    let first = Zeroizing::new(prompt(&format!("Password for {what}: ")).context("reading the password")?);
    if purpose == Purpose::Create {
        if first.is_empty() {
            bail!("an empty password is not allowed for a new key");
        }
        let again = Zeroizing::new(prompt("Repeat the password: ").context("reading the password")?);
        if *again != *first {
            bail!("the two passwords differ; nothing was saved");
        }
    }
    Ok(first)
}

/// Reads a mnemonic from standard input when it is piped, else from a hidden prompt.
pub(crate) fn mnemonic_input() -> anyhow::Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let words = rpassword::prompt_password("Mnemonic (12 to 24 words; input is hidden): ")
            .context("reading the mnemonic from the terminal")?;
        return Ok(Zeroizing::new(words));
    }
    let mut text = Zeroizing::new(String::new());
    stdin
        .lock()
        .take(SECRET_INPUT_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .context("reading the mnemonic from stdin")?;
    if text.len() as u64 > SECRET_INPUT_BYTES_MAX {
        bail!("standard input is longer than {SECRET_INPUT_BYTES_MAX} bytes; pipe only the mnemonic");
    }
    Ok(text)
}

fn read_bounded_file(file: &Path) -> anyhow::Result<Zeroizing<String>> {
    let mut text = Zeroizing::new(String::new());
    std::fs::File::open(file)?.take(SECRET_INPUT_BYTES_MAX + 1).read_to_string(&mut text)?;
    if text.len() as u64 > SECRET_INPUT_BYTES_MAX {
        bail!("larger than {SECRET_INPUT_BYTES_MAX} bytes");
    }
    Ok(text)
}

/// Whether a hidden prompt can be shown: rpassword reads from the controlling terminal.
fn terminal_available() -> bool {
    #[cfg(unix)]
    {
        std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").is_ok()
    }
    #[cfg(not(unix))]
    {
        std::io::stdin().is_terminal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(s: &str) -> Option<Zeroizing<String>> {
        Some(Zeroizing::new(s.to_owned()))
    }

    #[test]
    fn password_file_wins_and_only_its_first_line_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\r\nignored\n").expect("write");
        let pw = resolve_password(Some(&f), z("from-env"), None, Purpose::Unlock, "k").expect("password");
        assert_eq!(pw.as_str(), "s3cret");
        std::fs::write(&f, "\n").expect("write");
        assert!(resolve_password(Some(&f), None, None, Purpose::Unlock, "k").is_err());
    }

    #[test]
    fn environment_is_used_when_no_file_is_given() {
        let pw = resolve_password(None, z("from-env"), None, Purpose::Create, "k").expect("password");
        assert_eq!(pw.as_str(), "from-env");
        assert!(resolve_password(None, z(""), None, Purpose::Unlock, "k").is_err());
    }

    #[test]
    fn without_any_source_the_error_says_how_to_pass_one() {
        let err = resolve_password(None, None, None, Purpose::Unlock, "alice").expect_err("no source");
        let msg = err.to_string();
        assert!(msg.contains("--password-file") && msg.contains(PASSWORD_ENV), "{msg}");
    }

    #[test]
    fn creating_asks_twice_and_refuses_a_mismatch() {
        let mut answers = vec!["one".to_owned(), "two".to_owned()].into_iter();
        let mut prompt = |_: &str| Ok(answers.next().unwrap_or_default());
        assert!(resolve_password(None, None, Some(&mut prompt), Purpose::Create, "k").is_err());
        let mut answers = vec!["same".to_owned(), "same".to_owned()].into_iter();
        let mut prompt = |_: &str| Ok(answers.next().unwrap_or_default());
        let pw = resolve_password(None, None, Some(&mut prompt), Purpose::Create, "k").expect("password");
        assert_eq!(pw.as_str(), "same");
        let mut asked = 0;
        let mut prompt = |_: &str| {
            asked += 1;
            Ok("once".to_owned())
        };
        resolve_password(None, None, Some(&mut prompt), Purpose::Unlock, "k").expect("password");
        assert_eq!(asked, 1);
    }
}
