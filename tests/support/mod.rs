//! Test support shared by the integration tests: the real binary driven through `scpv2`'s splunkd
//! stand-in, a watchdog runner that measures what a run did (exit, replies, stderr, peak memory), and
//! the fixtures under `tests/data/`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use scpv2::driver::{ReplyChunk as Reply, chunk, parse_replies};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_smbdensity"))
}

/// The test fixtures (`tests/data/`).
pub fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// A gunzipped splunkd recording from splunk-sdk-python (Apache-2.0), by its path in that repository.
pub fn recording(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/scpv2/tests/data/splunk-sdk-python/tests")
        .join(rel);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

/// A running `smbdensity <command>` with splunkd's side of the pipes, models in `models`.
pub struct Session(scpv2::driver::Session);

impl Session {
    pub fn start(command: &str, models: &Path) -> Session {
        Session(scpv2::driver::Session::start(
            &bin(),
            command,
            &[("SMBDENSITY_MODEL_DIR", models)],
        ))
    }

    /// Sends [`getinfo_meta`] and reads its reply.
    pub fn getinfo(&mut self, args: &[&str], dispatch_dir: &str) -> Reply {
        self.0.send(&getinfo_meta(args, dispatch_dir), b"");
        self.0.read_reply().expect("a getinfo reply")
    }

    /// Closes stdin, expects no further bytes, and returns the exit status and stderr.
    pub fn finish(self) -> (i32, String) {
        self.0.finish()
    }
}

impl std::ops::Deref for Session {
    type Target = scpv2::driver::Session;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Session {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Runs `smbdensity run '<line>'` over `input` and returns (stdout, stderr, status).
pub fn run_local(line: &str, models: &Path, input: &[u8]) -> (Vec<u8>, String, i32) {
    let mut child = Command::new(bin())
        .args(["run", line, "--models"])
        .arg(models)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    (
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// The session key every getinfo below carries; it must never come back out.
pub const SESSION_KEY: &str = "SeSsIoNkEy-hostile-0123456789abcdef";

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// The exit code; None when a signal ended it.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// Peak resident set size of the child in KiB (`VmHWM`, polled every few milliseconds).
    pub max_rss_kib: u64,
    /// Peak virtual size in KiB (`VmPeak`, polled). Allocations are capped by `RLIMIT_AS` as well, so a
    /// huge allocation that is never touched still fails (and aborts the process) instead of hiding.
    pub max_vm_kib: u64,
    /// The watchdog had to kill it.
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl Run {
    /// The replies, parsed strictly: canonical headers, JSON-object metadata, exact lengths.
    pub fn replies(&self) -> Vec<Reply> {
        parse_replies(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "bad reply stream ({e}): {:?}",
                String::from_utf8_lossy(&self.stdout[..self.stdout.len().min(2000)])
            )
        })
    }

    pub fn last(&self) -> Option<Reply> {
        self.replies().pop()
    }

    /// The checks every run must pass, whatever its input: no hang, no panic, bounded memory, nothing
    /// secret in the output, and a well-formed reply stream.
    pub fn assert_sane(&self, what: &str, max_rss_mib: u64) {
        assert!(!self.timed_out, "{what}: hung (killed by the watchdog)");
        assert!(
            self.signal.is_none(),
            "{what}: died by signal {:?}; stderr: {}",
            self.signal,
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked at") && !self.stderr.contains("RUST_BACKTRACE"),
            "{what}: panic on stderr: {}",
            self.stderr
        );
        assert!(
            self.max_rss_kib <= max_rss_mib * 1024,
            "{what}: peak RSS {} KiB above the bound of {max_rss_mib} MiB",
            self.max_rss_kib
        );
        for (stream, bytes) in [
            ("stdout", &self.stdout[..]),
            ("stderr", self.stderr.as_bytes()),
        ] {
            assert!(
                !contains(bytes, SESSION_KEY.as_bytes()),
                "{what}: the session key reached {stream}"
            );
        }
        let _ = self.replies();
    }

    /// A bad input that could be answered: exit status 1 and a last reply that carries an ERROR message
    /// and the same `error` text, containing `needle`.
    pub fn assert_error(&self, what: &str, needle: &str) -> String {
        assert_eq!(
            self.code,
            Some(1),
            "{what}: exit status; stderr: {}; stdout: {:?}",
            self.stderr,
            String::from_utf8_lossy(&self.stdout[..self.stdout.len().min(500)])
        );
        let last = self
            .last()
            .unwrap_or_else(|| panic!("{what}: no reply at all"));
        let err = last
            .error()
            .unwrap_or_else(|| panic!("{what}: last reply has no error field: {:?}", last.meta))
            .to_string();
        assert!(!err.is_empty(), "{what}: empty error");
        assert!(
            err.contains(needle),
            "{what}: error {err:?} does not contain {needle:?}"
        );
        assert_eq!(
            last.messages("ERROR"),
            std::slice::from_ref(&err),
            "{what}: the ERROR inspector message"
        );
        assert!(
            last.raw_meta.starts_with(br#"{"inspector":"#),
            "{what}: inspector must precede error"
        );
        assert_eq!(last.meta["finished"], true, "{what}: error replies finish");
        err
    }

    /// A session that went fine: exit 0, no error reply.
    pub fn assert_ok(&self, what: &str) -> Vec<Reply> {
        let replies = self.replies();
        for r in &replies {
            assert!(r.error().is_none(), "{what}: unexpected error {:?}", r.meta);
        }
        assert_eq!(
            self.code,
            Some(0),
            "{what}: exit status; stderr: {}",
            self.stderr
        );
        replies
    }
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// How to start the binary.
pub struct Spawn<'a> {
    pub exe: PathBuf,
    pub args: Vec<String>,
    pub models: Option<&'a Path>,
    pub timeout: Duration,
    /// `RLIMIT_AS` for the child, in MiB.
    pub vm_limit_mib: u64,
}

impl<'a> Spawn<'a> {
    pub fn command(cmd: &str, models: &'a Path) -> Spawn<'a> {
        Spawn {
            exe: bin(),
            args: vec![cmd.to_string()],
            models: Some(models),
            timeout: Duration::from_secs(60),
            vm_limit_mib: 1024,
        }
    }
}

/// Reads `VmHWM` and `VmPeak` (KiB) of a live process.
fn vm_stats(pid: libc::pid_t) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmHWM:")?, field("VmPeak:")?))
}

/// Runs the binary with `input` on stdin (then closed), a watchdog that SIGKILLs it after the timeout,
/// and returns what it did. (Peak memory is polled from /proc: `wait4`'s `ru_maxrss` would report the
/// test process's own size, which the child inherits until it execs.)
pub fn run(spawn: &Spawn, input: Vec<u8>) -> Run {
    let mut c = Command::new(&spawn.exe);
    c.args(&spawn.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("RUST_BACKTRACE");
    match spawn.models {
        Some(m) => c.env("SMBDENSITY_MODEL_DIR", m),
        None => c.env_remove("SMBDENSITY_MODEL_DIR"),
    };
    let vm_limit = spawn.vm_limit_mib << 20;
    unsafe {
        use std::os::unix::process::CommandExt;
        c.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: vm_limit as libc::rlim_t,
                rlim_max: vm_limit as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = c.spawn().expect("spawn smbdensity");
    let pid = child.id() as libc::pid_t;
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let writer = std::thread::spawn(move || {
        // The binary may stop reading early (an error): a broken pipe is expected then.
        let _ = stdin.write_all(&input);
    });
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    // reaped: the pid is gone and must not be signalled; timed_out: the watchdog fired; peak VmHWM and
    // VmPeak seen.
    let state = Arc::new(Mutex::new((false, false, 0u64, 0u64)));
    let dog_state = state.clone();
    let timeout = spawn.timeout;
    let dog = std::thread::spawn(move || {
        let deadline = Instant::now() + timeout;
        loop {
            std::thread::sleep(Duration::from_millis(2));
            let mut s = dog_state.lock().unwrap();
            if s.0 {
                return;
            }
            if let Some((hwm, peak)) = vm_stats(pid) {
                s.2 = s.2.max(hwm);
                s.3 = s.3.max(peak);
            }
            if Instant::now() >= deadline {
                // Not yet reaped, so the pid is still ours (running or a zombie).
                unsafe { libc::kill(pid, libc::SIGKILL) };
                s.1 = true;
                return;
            }
        }
    });
    // Wait for the exit without reaping, so the watchdog can still signal the pid safely.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        while libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        ) != 0
        {
            assert_eq!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EINTR)
            );
        }
    }
    let status = {
        let mut s = state.lock().unwrap();
        let mut status = 0;
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r, pid, "waitpid");
        s.0 = true;
        status
    };
    let elapsed = start.elapsed();
    dog.join().unwrap();
    // The child is reaped by hand; keep std from touching it again.
    std::mem::forget(child);
    let _ = writer.join();
    let stdout = out_t.join().unwrap();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap()).into_owned();
    let (_, timed_out, max_rss_kib, max_vm_kib) = *state.lock().unwrap();
    let (code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else {
        (None, Some(libc::WTERMSIG(status)))
    };
    Run {
        code,
        signal,
        stdout,
        stderr,
        max_rss_kib,
        max_vm_kib,
        timed_out,
        elapsed,
    }
}

/// A getinfo request as splunkd 9.x sends it, carrying [`SESSION_KEY`].
pub fn getinfo_meta(args: &[&str], dispatch_dir: &str) -> serde_json::Value {
    serde_json::json!({
        "action": "getinfo",
        "preview": false,
        "streaming_command_will_restart": false,
        "searchinfo": {
            "args": args,
            "raw_args": args,
            "dispatch_dir": dispatch_dir,
            "sid": "1700000000.42",
            "app": "smb_traffic_spike",
            "owner": "admin",
            "username": "admin",
            "session_key": SESSION_KEY,
            "splunkd_uri": "https://127.0.0.1:8089",
            "splunk_version": "9.2.1",
            "search": "%7C%20apply",
            "command": "apply",
            "maxresultrows": 50000,
            "earliest_time": "1700000000",
            "latest_time": 1700003600
        }
    })
}

/// A getinfo request chunk.
pub fn getinfo(args: &[&str], dispatch_dir: &str) -> Vec<u8> {
    chunk(
        &serde_json::to_vec(&getinfo_meta(args, dispatch_dir)).unwrap(),
        b"",
    )
}

/// An execute request chunk.
pub fn execute(finished: bool, body: &[u8]) -> Vec<u8> {
    scpv2::driver::execute_chunk(finished, body)
}

/// Training rows: `count,h` with `per_group` rows in each of `groups` groups, deterministic.
pub fn training(groups: u32, per_group: u32, seed: u64) -> String {
    let mut s = String::from("count,h\n");
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for i in 0..groups * per_group {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let noise = (x >> 33) % 21;
        s.push_str(&format!("{},{:05}\n", 100 + noise, i % groups));
    }
    s
}
