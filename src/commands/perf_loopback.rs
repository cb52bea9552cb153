//! `runnel perf loopback`: the machine's limit for a broker's produce path, as the
//! reference the broker's figures are measured against — bytes sent by one client
//! over loopback TCP, read by a server and written to a file (page cache, no fsync),
//! the two things a broker must at least do with each produced byte.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use anyhow::Context;

/// Moves `total` bytes through loopback TCP into a file under `dir`; prints MB/s.
pub fn run(total: u64, dir: &std::path::Path) -> anyhow::Result<()> {
    const CHUNK: usize = 1 << 20;
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
    let addr = listener.local_addr()?;
    let path = dir.join(format!("runnel-loopback-{}.bin", std::process::id()));
    let sink_path = path.clone();
    let server = std::thread::spawn(move || -> anyhow::Result<u64> {
        let (mut conn, _) = listener.accept()?;
        let mut file = std::fs::File::create(&sink_path)
            .with_context(|| format!("creating {}", sink_path.display()))?;
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0u64;
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n])?;
            got += n as u64;
        }
        Ok(got)
    });
    let data = vec![b'x'; CHUNK];
    let start = Instant::now();
    let mut client = TcpStream::connect(addr)?;
    let mut sent = 0u64;
    while sent < total {
        let n = (total - sent).min(CHUNK as u64) as usize;
        client.write_all(&data[..n])?;
        sent += n as u64;
    }
    drop(client);
    let got = server
        .join()
        .map_err(|_| anyhow::anyhow!("the loopback reader panicked"))??;
    let secs = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    println!(
        "loopback TCP + page-cache write: {got} bytes in {secs:.3} s = {:.1} MB/s",
        got as f64 / secs / (1 << 20) as f64
    );
    Ok(())
}
