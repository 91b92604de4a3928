//! Test support: a strict splunkd stand-in that talks SCPv2 to the real `smbdensity` binary, and paths to
//! the shared reference data.
#![allow(dead_code)]

use std::io::{BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_smbdensity"))
}

/// `../shared` beside the project; the tests that need it fail loudly when it is missing.
pub fn shared() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared");
    assert!(
        p.is_dir(),
        "the shared reference data is missing: expected it at {}",
        p.display()
    );
    p
}

/// One reply chunk, parsed strictly.
#[derive(Debug)]
pub struct Reply {
    pub meta: serde_json::Value,
    /// The metadata bytes as sent (key order matters to splunkd).
    pub raw_meta: Vec<u8>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn error(&self) -> Option<&str> {
        self.meta.get("error").and_then(|e| e.as_str())
    }

    pub fn messages(&self, level: &str) -> Vec<String> {
        self.meta
            .pointer("/inspector/messages")
            .and_then(|m| m.as_array())
            .map(|a| {
                a.iter()
                    .filter(|m| m[0] == level)
                    .map(|m| m[1].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The body as rows of text cells (header first).
    pub fn rows(&self) -> Vec<Vec<String>> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(self.body.as_slice());
        r.byte_records()
            .map(|rec| {
                rec.unwrap()
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect()
            })
            .collect()
    }
}

/// A running command with splunkd's side of the pipes.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Session {
    pub fn start(command: &str, models: &std::path::Path) -> Session {
        let mut child = Command::new(bin())
            .arg(command)
            .env("SMBDENSITY_MODEL_DIR", models)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn smbdensity");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Session {
            child,
            stdin,
            stdout,
        }
    }

    /// Closes our end of the command's stdin.
    pub fn stdin_close(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let w = self.stdin.as_mut().expect("stdin open");
        let _ = w.write_all(bytes);
        let _ = w.flush();
    }

    pub fn send(&mut self, meta: &serde_json::Value, body: &[u8]) {
        let m = serde_json::to_vec(meta).unwrap();
        let mut chunk = format!("chunked 1.0,{},{}\n", m.len(), body.len()).into_bytes();
        chunk.extend_from_slice(&m);
        chunk.extend_from_slice(body);
        self.send_raw(&chunk);
    }

    pub fn getinfo(&mut self, args: &[&str], dispatch_dir: &str) -> Reply {
        self.send(&getinfo_meta(args, dispatch_dir), b"");
        self.read_reply().expect("a getinfo reply")
    }

    pub fn execute(&mut self, finished: bool, body: &[u8]) -> Reply {
        self.send(
            &serde_json::json!({"action": "execute", "finished": finished}),
            body,
        );
        self.read_reply().expect("an execute reply")
    }

    /// Reads one reply, checking the header byte for byte; None at EOF.
    pub fn read_reply(&mut self) -> Option<Reply> {
        let mut header = Vec::new();
        loop {
            let mut b = [0u8];
            if self.stdout.read(&mut b).unwrap() == 0 {
                assert!(header.is_empty(), "EOF inside a reply header: {header:?}");
                return None;
            }
            header.push(b[0]);
            if b[0] == b'\n' {
                break;
            }
            assert!(
                header.len() < 64,
                "runaway header {:?}",
                String::from_utf8_lossy(&header)
            );
        }
        let h = std::str::from_utf8(&header).unwrap();
        let rest = h
            .strip_prefix("chunked 1.0,")
            .unwrap_or_else(|| panic!("non-canonical header {h:?}"));
        let (m, b) = rest.trim_end_matches('\n').split_once(',').unwrap();
        let (m, b): (usize, usize) = (m.parse().unwrap(), b.parse().unwrap());
        let mut meta = vec![0u8; m];
        self.stdout.read_exact(&mut meta).unwrap();
        let mut body = vec![0u8; b];
        self.stdout.read_exact(&mut body).unwrap();
        let raw_meta = meta;
        let meta: serde_json::Value =
            serde_json::from_slice(&raw_meta).expect("reply metadata is JSON");
        assert!(meta.is_object());
        Some(Reply {
            meta,
            raw_meta,
            body,
        })
    }

    /// Closes stdin, expects no further bytes, and returns the exit status.
    pub fn finish(mut self) -> (i32, String) {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        self.stdout.read_to_end(&mut rest).unwrap();
        assert!(
            rest.is_empty(),
            "stray bytes after the last reply: {:?}",
            String::from_utf8_lossy(&rest)
        );
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = self.child.wait().unwrap();
        (status.code().unwrap_or(-1), err)
    }
}

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
            "session_key": "SeSsIoNkEy-must-never-be-written-anywhere-0123456789",
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

/// Runs `smbdensity run '<line>'` over `input` and returns (stdout, stderr, status).
pub fn run_local(line: &str, models: &std::path::Path, input: &[u8]) -> (Vec<u8>, String, i32) {
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
