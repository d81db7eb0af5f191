//! `sdk-cdn serve` as a user runs it (the real binary on `127.0.0.1:0`),
//! and a minimal HTTP/1.1 client over a plain TCP socket (raw request targets
//! reach the server exactly as written).
#![allow(dead_code, reason = "each suite compiles this module and uses a part of it")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::backends::Backend;
use super::cli;

/// How long the binary may take to bind and print its address.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running `sdk-cdn serve`; killed on drop if still running.
pub struct Served {
    child: Child,
    /// The bound address, read from the first stderr line.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Served {
    /// Starts `serve --addr 127.0.0.1:0 EXTRA…` against `backend` and waits for its address.
    pub fn start(backend: &Backend, cwd: &Path, extra: &[&str]) -> Served {
        let mut args = vec!["serve", "--addr", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = cli::command(backend, cwd, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sdk-cdn serve");
        let pipe = child.stderr.take().expect("stderr is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&lines);
        // Drains stderr for the whole run, so logging can never block the server.
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let first = match rx.recv_timeout(START_DEADLINE) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("sdk-cdn serve printed nothing on stderr within {START_DEADLINE:?}");
            }
        };
        let addr = first
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("the first stderr line is not `listening on http://ADDR`: {first:?}"));
        Served { child, addr, stderr: lines }
    }

    /// Starts `serve --addr 127.0.0.1:0 EXTRA…` with stderr written to the
    /// file `log` (not a pipe, not a terminal), and waits for its address.
    pub fn start_logging_to(backend: &Backend, cwd: &Path, extra: &[&str], log: &Path) -> Served {
        let mut args = vec!["serve", "--addr", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let file = std::fs::File::create(log).expect("create the log file");
        let mut child =
            // NO_COLOR unset: colour must be off because stderr is a file, not because of it.
            cli::command(backend, cwd, &args)
                .env_remove("NO_COLOR")
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .expect("spawn sdk-cdn serve");
        let until = Instant::now() + START_DEADLINE;
        let addr = loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(addr) = text.lines().find_map(|l| l.strip_prefix("listening on http://")) {
                break addr.parse().unwrap_or_else(|_| panic!("not an address: {addr:?}"));
            }
            if Instant::now() > until || child.try_wait().expect("try_wait").is_some() {
                let _ = child.kill();
                panic!("sdk-cdn serve did not announce its address within {START_DEADLINE:?}:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Served { child, addr, stderr: Arc::new(Mutex::new(Vec::new())) }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, at most `deadline`.
    pub fn wait(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP response, as read off the wire.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends `GET target` (written verbatim) with `headers` and reads the whole response.
pub fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    exchange(addr, request.as_bytes())
}

/// Sends `METHOD target` (no body) with `headers` and reads the whole response.
pub fn request(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let response = exchange(addr, request.as_bytes());
    if method == "HEAD" {
        return HttpResponse { body: Vec::new(), ..response };
    }
    response
}

/// Writes `request` as is, reads until the server closes, parses the response.
pub fn exchange(addr: SocketAddr, request: &[u8]) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(request).expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse(&raw)
}

/// Parses a complete HTTP/1.1 response (Content-Length, chunked, or to EOF).
pub fn parse(raw: &[u8]) -> HttpResponse {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_vec() };
    HttpResponse { status, headers, body }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[end + 2..end + 2 + size]);
        rest = &rest[end + 2 + size + 2..];
    }
}
