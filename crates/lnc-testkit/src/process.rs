//! Child processes whose output lines are events: `lnc` subcommands in a test ([`Proc`],
//! killed with the test), and daemons shared by all tests of a binary ([`Daemon`], ended
//! when the test binary exits, however it exits).

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::broadcast;

use crate::T;

/// Removes ANSI colour sequences (tracing's output when a terminal is assumed).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Forwards each line of `out` (ANSI stripped) to `tx`, and to `echo` if given.
fn pump_lines(
    out: impl AsyncRead + Unpin + Send + 'static,
    tx: broadcast::Sender<String>,
    echo: impl Fn(&str) + Send + 'static,
) {
    tokio::spawn(async move {
        let mut r = BufReader::new(out).lines();
        while let Ok(Some(l)) = r.next_line().await {
            let l = strip_ansi(&l);
            echo(&l);
            let _ = tx.send(l);
        }
    });
}

/// A child process of one test whose stdout and stderr lines are broadcast (and echoed
/// to the test's stderr, shown when it fails). Killed when dropped.
pub struct Proc {
    child: Child,
    lines: broadcast::Sender<String>,
    /// Subscribed before the output pumps started: [`Proc::lines_from_start`].
    first: Option<broadcast::Receiver<String>>,
    name: &'static str,
}

impl Proc {
    /// Starts `program args` with `NO_COLOR=1` and `LNC_LOG=info,lnc_node=debug`
    /// (`$LNC_TEST_PROC_LOG` instead, e.g. `debug,lnc_tunnel=trace`, to trace a failure).
    pub fn spawn(name: &'static str, program: &str, args: &[&str]) -> Proc {
        Proc::spawn_env(name, program, args, &[])
    }

