//! Docker's credential helpers: `docker-credential-<name>` programs
//! (`credHelpers` per registry, `credsStore` for all, in an auth file)
//! that keep secrets in a keychain, `pass`, a cloud's token service...
//!
//! The protocol (docker/docker-credential-helpers): the action is the only
//! argument; `get` reads the server address on stdin and prints
//! `{"ServerURL","Username","Secret"}`, or fails saying "credentials not
//! found"; `store` reads that JSON; `erase` reads the server address.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::{Credentials, Error};

/// What a helper stores and returns.
#[derive(Debug, Serialize, Deserialize)]
struct HelperCreds {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// A helper's way of saying it has nothing for that server.
const NOT_FOUND: &str = "credentials not found";

#[cfg(test)]
thread_local! {
    /// Where unit tests put their helper scripts (not on PATH).
    pub(super) static TEST_DIR: std::cell::RefCell<Option<std::path::PathBuf>> =
        const { std::cell::RefCell::new(None) };
}

/// The helper's program: found on PATH.
fn command(program: &str) -> Command {
    #[cfg(test)]
    if let Some(dir) = TEST_DIR.with(|d| d.borrow().clone()) {
        return Command::new(dir.join(program));
    }
    Command::new(program)
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin.
fn run(
    helper: &str,
    action: &str,
    input: &[u8],
    file: &Path,
) -> Result<std::process::Output, Error> {
    let program = format!("docker-credential-{helper}");
    let mut child = command(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::HelperMissing {
            program: program.clone(),
            file: file.to_owned(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input: its status says why.
        let _ = stdin.write_all(input);
    }
    child
        .wait_with_output()
        .map_err(|source| Error::HelperMissing {
            program,
            file: file.to_owned(),
            source,
        })
}

fn failure(helper: &str, action: &str, server: &str, out: &std::process::Output) -> Error {
    let mut message = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        if !message.is_empty() {
            message.push_str("; ");
        }
        message.push_str(stderr.trim());
    }
    Error::Helper {
        program: format!("docker-credential-{helper}"),
        action: action.to_owned(),
        server: server.to_owned(),
        message,
    }
}

/// The helper's credentials for `server`, `None` when it has none.
pub(super) fn get(helper: &str, server: &str, file: &Path) -> Result<Option<Credentials>, Error> {
    let out = run(helper, "get", server.as_bytes(), file)?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).to_lowercase()
            + &String::from_utf8_lossy(&out.stderr).to_lowercase();
        if text.contains(NOT_FOUND) {
            return Ok(None);
        }
        return Err(failure(helper, "get", server, &out));
    }
    let creds: HelperCreds =
        serde_json::from_slice(&out.stdout).map_err(|_| failure(helper, "get", server, &out))?;
    if creds.username == "<token>" {
        return Err(Error::IdentityToken {
            program: format!("docker-credential-{helper}"),
            server: server.to_owned(),
        });
    }
    Ok(Some(Credentials {
        username: creds.username,
        password: creds.secret,
    }))
}

/// Stores credentials for `server` with the helper.
pub(super) fn store(helper: &str, server: &str, c: &Credentials, file: &Path) -> Result<(), Error> {
    let input = serde_json::to_vec(&HelperCreds {
        server_url: server.to_owned(),
        username: c.username.clone(),
        secret: c.password.clone(),
    })
    .expect("credentials serialise");
    let out = run(helper, "store", &input, file)?;
    if !out.status.success() {
        return Err(failure(helper, "store", server, &out));
    }
    Ok(())
}

/// Removes the helper's credentials for `server` (none there is fine).
pub(super) fn erase(helper: &str, server: &str, file: &Path) -> Result<(), Error> {
    let out = run(helper, "erase", server.as_bytes(), file)?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).to_lowercase()
            + &String::from_utf8_lossy(&out.stderr).to_lowercase();
        if !text.contains(NOT_FOUND) {
            return Err(failure(helper, "erase", server, &out));
        }
    }
    Ok(())
}
