//! The in-process S3 test server (tests/support/s3_server.rs) as a standalone
//! process, for `scripts/bench.sh`: it lets `sdk-cdn`, `aws s3 cp` and
//! `rclone` upload to the same server and counts the requests each makes.
//!
//! ```text
//! cargo run --release --example s3_bench_server [-- --latency-ms N]
//! ```
//!
//! `--latency-ms N` makes every request wait N ms before it is handled, a
//! stand-in for the round trip to a real S3 region: without it, a loopback
//! server answers in microseconds and only the two machines' CPU counts.
//!
//! Prints `endpoint=http://127.0.0.1:PORT bucket=NAME access_key=.. secret_key=..`
//! on the first stdout line, then answers each stdin line `stats` with
//! `requests=N writes=M round_trips=R`: object requests answered so far, and
//! the sequential round trips since the previous `stats` (the longest chain
//! of requests each sent after the one before was answered; meaningful with
//! `--latency-ms`, see `S3Server::round_trips_since`). Stops at EOF on stdin,
//! deleting its data.

#[path = "../tests/support/s3_server.rs"]
#[allow(unreachable_pub)]
mod s3_server;

use std::io::{BufRead, Write};

fn main() {
    let latency_ms = match parse_latency(std::env::args().skip(1)) {
        Ok(ms) => ms,
        Err(message) => {
            eprintln!("s3_bench_server: {message}");
            std::process::exit(2);
        }
    };
    let server = s3_server::start_blocking(s3_server::Conditional::Atomic);
    server.set_latency(std::time::Duration::from_millis(latency_ms));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "endpoint={} bucket={} access_key={} secret_key={} root={}",
        server.endpoint,
        server.bucket,
        s3_server::ACCESS_KEY,
        s3_server::SECRET_KEY,
        server.root.path().display()
    );
    let _ = out.flush();
    let mut mark = server.span_mark();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "stats" {
            let round_trips = server.round_trips_since(mark);
            mark = server.span_mark();
            let _ =
                writeln!(out, "requests={} writes={} round_trips={round_trips}", server.requests(), server.writes());
            let _ = out.flush();
        }
    }
}

/// The only option: `--latency-ms N` (default 0).
fn parse_latency(mut args: impl Iterator<Item = String>) -> Result<u64, String> {
    match (args.next().as_deref(), args.next(), args.next()) {
        (None, _, _) => Ok(0),
        (Some("--latency-ms"), Some(ms), None) => {
            ms.parse().map_err(|_| format!("--latency-ms takes whole milliseconds, not {ms:?}"))
        }
        _ => Err("usage: s3_bench_server [--latency-ms N]".into()),
    }
}
