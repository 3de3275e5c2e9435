//! The Go LNC stack's harness programs (`interop/cmd/`, built by `interop/build.sh` from
//! the pinned upstream modules into `$LNC_GOBIN`), run as child processes whose stdout
//! lines (`READY …`, `CONNECTED …`, `DONE`, `ERROR …`) are the events tests wait on.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Where `interop/build.sh` puts the programs: `$LNC_GOBIN`, else
/// `~/.cache/lnc-rs/gobin` (what `.ci/run` uses).
pub fn gobin_dir() -> PathBuf {
    std::env::var_os("LNC_GOBIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/lnc-rs/gobin")
        })
}

/// The path of Go program `name`; a missing one fails the test with how to build it.
pub fn gobin(name: &str) -> PathBuf {
    let p = gobin_dir().join(name);
    assert!(
        p.is_file(),
        "Go interop program {} is missing: run `bash interop/build.sh` (builds the Go LNC \
         stack into $LNC_GOBIN, default ~/.cache/lnc-rs/gobin)",
        p.display()
    );
    p
}

/// A Go program whose stdout is read line by line. Killed when dropped.
pub struct GoProc {
    /// The process.
    pub child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Every stdout line read so far.
    pub seen: Vec<String>,
}

impl GoProc {
    /// Starts `program` with `args`; `$LNC_INTEROP_GO_DEBUG` (e.g. `trace`) is passed on
    /// as `--debuglevel`. Its stderr goes to the test's.
    pub fn spawn(program: &str, args: &[&str]) -> GoProc {
        let debug = std::env::var("LNC_INTEROP_GO_DEBUG").ok();
        let mut child = Command::new(gobin(program))
            .args(args)
            .args(debug.iter().flat_map(|l| ["--debuglevel", l.as_str()]))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        GoProc {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next stdout line whose first word is `kind` (earlier lines are kept in
    /// `seen`). `Err` with everything seen if the program ends first or prints `ERROR`.
    pub async fn expect(&mut self, kind: &str) -> Result<String, String> {
        loop {
            match self.lines.next_line().await {
                Ok(Some(l)) => {
                    self.seen.push(l.clone());
                    if l.starts_with("ERROR") {
                        return Err(format!("{l} (stdout so far: {:?})", self.seen));
                    }
                    if l.split_whitespace().next() == Some(kind) {
                        return Ok(l);
                    }
                }
                Ok(None) | Err(_) => {
                    let status = self.child.wait().await.ok();
                    return Err(format!(
                        "exited ({status:?}) before `{kind}`; stdout: {:?}",
                        self.seen
                    ));
                }
            }
        }
    }
}

/// aperture's HashMail server (`go-relay`) on a random loopback port, with a self-signed
/// certificate when `tls` (Go's WebSocket client needs it: it always dials `wss://`).
/// Returns the process and its `host:port` once it accepts connections.
pub async fn go_relay(tls: bool) -> Result<(GoProc, String), String> {
    let mut args = vec!["--listen", "127.0.0.1:0"];
    if !tls {
        args.push("--insecure");
    }
    let mut p = GoProc::spawn("go-relay", &args);
    let ready = p.expect("READY").await?;
    let addr = field(&ready, "addr").ok_or_else(|| format!("no addr in {ready}"))?;
    Ok((p, addr))
}

/// A Go LNC node (`go-lnc-node`: lightning-node-connect's `mailbox.NewServer`, the server
/// path litd uses, serving an LND-shaped test service) on the relay at `relay` (TLS not
/// verified), with a new session whose state lives in `state`. Returns the process and
/// the session's pairing phrase once its mailboxes are up.
pub async fn go_node(relay: &str, state: &std::path::Path) -> Result<(GoProc, String), String> {
    let state = state.to_str().ok_or("state path is not UTF-8")?;
    let mut p = GoProc::spawn(
        "go-lnc-node",
        &[
            "--mailbox",
            relay,
            "--mailbox-tls",
            "skip-verify",
            "--state",
            state,
        ],
    );
    let ready = p.expect("READY").await?;
    let phrase = field(&ready, "phrase").ok_or_else(|| format!("no phrase in {ready}"))?;
    Ok((p, phrase))
}

/// The arguments of one `go-lnc-app` run: relay, transport, state file, and the phrase
/// when pairing (without one it reconnects with the stored keys: Noise KK).
pub fn go_app_args(
    relay: &str,
    ws: bool,
    state: &std::path::Path,
    phrase: Option<&str>,
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--mailbox",
        relay,
        "--transport",
        if ws { "ws" } else { "grpc" },
        "--mailbox-tls",
        "skip-verify",
        "--state",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(state.display().to_string());
    if let Some(p) = phrase {
        args.extend(["--phrase".to_owned(), p.to_owned()]);
    }
    args
}

/// `key=value` or `key="quoted value"` from a harness line.
pub fn field(line: &str, key: &str) -> Option<String> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[at..];
    if let Some(q) = rest.strip_prefix('"') {
        Some(q[..q.find('"')?].to_owned())
    } else {
        Some(rest.split_whitespace().next()?.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_plain_and_quoted() {
        let l = r#"READY addr=127.0.0.1:5 phrase="a b c" n=3"#;
        assert_eq!(field(l, "addr").as_deref(), Some("127.0.0.1:5"));
        assert_eq!(field(l, "phrase").as_deref(), Some("a b c"));
        assert_eq!(field(l, "n").as_deref(), Some("3"));
        assert_eq!(field(l, "missing"), None);
    }
}