    /// [`Proc::spawn`] with more environment variables (after the two above).
    pub fn spawn_env(
        name: &'static str,
        program: &str,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Proc {
        let mut child = Command::new(program)
            .args(args)
            .env("NO_COLOR", "1")
            .env(
                "LNC_LOG",
                std::env::var("LNC_TEST_PROC_LOG").unwrap_or_else(|_| "info,lnc_node=debug".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let (lines, first) = broadcast::channel(4096);
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        pump_lines(stdout, lines.clone(), move |l| eprintln!("[{name}] {l}"));
        pump_lines(stderr, lines.clone(), move |l| eprintln!("[{name}] {l}"));
        Proc {
            child,
            lines,
            first: Some(first),
            name,
        }
    }

    /// Lines from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.lines.subscribe()
    }

    /// Every line from the process's start (the first call; later ones: from now on).
    /// What a readiness wait needs: a process that starts fast (a restart with warm caches)
    /// may print its line before a [`subscribe`](Self::subscribe) after the spawn.
    pub fn lines_from_start(&mut self) -> broadcast::Receiver<String> {
        self.first.take().unwrap_or_else(|| self.lines.subscribe())
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGKILL, as a crash or the OOM killer would; returns once the process is gone.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill");
    }

    /// Waits for the process to exit by itself.
    pub async fn exit_status(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(T, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit", self.name))
            .expect("wait")
    }

    /// Sends SIGINT (graceful shutdown) and waits for a successful exit.
    pub async fn interrupt(mut self) {
        let pid = self.child.id().expect("running");
        let st = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
        let status = tokio::time::timeout(T, self.child.wait())
            .await
            .expect("no exit after SIGINT")
            .expect("wait");
        assert!(status.success(), "{} exited with {status}", self.name);
    }
}

/// The next line matching `pred` (lines before it are skipped); panics after [`T`] or if
/// the process's output ends first.
pub async fn wait_line(
    rx: &mut broadcast::Receiver<String>,
    pred: impl Fn(&str) -> bool,
) -> String {
    tokio::time::timeout(T, async {
        loop {
            match rx.recv().await {
                Ok(l) if pred(&l) => return l,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("process output ended"),
            }
        }
    })
    .await
    .expect("timed out waiting for a line")
}

/// The resident set size of process `pid` in KiB (Linux `/proc`), `None` once it is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The word after `key` in `line` (e.g. `addr=` in tracing output).
pub fn word_after<'a>(line: &'a str, key: &str) -> &'a str {
    let i = line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len();
    line[i..].split_whitespace().next().unwrap_or_default()
}

/// The reaper around a [`Daemon`]: runs the program, and when its own stdin (a pipe from
/// the test binary) reaches end of file, i.e. when the test binary exits for any reason,
/// sends SIGTERM, then SIGKILL after 20 s.
const REAPER: &str = r#"
exec 3<&0
"$@" </dev/null &
p=$!
{ read -r _ <&3; kill -TERM "$p" 2>/dev/null; sleep 20; kill -KILL "$p" 2>/dev/null; } &
w=$!
wait "$p"; s=$?
kill "$w" 2>/dev/null
exit $s
"#;

/// Removes `dir` once the test binary has exited and its daemons have had their 20 s to
/// end (unless `LNC_KEEP_REGTEST` is set). Its stdin is the pipe to watch: keep the
/// returned handle for as long as the directory is in use.
pub fn remove_dir_on_exit(dir: &Path) -> ChildStdin {
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(r#"read -r _; sleep 25; [ -n "${LNC_KEEP_REGTEST:-}" ] || rm -rf "$1""#)
        .arg("cleaner")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the cleaner of {}: {e}", dir.display()));
    child.stdin.take().expect("piped")
}

/// A daemon shared by all the tests of a binary (btcd, lnd): started once, it outlives each
/// test's runtime and ends with the test binary. Its output goes to `<dir>.log` and to a
/// broadcast for readiness waits; the last lines are kept for failure messages.
pub struct Daemon {
    /// Its name in messages.
    pub name: &'static str,
    lines: broadcast::Sender<String>,
    tail: Arc<Mutex<std::collections::VecDeque<String>>>,
    child: Child,
    _stdin: ChildStdin,
}

impl Daemon {
    /// Starts `program args` under the reaper, logging to `<dir>.log`; returns it and its
    /// output from the first line on. Must run on a runtime that lives as long as the
    /// test binary (the output pumps are its tasks).
    pub fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        dir: &Path,
    ) -> (Daemon, broadcast::Receiver<String>) {
        let log = dir.with_extension("log");
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(REAPER)
            .arg("reaper")
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let (lines, first) = broadcast::channel(4096);
        let tail = Arc::new(Mutex::new(std::collections::VecDeque::new()));
        let file = Arc::new(Mutex::new(
            std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display())),
        ));
        for out in [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().expect("piped")),
        ] {
            let (tail, file) = (tail.clone(), file.clone());
            pump_lines(out, lines.clone(), move |l| {
                use std::io::Write as _;
                if let Ok(mut f) = file.lock() {
                    let _ = writeln!(f, "{l}");
                }
                if let Ok(mut t) = tail.lock() {
                    if t.len() == 40 {
                        t.pop_front();
                    }
                    t.push_back(l.to_owned());
                }
            });
        }
        let stdin = child.stdin.take().expect("piped");
        let d = Daemon {
            name,
            lines,
            tail,
            child,
            _stdin: stdin,
        };
        (d, first)
    }

    /// Lines from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.lines.subscribe()
    }

    /// The last lines it printed, for a failure message.
    pub fn tail(&self) -> String {
        let t = self.tail.lock().map(|t| t.clone()).unwrap_or_default();
        t.into_iter().collect::<Vec<_>>().join("\n")
    }

    /// Waits (up to `limit`) for a line containing `needle`; fails with the daemon's last
    /// lines if it exits or stays silent.
    pub async fn wait_for(
        &self,
        rx: &mut broadcast::Receiver<String>,
        needle: &str,
        limit: std::time::Duration,
    ) -> Result<String, String> {
        let found = tokio::time::timeout(limit, async {
            loop {
                match rx.recv().await {
                    Ok(l) if l.contains(needle) => return Some(l),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .await;
        match found {
            Ok(Some(l)) => Ok(l),
            Ok(None) => Err(format!(
                "{} exited before {needle:?}:\n{}",
                self.name,
                self.tail()
            )),
            Err(_) => Err(format!(
                "{} did not print {needle:?} within {limit:?}:\n{}",
                self.name,
                self.tail()
            )),
        }
    }

    /// `kill -9` of the program (not of the reaper around it), as in a crash; returns once
    /// the reaper has seen it exit.
    pub async fn kill_program(&mut self) {
        if let Some(pid) = self.child.id() {
            // The reaper's children: the program and its stdin watcher.
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            for child in children.split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", child]).status().await;
            }
        }
        let _ = self.child.wait().await;
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}
