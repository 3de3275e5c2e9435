//! The `lnc` binary as a user runs it, in separate processes: `lnc connect` pairs and
//! saves a profile, then `lnc call` (a second process) reconnects with it (KK).
#![allow(clippy::unwrap_used, missing_docs)]

use lnc_testkit::T;
use lnc_testkit::node::*;
use lnc_testkit::relay::Relay;
use lnc_tunnel::TunnelOptions;
use std::process::Stdio;
use tokio::io::AsyncWriteExt as _;

struct Env {
    home: std::path::PathBuf,
}

impl Env {
    fn new(tag: &str) -> Env {
        let home = std::env::temp_dir().join(format!("lnc-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        Env { home }
    }

    fn cmd(&self, args: &[&str], password: &str) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_lnc"));
        c.args(args)
            .env("LNC_HOME", &self.home)
            .env("LNC_PASSWORD", password)
            .env("LNC_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str], password: &str, stdin: &str) -> std::process::Output {
        let mut child = self.cmd(args, password).spawn().unwrap();
        let mut si = child.stdin.take().unwrap();
        si.write_all(stdin.as_bytes()).await.unwrap();
        drop(si);
        tokio::time::timeout(T, child.wait_with_output())
            .await
            .unwrap()
            .unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_then_call_in_another_process() {
    let relay = Relay::insecure().await;
    let s = session(11, FAR_FUTURE);
    let mut node = node(grpc_mailbox(&relay), &s, TunnelOptions::default());
    next_listening(&mut node).await;
    let env = Env::new("e2e");
    let addr = relay.addr().to_string();

    let out = env
        .run(
            &[
                "connect",
                "--mailbox",
                &addr,
                "--insecure",
                "--profile",
                "p1",
            ],
            "pw1",
            &format!("{}\n", s.phrase),
        )
        .await;
    let err = text(&out.stderr);
    assert!(out.status.success(), "lnc connect failed: {err}");
    for p in [
        "connecting to mailbox",
        "handshake",
        "paired",
        "saved profile",
    ] {
        assert!(err.contains(p), "missing {p:?} in: {err}");
    }
    let file = env.home.join("profiles").join("p1.json");
    next_listening(&mut node).await;
    assert!(file.exists());

    // A second process reconnects from the file (KK) and calls.
    let out = env
        .run(
            &[
                "call",
                "lnrpc.Lightning.GetInfo",
                "--profile",
                "p1",
                "--compact",
            ],
            "pw1",
            "",
        )
        .await;
    assert!(
        out.status.success(),
        "lnc call failed: {}",
        text(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["alias"], "lnc-test-node");
    next_listening(&mut node).await;

    // JSON from stdin.
    let out = env
        .run(
            &[
                "call",
                "/lnrpc.Lightning/AddInvoice",
                "-",
                "--profile",
                "p1",
            ],
            "pw1",
            r#"{"memo":"from stdin"}"#,
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("from stdin"));
    next_listening(&mut node).await;

    // Server streaming: one JSON per line.
    let out = env
        .run(
            &[
                "call",
                "lnrpc.Lightning.SubscribeInvoices",
                r#"{"add_index":"3"}"#,
                "--profile",
                "p1",
            ],
            "pw1",
            "",
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (i, l) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["add_index"], i.to_string());
    }
    next_listening(&mut node).await;

    // Status.
    let out = env.run(&["status", "--profile", "p1"], "pw1", "").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    assert!(o.contains("status: Connected"), "{o}");
    assert!(o.contains("info:read"), "{o}");
    assert!(o.contains("expires: 2100-01-01"), "{o}");
    next_listening(&mut node).await;

    // Wrong password: a clear error, non-zero exit.
    let out = env
        .run(
            &["call", "lnrpc.Lightning.GetInfo", "--profile", "p1"],
            "nope",
            "",
        )
        .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("wrong password"),
        "{}",
        text(&out.stderr)
    );

    // Profiles.
    let out = env.run(&["profiles", "list"], "", "").await;
    assert!(
        text(&out.stdout).starts_with("p1\tmailbox="),
        "{}",
        text(&out.stdout)
    );
    let out = env.run(&["profiles", "remove", "p1"], "", "").await;
    assert!(out.status.success());
    assert!(!file.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_phrase_exits_with_advice() {
    let relay = Relay::insecure().await;
    let s = session(12, FAR_FUTURE);
    let mut node = node(grpc_mailbox(&relay), &s, TunnelOptions::default());
    next_listening(&mut node).await;
    let wrong = session(13, FAR_FUTURE);
    let env = Env::new("wrong");
    let addr = relay.addr().to_string();
    let out = env
        .run(
            &["connect", "--mailbox", &addr, "--insecure", "--wait", "1"],
            "pw",
            &format!("{}\n", wrong.phrase),
        )
        .await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("Session Not Found"), "{err}");
    assert!(err.contains("phrase may be wrong"), "{err}");
}

/// Errors are one readable chain, without anyhow's backtrace, even where the environment
/// asks for backtraces (many machines set RUST_BACKTRACE=1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_print_no_backtrace_with_rust_backtrace_set() {
    let env = Env::new("errtext");
    let mut cmd = env.cmd(
        &["call", "lnrpc.Lightning.GetInfo", "--profile", "nope"],
        "pw",
    );
    cmd.env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1");
    let out = tokio::time::timeout(T, cmd.output())
        .await
        .unwrap()
        .unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("nope"), "the error names the profile: {err}");
    assert!(
        !err.contains("Stack backtrace") && !err.contains("stack backtrace"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

/// A misspelled word is caught before the password prompt and the spelling suggestions are
/// printed to the person who typed it (#18 row 4: they were promised and never shown).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misspelled_word_gets_suggestions_before_the_password() {
    let env = Env::new("misspelled");
    // No password in the environment: a prompt would read the (empty) rest of stdin.
    let mut cmd = env.cmd(&["connect", "--mailbox", "127.0.0.1:9", "--insecure"], "");
    cmd.env_remove("LNC_PASSWORD");
    let mut child = cmd.spawn().unwrap();
    let mut si = child.stdin.take().unwrap();
    si.write_all(b"void clai usual ahead liar shaft theory marble visual hockey\n")
        .await
        .unwrap();
    drop(si);
    let out = tokio::time::timeout(T, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("word 2 is not in the word list"), "{err}");
    assert!(
        err.contains(r#"did you mean "claim", "clap" or "claw"?"#),
        "{err}"
    );
    assert!(
        !err.contains("assword"),
        "asked for a password first: {err}"
    );
    assert!(!err.contains("clai "), "echoed the typed word: {err}");
}

/// #18 row 7: a `--create-auth` token file others can read was accepted silently. The relay
/// refuses to start, as the node does for its secret and admin token, and says how to fix it.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_refuses_a_token_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = Env::new("createauth");
    std::fs::create_dir_all(&env.home).unwrap();
    let tokens = env.home.join("tokens");
    std::fs::write(&tokens, "secret-token\n").unwrap();
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = tokens.to_str().unwrap();
    let args = [
        "mailbox",
        "--listen",
        "127.0.0.1:0",
        "--insecure",
        "--create-auth",
        path,
    ];
    let out = tokio::time::timeout(T, env.cmd(&args, "").output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("mode 644"), "{err}");
    assert!(err.contains(&format!("chmod 600 {path}")), "{err}");
    assert!(!err.contains("secret-token"), "{err}");
}

/// The relay raises its open-file soft limit to the hard one at start: under the usual
/// 1,024 it refused clients ("Too many open files") with the machine idle (#18 row 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_raises_its_open_file_limit() {
    use lnc_testkit::process::{Proc, wait_line};
    let env = Env::new("fdlimit");
    std::fs::create_dir_all(&env.home).unwrap();
    let data = env.home.join("mailbox");
    let script = format!(
        "ulimit -Sn 256 && exec {} mailbox --insecure --listen 127.0.0.1:0 --metrics-listen off --data-dir {}",
        env!("CARGO_BIN_EXE_lnc"),
        data.display()
    );
    let p = Proc::spawn("mailbox", "bash", &["-c", &script]);
    let mut lines = p.subscribe();
    wait_line(&mut lines, |l| l.contains("mailbox listening")).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", p.id().unwrap())).unwrap();
    let row = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let nums: Vec<&str> = row.split_whitespace().skip(3).take(2).collect();
    assert_eq!(
        nums[0], nums[1],
        "soft limit not raised to the hard one: {row}"
    );
    assert_ne!(nums[0], "256", "{row}");
}
