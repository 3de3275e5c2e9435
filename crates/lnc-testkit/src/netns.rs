//! Real links between the processes of a test: Linux network namespaces joined to the
//! test's own namespace by veth pairs, each on a private /30. The kernel here has no netem,
//! so faults come from toxiproxy ([`crate::toxiproxy`]) on the links' root side and from
//! taking a link down ([`Link::set_up`]): a flap the processes cannot tell from a cable
//! pulled, unlike a proxy that closes sockets.
//!
//! Needs root and `ip` (iproute2); [`unavailable`] says why not, so a test can skip.
//! Every name carries the test binary's pid and a counter, so parallel tests and test
//! binaries never collide; what a killed test binary left behind is removed by the next
//! one ([`Netns::create`] sweeps namespaces of pids that are gone).

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::process::Proc;

/// The prefix of every namespace the kit creates: `lnct-<pid>-<n>`.
const PREFIX: &str = "lnct-";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Why namespaces cannot be used here (not root, no `ip`, no netns support), or `None`.
pub fn unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("?");
    if euid != "0" {
        return Some(format!(
            "network namespaces need root (effective uid {euid})"
        ));
    }
    // Creating one is the only test that counts: `ip netns list` works in containers that
    // may not create namespaces.
    let probe = format!("{PREFIX}{}-probe", std::process::id());
    match ip(&["netns", "add", &probe]) {
        Ok(_) => {
            let _ = ip(&["netns", "del", &probe]);
            None
        }
        Err(e) => Some(format!("`ip netns add` failed: {e}")),
    }
}

/// [`unavailable`] for a test: prints why it skips (`true`) on stderr and stdout.
pub fn skip() -> bool {
    match unavailable() {
        Some(why) => {
            let msg = format!("SKIPPED: this test needs network namespaces: {why}");
            println!("{msg}");
            eprintln!("{msg}");
            true
        }
        None => false,
    }
}

/// Runs `ip args`; `Err` holds its stderr (or why it did not run).
pub fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(args: &[&str]) -> String {
    ip(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Deletes the namespaces of test binaries that are gone (killed before their guards ran).
fn sweep_stale() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// A network namespace with its loopback up; deleted (with the veth ends inside it, and so
/// their peers) when dropped. Processes started in it should be ended first.
pub struct Netns {
    name: String,
}

impl Netns {
    /// A new namespace named `lnct-<pid>-<n>`.
    pub fn create() -> Netns {
        sweep_stale();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{}-{n}", std::process::id());
        must(&["netns", "add", &name]);
        let ns = Netns { name };
        must(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// Its name, for `ip -n` / `ip netns exec`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts `program args` inside the namespace (`ip netns exec`, which execs the program
    /// itself: the [`Proc`]'s pid is the program's, so kills reach it).
    pub fn spawn(&self, name: &'static str, program: &str, args: &[&str]) -> Proc {
        self.spawn_env(name, program, args, &[])
    }

    /// [`Netns::spawn`] with more environment variables.
    pub fn spawn_env(
        &self,
        name: &'static str,
        program: &str,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Proc {
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        Proc::spawn_env(name, "ip", &all, env)
    }

    /// A command that runs `program` inside the namespace (for one-shot tools such as
    /// `lnc session`, whose admin API is on the namespace's loopback).
    pub fn command(&self, program: &str) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("netns: {e}");
        }
    }
}

/// A veth pair between the test's namespace and `ns`, on a /30 of its own: the root end is
/// `.1`, the namespace's `.2`.
pub struct Link {
    /// The interface in the test's namespace.
    pub root_if: String,
    /// The interface in the namespace.
    pub ns_if: String,
    /// The address of the root end.
    pub root_addr: Ipv4Addr,
    /// The address of the namespace's end.
    pub ns_addr: Ipv4Addr,
    ns: String,
}

/// A free /30 in 10.213.0.0/16: its network address. Starts at an offset from the pid so
/// concurrent test binaries rarely even look at the same subnets, and skips any whose
/// addresses are already on an interface (a link another test made).
fn free_subnet() -> Ipv4Addr {
    let used = ip(&["-4", "-o", "addr", "show"]).unwrap_or_default();
    let start = (std::process::id() % 4096) * 4 + NEXT.fetch_add(1, Ordering::Relaxed) * 4;
    for i in 0..16384u32 {
        let off = (start + i * 4) % 65536;
        let net = Ipv4Addr::new(10, 213, (off >> 8) as u8, (off & 0xff) as u8);
        let [a, b, c, d] = net.octets();
        let probe = format!(" {a}.{b}.{c}.{}/", d + 1);
        let probe2 = format!(" {a}.{b}.{c}.{}/", d + 2);
        if !used.contains(&probe) && !used.contains(&probe2) {
            return net;
        }
    }
    panic!("no free /30 in 10.213.0.0/16")
}

impl Link {
    /// A veth pair into `ns`, both ends up.
    pub fn new(ns: &Netns) -> Link {
        // Interface names are at most 15 bytes: `lt` + the pid in hex + a counter.
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = format!("lt{:x}x{n}", std::process::id());
        let (root_if, ns_if) = (format!("{base}r"), format!("{base}n"));
        assert!(root_if.len() <= 15, "interface name {root_if} too long");
        must(&[
            "link", "add", &root_if, "type", "veth", "peer", "name", &ns_if, "netns", &ns.name,
        ]);
        let [a, b, c, d] = free_subnet().octets();
        let (root_addr, ns_addr) = (Ipv4Addr::new(a, b, c, d + 1), Ipv4Addr::new(a, b, c, d + 2));
        must(&["addr", "add", &format!("{root_addr}/30"), "dev", &root_if]);
        must(&["link", "set", &root_if, "up"]);
        must(&[
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("{ns_addr}/30"),
            "dev",
            &ns_if,
        ]);
        must(&["-n", &ns.name, "link", "set", &ns_if, "up"]);
        Link {
            root_if,
            ns_if,
            root_addr,
            ns_addr,
            ns: ns.name.clone(),
        }
    }

    /// Takes the namespace's end down or up (a flap: sockets stay open, packets go nowhere;
    /// the address and its route come back with the link).
    pub fn set_up(&self, up: bool) {
        must(&[
            "-n",
            &self.ns,
            "link",
            "set",
            &self.ns_if,
            if up { "up" } else { "down" },
        ]);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Gone already if its namespace was deleted first.
        let _ = ip(&["link", "del", &self.root_if]);
    }
}
